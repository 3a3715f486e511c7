package main

// Long register histories are searched in segments, within a memory bound.
//
// porcupine remembers every state it visits together with a bitset of the
// operations linearized so far, one bit per operation of the partition: n
// operations cost about n*n/8 bytes (125,000 operations on one key: 2 GB). So a
// key's history is cut where it is sequential anyway: at an operation that
// overlaps no other (every earlier one returned before it was called, every later
// one is called after it returned) and whose effect on the state is known. Every
// linearization puts the earlier operations first, then it, then the later ones:
//   - a read of v: the earlier part plus the read is one segment (the earlier
//     part must end in v), and the next segment starts from v;
//   - a write of x: the earlier part is a segment (any end state will do), and
//     the next starts from x.
// The history is linearizable exactly when every segment is. A pending (info)
// operation overlaps everything after it, so there is no cut after one.
//
// Segments are searched by a few workers (not one goroutine each: each holds a
// cache), and everything stops at the first illegal segment, at the timeout or
// when the process passes the memory limit, which makes the verdict unknown.

import (
	"cmp"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/anishathalye/porcupine"
)

const segmentMinOps = 2048 // shorter segments would spend more on porcupine's set-up than they save

type segment struct {
	partition int
	ops       []porcupine.Operation
}

// splitPartition cuts one key's operations into segments; they are in call order.
func splitPartition(index int, ops []porcupine.Operation) []segment {
	if len(ops) < 2*segmentMinOps {
		return []segment{{partition: index, ops: ops}}
	}
	sorted := make([]porcupine.Operation, len(ops))
	copy(sorted, ops)
	byCall := func(a, b porcupine.Operation) int { return cmp.Compare(a.Call, b.Call) }
	if !slices.IsSortedFunc(sorted, byCall) { // rows come in invocation order: usually sorted already
		slices.SortStableFunc(sorted, byCall)
	}
	var segments []segment
	start := 0
	var current []porcupine.Operation
	latestReturn := int64(-1 << 63)
	for i, op := range sorted {
		isolated := latestReturn < op.Call && (i+1 == len(sorted) || op.Return < sorted[i+1].Call)
		latestReturn = max(latestReturn, op.Return)
		if !isolated || i-start < segmentMinOps || len(sorted)-i < segmentMinOps {
			continue
		}
		carry, before, ok := cutAt(op)
		if !ok {
			continue
		}
		current = append(sorted[start:i:i], before...)
		segments = append(segments, segment{partition: index, ops: current})
		sorted[i] = carry // the next segment starts from the state the cut leaves
		start = i
	}
	return append(segments, segment{partition: index, ops: sorted[start:]})
}

// cutAt tells whether op can end a segment: carry is an operation that sets the
// state it leaves (it opens the next segment), before what closes the earlier one.
func cutAt(op porcupine.Operation) (carry porcupine.Operation, before []porcupine.Operation, ok bool) {
	in, isRegister := op.Input.(*registerInput)
	out, known := op.Output.(*registerOutput)
	if !isRegister || !known {
		return op, nil, false
	}
	switch in.op {
	case opRead:
		carry = op
		carry.Input = &registerInput{op: opCarry, key: in.key, value: out.value}
		carry.Output = wrote
		return carry, []porcupine.Operation{op}, true
	case opWrite:
		return op, nil, true
	default:
		return op, nil, false
	}
}

// searchSegments checks every partition, split into segments, with a few
// workers; verdicts are per partition.
func searchSegments(m *model, partitions []partition, timeout time.Duration, limit *memoryLimit,
	clock *searchClock, stop *atomic.Bool) ([]verdict, int) {
	var segments []segment
	for i, p := range partitions {
		segments = append(segments, splitPartition(i, p.ops)...)
	}
	if stop == nil { // else shared with the searches made while reading: an illegal segment stops all
		stop = new(atomic.Bool)
	}
	if timeout > 0 {
		timer := time.AfterFunc(timeout, func() { stop.Store(true) })
		defer timer.Stop()
	}
	defer limit.watch(stop)()
	verdicts := make([]verdict, len(partitions))
	var mu sync.Mutex
	next := atomic.Int64{}
	var wg sync.WaitGroup
	for w := 0; w < min(runtime.GOMAXPROCS(0), len(segments)); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int(next.Add(1) - 1); i < len(segments); i = int(next.Add(1) - 1) {
				s := segments[i]
				clock.begin()
				v := searchOne(m, s.ops, stop)
				clock.end()
				mu.Lock()
				if rank[v] > rank[verdicts[s.partition]] {
					verdicts[s.partition] = v
				}
				mu.Unlock()
				if v == verdictIllegal {
					stop.Store(true)
				}
			}
		}()
	}
	wg.Wait()
	return verdicts, len(segments)
}

var rank = map[verdict]int{verdictOk: 0, verdictCancelled: 1, verdictIllegal: 2} // illegal beats cancelled

// searchOne runs porcupine on one segment. porcupine cannot be cancelled from
// outside, so the step function refuses every step once told to stop: the search
// then unwinds quickly, and its answer is discarded as cancelled.
func searchOne(m *model, ops []porcupine.Operation, stop *atomic.Bool) verdict {
	if stop.Load() {
		return verdictCancelled
	}
	if m.impossible != nil {
		if _, found := m.impossible(ops); found {
			return verdictIllegal
		}
	}
	var aborted atomic.Bool
	ok := porcupine.CheckOperations(stoppable(m.porcupine, stop, &aborted), ops)
	switch {
	case aborted.Load():
		return verdictCancelled
	case !ok:
		return verdictIllegal
	}
	return verdictOk
}

// stoppable is the model with a step that refuses everything once stop is set
// (and notes that in aborted): a search then unwinds quickly.
func stoppable(m porcupine.Model, stop, aborted *atomic.Bool) porcupine.Model {
	step := m.Step
	m.Step = func(state, input, output interface{}) (bool, interface{}) {
		if stop.Load() {
			aborted.Store(true)
			return false, state
		}
		return step(state, input, output)
	}
	return m
}

// memoryLimit stops the search when the process's resident memory passes bytes, or when the
// machine's available memory falls below floor while the process holds more than hold: checks
// running beside each other (a test suite's workers, parallel CI jobs) may each stay within
// their own limit and still, together, take the machine.
type memoryLimit struct {
	bytes      int64
	floor      int64
	hold       int64
	exceeded   atomic.Bool
	machineLow atomic.Int64 // the machine's available bytes when the floor stopped the search; 0: it did not
	peak       atomic.Int64
}

// floorEvery: the machine's memory is read every this many samples of the process's own (a
// read of /proc/meminfo costs some tens of microseconds)
const floorEvery = 5

// watch samples the resident set size until the returned function is called.
func (l *memoryLimit) watch(stop *atomic.Bool) func() {
	if l == nil || (l.bytes <= 0 && l.floor <= 0) {
		return func() {}
	}
	done := make(chan struct{})
	go func() {
		ticker := time.NewTicker(10 * time.Millisecond)
		defer ticker.Stop()
		for tick := 0; ; tick++ {
			select {
			case <-done:
				return
			case <-ticker.C:
				rss := residentBytes()
				if rss > l.peak.Load() {
					l.peak.Store(rss)
				}
				if l.bytes > 0 && rss > l.bytes {
					l.exceeded.Store(true)
					stop.Store(true)
				}
				if l.floor > 0 && rss > l.hold && tick%floorEvery == 0 {
					if available, ok := availableBytes(); ok && available < l.floor {
						l.machineLow.Store(max(available, 1))
						stop.Store(true)
					}
				}
			}
		}
	}()
	return func() { close(done) }
}

// availableBytes is the machine's available memory (MemAvailable: what can be had without
// swapping, page cache included), false when the kernel does not say.
func availableBytes() (int64, bool) {
	meminfo, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0, false
	}
	for _, line := range strings.Split(string(meminfo), "\n") {
		if rest, found := strings.CutPrefix(line, "MemAvailable:"); found {
			fields := strings.Fields(rest)
			if len(fields) == 0 {
				return 0, false
			}
			kb, err := strconv.ParseInt(fields[0], 10, 64)
			return kb << 10, err == nil
		}
	}
	return 0, false
}

var pageSize = int64(os.Getpagesize())

// residentBytes is this process's resident set (Python and Go together).
func residentBytes() int64 {
	statm, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		var stats runtime.MemStats
		runtime.ReadMemStats(&stats)
		return int64(stats.Sys)
	}
	fields := strings.Fields(string(statm))
	if len(fields) < 2 {
		return 0
	}
	pages, _ := strconv.ParseInt(fields[1], 10, 64)
	return pages * pageSize
}
