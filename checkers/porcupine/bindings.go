// Package main is faultbed's linearizability checker: porcupine behind a C ABI,
// built with `go build -buildmode=c-shared` and loaded by checkers/linearizable.py.
//
// One call per history: FaultbedCheck takes a JSON request (model, initial value,
// operations, options) and returns a JSON response that the caller must release
// with FaultbedFree. Many histories (`faultbed check DIR`): FaultbedSubmit queues a
// request and returns at once with a ticket; a few histories are checked at a time
// (one per CPU), and FaultbedWait returns a ticket's response when it is ready. So
// the files are checked in parallel by goroutines, with no Python thread per file.
package main

/*
#include <stdlib.h>
*/
import "C"

import (
	"encoding/json"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
	"sync/atomic"
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

// FaultbedSubmit queues one request (as FaultbedCheck takes it) and returns its
// ticket at once; FaultbedWait(ticket) gives its response.
//
//export FaultbedSubmit
func FaultbedSubmit(requestJSON *C.char) C.longlong {
	return C.longlong(submit(C.GoString(requestJSON)))
}

// FaultbedWait blocks until the ticket's request is checked and returns its response
// (release it with FaultbedFree). Each ticket is waited for once.
//
//export FaultbedWait
func FaultbedWait(ticket C.longlong) *C.char {
	return C.CString(string(wait(int64(ticket))))
}

// ballast is address space the collector counts as live heap, never touched and so never resident:
// the collector runs when the heap doubles, which for a small search means every 4 MB allocated, and
// porcupine allocates in every step (on porcupine's Jepsen logs the collector took a quarter of the
// CPU). With the ballast a small search collects every 16 MB or so; a large one (hundreds of MB live)
// is hardly affected. Not larger: memory the collector has not reused is fresh pages, and a fresh
// page costs 6-11 us on a virtual machine (a fault, and on this project's Firecracker VM a further
// 4.5 us at the first touch of every page, populated or not). With 128 MB the heap grew to ~256 MB
// before its first collection. porcupine's 103 Jepsen logs, runs in turns: 128 MB 508-560 ms,
// 32 MB 453-521 ms, 16 MB 443-520 ms (7 each); 32 MB median 540 ms, 16 MB 498 ms, 8 MB 516 ms,
// porcupine alone 558 ms (9 each); a 100k history's check 0.37-0.48 s with 128 MB, 0.27-0.32 s
// with 16 MB (peak 106 MB, 62-69 MB). Made in the loading goroutine (init below): the runtime
// is ready sooner.
var ballast []byte

// gcPercent: once the library has warmed up, the collector runs when the heap has grown by half
// (beside the ballast), not doubled, unless $GOGC says otherwise. On this project's virtual machine
// a fresh page costs more than collecting sooner and reusing pages. Fresh processes in turns, 50
// against Go's 100: a 1M history's check 1.29 -> 1.24 s (medians of 9, paired -85 ms) and its peak
// 328-346 -> 250-259 MB, 100k 171 -> 155 ms (15, paired -19 ms), 10k 26.7 -> 24.3 ms (41, paired
// -2 ms), porcupine's 103 Jepsen logs 0.71 -> 0.68 s (9). Set at the start rather than after the
// warm-up, the warm-up collected more often beside Python's imports: a 10k check's process took 4
// ms longer. Where a fresh page is cheap (no virtual machine) the collector's extra passes may cost
// more than they save: $GOGC=100 gives Go's own back.
const gcPercent = 50

// loaded is closed once the loading goroutine (init) is done: tests of the block pool wait for it.
var loaded = make(chan struct{})

const ballastBytes = 16 << 20

// As the library loads, beside Python's own work: the ballast is made, Go's encoding/json
// learns the request's and the response's types (0.2-0.4 ms on first use in a fresh process),
// and a small history is checked to warm the reader and the search up (warm.go).
func init() {
	go func() {
		defer close(loaded)
		ballast = make([]byte, ballastBytes)
		var req request
		_ = json.Unmarshal([]byte(`{"model": "kv", "initial": null, "timeout_ms": 0, "memory_limit_mb": 1, `+
			`"visualize": "", "always_visualize": false, "ops": [], "annotations": [], "history_file": "", `+
			`"history_format": ""}`), &req)
		_, _ = json.Marshal(response{})
		warmUp() // warm.go

		// set after the warm-up, which runs beside Python's imports
		if os.Getenv("GOGC") == "" {
			debug.SetGCPercent(gcPercent)
		}
	}()
}

// FaultbedReady returns once Go's runtime has started (the first call into Go also sets up
// what the runtime needs for calls from C: a thread of the caller's makes it while the
// caller goes on).
//
//export FaultbedReady
func FaultbedReady() {}

// FaultbedForget drops a ticket whose response nobody will wait for (the check still runs to its end).
//
//export FaultbedForget
func FaultbedForget(ticket C.longlong) {
	queue.Lock()
	delete(queue.answers, int64(ticket)) // the answer channel has room: the check never blocks on it
	queue.Unlock()
}

var queue struct {
	sync.Mutex
	next    int64
	answers map[int64]chan []byte
	slots   chan struct{} // one per history being checked: at most one per CPU at a time
}

func submit(requestJSON string) int64 {
	answer := make(chan []byte, 1)
	queue.Lock()
	if queue.answers == nil {
		queue.answers = map[int64]chan []byte{}
		queue.slots = make(chan struct{}, runtime.GOMAXPROCS(0))
	}
	ticket := queue.next
	queue.next++
	queue.answers[ticket] = answer
	slots := queue.slots
	queue.Unlock()
	go func() {
		slots <- struct{}{} // nothing of the history is read before its turn: memory stays bounded
		defer func() { <-slots }()
		answer <- handle(requestJSON)
	}()
	return ticket
}

func wait(ticket int64) []byte {
	queue.Lock()
	answer, ok := queue.answers[ticket]
	delete(queue.answers, ticket)
	queue.Unlock()
	if !ok {
		return errorJSON(fmt.Sprintf("internal error in the porcupine bindings: no ticket %d", ticket))
	}
	return <-answer
}

// checking counts the callers' checks running (the warm-up's is not one).
var checking atomic.Int32

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
	checking.Add(1)
	defer checking.Add(-1)
	resp := check(&req)
	release(&resp)
	out, err := json.Marshal(resp)
	if err != nil {
		return errorJSON(fmt.Sprintf("cannot encode the response: %v", err))
	}
	return out
}

// release hands a finished search's memory back to the machine. Its operations and states are
// garbage now, and the collector would keep their pages for minutes, counted in the process's
// resident set: what the caller does next (a run's other checkers, its report) would stack on
// them, and a checker in Python kept within the same memory limit (faultbed/memory.py) would be
// stopped for memory Go holds (a hot key's search that stopped at a 4 GB limit left 4 GB
// resident, and the stats checker after it was unknown). A search that grew past releaseBytes is
// released before the answer goes back; a long history's (check_run of a 2M-event run, its report
// included: 740 -> 396 MB peak) beside the answer, which the caller needs sooner.
func release(resp *response) {
	switch {
	case heldHeapBytes() >= releaseBytes || resp.MemoryExceeded || resp.MachineMemoryLow:
		debug.FreeOSMemory()
	case resp.Ops >= releaseOps:
		go debug.FreeOSMemory()
	}
}

const releaseOps = 100_000

// heldHeaps are the heap's memory classes that hold pages: what ReadMemStats gives as HeapSys -
// HeapReleased, read without stopping the world (ReadMemStats did, and waited 1.5-4 ms for the
// goroutines of a search just ended: a tenth of a 10k history's check, on every check).
var heldHeaps = []string{"/memory/classes/heap/objects:bytes", "/memory/classes/heap/unused:bytes",
	"/memory/classes/heap/free:bytes", "/memory/classes/heap/stacks:bytes"}

// heldHeapBytes is the memory Go's heap holds from the machine (in use, or free and not yet given back).
func heldHeapBytes() uint64 {
	samples := make([]metrics.Sample, len(heldHeaps))
	for i, name := range heldHeaps {
		samples[i].Name = name
	}
	metrics.Read(samples)
	var held uint64
	for _, sample := range samples {
		if sample.Value.Kind() == metrics.KindUint64 {
			held += sample.Value.Uint64()
		}
	}
	return held
}

const releaseBytes = 512 << 20

func errorJSON(message string) []byte {
	out, _ := json.Marshal(response{Error: message, ErrorOp: -1})
	return out
}

func main() {}
