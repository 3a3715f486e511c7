package main

// Warming up while the library loads. A check in a fresh process pays, on its first
// pass, for what the process has never done: the pages of the reader's and the search's
// code, the first file opened (Go's poller starts), the reader's buffers. On a virtual
// machine where a fresh page costs 6-11 us that was most of the time before a 10k
// history's first search began. So the library checks a small history of its own as it
// loads, on another CPU while Python imports the command's modules, and leaves its blocks
// in the reader's pool (jsonl_parallel.go): on a 10k history the first three blocks were
// read and parsed in 0.17 ms against 0.45 ms cold, the file opened and the first blocks
// read 0.16 ms into the check against 0.6 ms, 2,070 page faults in the check against 2,500.

import (
	"fmt"
	"os"
	"runtime"
	"strings"
	"syscall"
)

// warmUp checks a small generated history (through a pipe: nothing on disk) as a caller's
// check would; nothing of it is kept, and a failure only leaves the process cold.
func warmUp() {
	defer func() { _ = recover() }()
	if _, err := checkWarmUpHistory(); err != nil {
		return
	}
	if checking.Load() == 0 { // a caller's check already running has its own heap to mark: no collection forced on it
		runtime.GC() // what the warm-up allocated, freed: the first check reuses its pages
	}
}

// checkWarmUpHistory checks warmUpHistory as a caller's file would be checked (read by Go
// from a path), through a pipe.
func checkWarmUpHistory() (response, error) {
	reader, writer, err := os.Pipe()
	if err != nil {
		return response{}, err
	}
	defer reader.Close()
	// a small pipe, filled a chunk at a time: a caller's check that starts meanwhile ends the
	// history there, and the warm-up with it, instead of sharing the CPUs with it to the end
	_, _, _ = syscall.Syscall(syscall.SYS_FCNTL, writer.Fd(), fSetPipeSize, warmUpPipeBytes)
	go func() { // more than a pipe holds: written as it is read
		defer writer.Close()
		history := warmUpHistory(warmUpRounds)
		for len(history) > 0 && checking.Load() == 0 {
			chunk := history[:min(len(history), warmUpChunkBytes)]
			if _, err := writer.WriteString(chunk); err != nil {
				return
			}
			history = history[len(chunk):]
		}
	}()
	return check(&request{Model: "kv", Initial: []byte("null"), HistoryFormat: "faultbed",
		HistoryFile: fmt.Sprintf("/proc/self/fd/%d", reader.Fd())}), nil
}

// warmUpPipeBytes and warmUpChunkBytes: what the warm-up's reader may still find once a caller's check
// has begun (a pipe's default is 64 KB, half the history).
const (
	warmUpPipeBytes  = 8 << 10
	warmUpChunkBytes = 4 << 10
	fSetPipeSize     = 1031 // F_SETPIPE_SZ
)

// warmUpRounds: six lines a round, about 600 bytes: some 130 KB, the reader's first five
// blocks (16 KB, then 32 KB each), the one it reads itself among them.
const warmUpRounds = 220

// warmUpHistory is a linearizable register history as faultbed writes one (the same
// separators and fields, so the reader learns the layouts it will meet): rounds of
// writes, reads and a compare-and-set on two keys by three processes, sequential.
func warmUpHistory(rounds int) string {
	var b strings.Builder
	index, clock := 0, int64(1000)
	line := func(typ string, process int, f, key, value, extra string) {
		fmt.Fprintf(&b, `{"type": %q, "process": %d, "f": %q, "key": %q, "value": %s%s, "index": %d, "time": %d}`+"\n",
			typ, process, f, key, value, extra, index, clock)
		index++
		clock += 1000
	}
	for round := 0; round < rounds; round++ {
		key := fmt.Sprintf("k%d", round%2)
		value := fmt.Sprint(round)
		process := round % 3
		line("invoke", process, "write", key, value, "")
		line("ok", process, "write", key, value, `, "node": "n1"`)
		line("invoke", process, "read", key, "null", "")
		line("ok", process, "read", key, value, `, "node": "n1"`)
		line("invoke", process, "cas", key, "["+value+", "+value+"]", "")
		line("ok", process, "cas", key, "["+value+", "+value+"]", `, "node": "n1"`)
	}
	return b.String()
}
