// Package main is faultbed's linearizability checker: porcupine behind a C ABI,
// built with `go build -buildmode=c-shared` and loaded by checkers/linearizable.py.
//
// One call per history: FaultbedCheck takes a JSON request (model, initial value,
// operations, options) and returns a JSON response that the caller must release
// with FaultbedFree.
package main

/*
#include <stdlib.h>
*/
import "C"

import (
	"encoding/json"
	"fmt"
	"unsafe"
)

// FaultbedCheck checks one history. It never panics across the C boundary: any
// failure comes back as {"error": ...}.
//
//export FaultbedCheck
func FaultbedCheck(requestJSON *C.char) *C.char {
	return C.CString(string(handle(C.GoString(requestJSON))))
}

// FaultbedFree releases a string returned by FaultbedCheck.
//
//export FaultbedFree
func FaultbedFree(text *C.char) {
	C.free(unsafe.Pointer(text))
}

func handle(requestJSON string) (out []byte) {
	defer func() {
		if recovered := recover(); recovered != nil {
			out = errorJSON(fmt.Sprintf("internal error in the porcupine bindings: %v", recovered))
		}
	}()
	var req request
	if err := json.Unmarshal([]byte(requestJSON), &req); err != nil {
		return errorJSON(fmt.Sprintf("malformed request: %v", err))
	}
	resp := check(&req)
	out, err := json.Marshal(resp)
	if err != nil {
		return errorJSON(fmt.Sprintf("cannot encode the response: %v", err))
	}
	return out
}

func errorJSON(message string) []byte {
	out, _ := json.Marshal(response{Error: message, ErrorOp: -1})
	return out
}

func main() {}
