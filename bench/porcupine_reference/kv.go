package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"time"

	"github.com/anishathalye/porcupine"
)

// A faultbed history event, as encoding/json reads it.
type event struct {
	Type    string          `json:"type"`
	Process json.RawMessage `json:"process"`
	F       string          `json:"f"`
	Key     string          `json:"key"`
	Value   json.RawMessage `json:"value"`
	Time    int64           `json:"time"`
}

const absent = -1000000 // a key nobody wrote yet reads null

type kvInput struct {
	f        string
	key      string
	value    int
	from, to int
}

type kvOutput struct {
	value int
}

// kvModel: one register per key, ints; reads of null see `absent`.
var kvModel = porcupine.Model{
	Partition: func(history []porcupine.Operation) [][]porcupine.Operation {
		byKey := map[string][]porcupine.Operation{}
		var keys []string
		for _, op := range history {
			key := op.Input.(kvInput).key
			if _, seen := byKey[key]; !seen {
				keys = append(keys, key)
			}
			byKey[key] = append(byKey[key], op)
		}
		out := make([][]porcupine.Operation, 0, len(keys))
		for _, key := range keys {
			out = append(out, byKey[key])
		}
		return out
	},
	Init: func() interface{} { return absent },
	Step: func(state, input, output interface{}) (bool, interface{}) {
		st := state.(int)
		in := input.(kvInput)
		out, known := output.(kvOutput)
		switch in.f {
		case "read":
			return !known || out.value == st, st
		case "write":
			return true, in.value
		default: // cas: only swapped ones are in the history (fail did not happen)
			if st == in.from {
				return true, in.to
			}
			return !known, st
		}
	},
	Hash: func(state interface{}) uint64 { return uint64(state.(int)) },
}

func intOf(raw json.RawMessage) int {
	var v *int
	if err := json.Unmarshal(raw, &v); err != nil || v == nil {
		return absent
	}
	return *v
}

func readKv(path string) []porcupine.Operation {
	file, err := os.Open(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(3)
	}
	defer file.Close()
	scanner := bufio.NewScanner(file)
	scanner.Buffer(make([]byte, 1<<20), 1<<26)
	open := map[string]int{} // process -> index of its invocation in ops
	var ops []porcupine.Operation
	var keep []bool
	latest := int64(0)
	clients := map[string]int{}
	for scanner.Scan() {
		var e event
		if err := json.Unmarshal(scanner.Bytes(), &e); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(3)
		}
		latest = max(latest, e.Time)
		process := string(e.Process)
		if process == `"nemesis"` {
			continue
		}
		if e.Type == "invoke" {
			in := kvInput{f: e.F, key: e.Key}
			switch e.F {
			case "write":
				in.value = intOf(e.Value)
			case "cas":
				var pair []int
				_ = json.Unmarshal(e.Value, &pair)
				in.from, in.to = pair[0], pair[1]
			}
			client, seen := clients[process]
			if !seen {
				client = len(clients)
				clients[process] = client
			}
			open[process] = len(ops)
			ops = append(ops, porcupine.Operation{ClientId: client, Input: in, Call: e.Time, Return: -1})
			keep = append(keep, true)
			continue
		}
		i := open[process]
		delete(open, process)
		switch e.Type {
		case "ok":
			ops[i].Return = e.Time
			if e.F == "read" {
				ops[i].Output = kvOutput{value: intOf(e.Value)}
			} else {
				ops[i].Output = kvOutput{}
			}
		case "fail":
			keep[i] = false
		default: // info: pending to the end; an info read constrains nothing
			keep[i] = e.F != "read"
		}
	}
	kept := ops[:0]
	for i, op := range ops {
		if !keep[i] {
			continue
		}
		if op.Return < 0 {
			op.Return = latest + 1
			op.Output = nil
		}
		kept = append(kept, op)
	}
	return kept
}

func checkKv(path string, maxGB float64) report {
	r := report{Histories: 1}
	watch(maxGB, &r)
	before := time.Now()
	ops := readKv(path)
	searching := time.Now()
	r.ReadMs = ms(searching.Sub(before))
	r.Ops = len(ops)
	count(&r, porcupine.CheckOperations(kvModel, ops))
	r.SearchMs = ms(time.Since(searching))
	return r
}
