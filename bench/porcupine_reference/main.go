// Command porcupine_reference is the yardstick for `make bench`: porcupine used
// directly from Go, as its own tests use it, with no faultbed code in the way.
//
//	porcupine_reference jepsen FILE...   porcupine's etcd test: parse and check each log in turn
//	porcupine_reference kv [-max-gb G] FILE   a faultbed JSONL kv history, partitioned by key
//
// It prints one JSON object: operations, milliseconds reading, searching and in
// total, and the verdicts. With -max-gb it gives up (exceeded: true) when the Go
// heap passes G GB, so that porcupine's memory blow-up cannot take the machine.
// The etcd model and log parser are porcupine's own test code (porcupine_test.go,
// v1.3.0, MIT licence), copied because Go does not export test files.
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"runtime/metrics"
	"time"

	"github.com/anishathalye/porcupine"
)

type report struct {
	Histories int     `json:"histories"`
	Ops       int     `json:"ops"`
	ReadMs    float64 `json:"read_ms"`
	SearchMs  float64 `json:"search_ms"`
	WallMs    float64 `json:"wall_ms"`
	Ok        int     `json:"ok"`
	Illegal   int     `json:"illegal"`
	Unknown   int     `json:"unknown"`
	Exceeded  bool    `json:"exceeded,omitempty"`
	HeapGB    float64 `json:"max_heap_gb"`
}

var started = time.Now()

func main() {
	if len(os.Args) < 3 {
		fmt.Fprintln(os.Stderr, "usage: porcupine_reference jepsen FILE... | kv [-max-gb G] FILE")
		os.Exit(3)
	}
	var r report
	switch os.Args[1] {
	case "jepsen":
		r = checkJepsenLogs(os.Args[2:])
	case "kv":
		args := os.Args[2:]
		maxGB := 0.0
		if len(args) == 3 && args[0] == "-max-gb" {
			fmt.Sscanf(args[1], "%g", &maxGB)
			args = args[2:]
		}
		r = checkKv(args[0], maxGB)
	default:
		fmt.Fprintf(os.Stderr, "unknown mode %q\n", os.Args[1])
		os.Exit(3)
	}
	r.WallMs = ms(time.Since(started))
	r.HeapGB = heapGB()
	out, _ := json.Marshal(r)
	fmt.Println(string(out))
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func count(r *report, ok bool) {
	if ok {
		r.Ok++
	} else {
		r.Illegal++
	}
}

func checkJepsenLogs(paths []string) report {
	var r report
	for _, path := range paths {
		before := time.Now()
		events := parseJepsenLog(path)
		searching := time.Now()
		count(&r, porcupine.CheckEvents(etcdModel, events))
		r.SearchMs += ms(time.Since(searching))
		r.ReadMs += ms(searching.Sub(before))
		r.Histories++
		r.Ops += len(events) / 2
	}
	return r
}

// heapGB is the largest the heap has been, as far as the runtime reports it.
func heapGB() float64 {
	sample := []metrics.Sample{{Name: "/memory/classes/total:bytes"}}
	metrics.Read(sample)
	return float64(sample[0].Value.Uint64()) / (1 << 30)
}

// watch stops the process, with a report, when memory passes maxGB.
func watch(maxGB float64, r *report) {
	if maxGB <= 0 {
		return
	}
	go func() {
		for range time.Tick(20 * time.Millisecond) {
			if heapGB() > maxGB {
				r.Exceeded = true
				r.WallMs = ms(time.Since(started))
				r.HeapGB = heapGB()
				out, _ := json.Marshal(r)
				fmt.Println(string(out))
				os.Exit(0)
			}
		}
	}()
}
