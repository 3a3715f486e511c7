package main

import (
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/anishathalye/porcupine"
)

// The search for a picture runs with a model that refuses every step once stopped
// (the timeout or the memory limit). porcupine's own timeout can end that search
// first; the stop fires a moment later, before the page is drawn, and drawing steps
// through the model again: with the stopped model porcupine panics ("valid partial
// linearization returned non-ok result from model step"), which took a NATS run's
// verdict down with its picture. draw uses the model itself.
func TestAPictureIsDrawnWithTheModelNotTheStoppedOne(t *testing.T) {
	m, err := newModel("kv", "0")
	if err != nil {
		t.Fatal(err)
	}
	var ops []porcupine.Operation
	for i, op := range []rawOp{{f: "write", input: "1", call: 0, ret: 10}, {f: "read", output: "1", call: 20, ret: 30},
		{f: "write", input: "2", call: 40, ret: 50}, {f: "read", output: "1", call: 60, ret: 70}} {
		op.process, op.key, op.known = strconv.Itoa(i), `"k"`, true
		input, output, _, err := m.prepare(op)
		if err != nil {
			t.Fatal(err)
		}
		ops = append(ops, porcupine.Operation{ClientId: i, Input: input, Call: op.call, Output: output, Return: op.ret})
	}
	var stop, aborted atomic.Bool
	searched := stoppable(m.porcupine, &stop, &aborted)
	partition := func([]porcupine.Operation) [][]porcupine.Operation { return [][]porcupine.Operation{ops} }
	searched.Partition = partition
	result, info := porcupine.CheckOperationsVerbose(searched, ops, 0)
	if result != porcupine.Illegal || aborted.Load() {
		t.Fatalf("search: %v, aborted %v", result, aborted.Load())
	}
	stop.Store(true) // the timer fires after the search ended
	panicked := func() (p bool) {
		defer func() { p = recover() != nil }()
		_ = porcupine.VisualizePath(searched, info, filepath.Join(t.TempDir(), "stopped.html"))
		return false
	}()
	if !panicked {
		t.Fatal("drawing with the stopped model no longer panics: this test no longer shows the hazard")
	}
	path := filepath.Join(t.TempDir(), "picture.html")
	if err := draw(m, partition, info, path); err != nil {
		t.Fatal(err)
	}
	if page, err := os.ReadFile(path); err != nil || len(page) == 0 {
		t.Fatalf("no page: %v", err)
	}
}
