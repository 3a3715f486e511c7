package main

// Searching while the file is read. A register key's history is cut into
// segments where it is sequential anyway (segments.go); the cuts need no more
// than what the file has shown so far, because faultbed writes events in time
// order: when a key's next operation is invoked, the previous one is a cut if
//   - no earlier operation of the key was open when it was invoked, and every
//     earlier one had returned before it was called;
//   - it has returned (ok, a read or a write: its effect is known) before the
//     next is called;
//   - the segment holds at least streamFirstOps operations for a key's first, twice as
//     many for each next one, up to streamMinOps (fewer than splitPartition's segmentMinOps:
//     the sooner the searches start and the closer they follow the reading, the more of it
//     they hide; on a 10k history, 8 doubling to 128 left the whole check as long as 64 then
//     256 did, and the time outside any search about half as long; 4 rather than 8 makes the
//     first cut in the file's first block, which the pairing goroutine reads itself: with that
//     one block read before pairing (headBlocks), the first search began 0.85 ms into the check
//     against 1.24, median of 20 fresh processes).
// Every later operation of the key is then called after it returned, as long as
// the calls of a key come in time order; that is checked on every invocation, and
// the first one out of order, an append (states become texts), or anything that
// sends the file back to Python voids what was searched early: the whole history
// is then searched after reading, as before. An info operation (other than a
// read, which constrains nothing) overlaps everything after it: no cut after one.
// What is left after a key's last cut is searched after reading, with the rest.
//
// The verdict is the same as searching the whole history: the same cuts are made
// (splitPartition's rule, applied as the file goes by), each segment is searched
// alike, and the file is read to its end either way, so a file with a problem
// further on still goes to Python, which names it, whatever an early segment found.

import (
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/anishathalye/porcupine"
)

// StreamEnv set to 0 turns searching while reading off (the A/B tests compare both).
const StreamEnv = "FAULTBED_SEARCH_WHILE_READING"

const (
	streamMinOps   = 128
	streamFirstOps = 4
)

type streamKey struct {
	slots     []int32              // operations since the last cut, in invocation order (into jsonlReader.all)
	carry     *porcupine.Operation // the state the last cut left, opening the next segment
	from      int32                // the first slot after the last cut (-1: never cut)
	open      int                  // invoked and not completed (an info operation never completes)
	latestRet int64                // the latest return of a completed operation
	lastCall  int64                // the latest call: calls must come in time order
	clean     int32                // the latest operation if it found its key settled when invoked, else -1
	cuts      int                  // segments cut so far: the next needs streamFirstOps << cuts operations
}

type stream struct {
	m       *model
	keys    []streamKey // by jsonlReader partition index
	void    bool        // what was searched early does not count: search everything after reading
	stop    atomic.Bool // an early segment is illegal (then the rest need not be searched), or voided
	limit   *memoryLimit
	unwatch func()
	gate    *gate // searches at once: one core is left to the reading until it is over
	wg      sync.WaitGroup
	clock   *searchClock
	mu      sync.Mutex
	results map[string]verdict // early segments' verdicts by partition key
	count   int                // early segments
}

func newStream(m *model, limit *memoryLimit, clock *searchClock) *stream {
	if os.Getenv(StreamEnv) == "0" || registerOpsByModel[m.name] == nil {
		return nil
	}
	return &stream{m: m, limit: limit, clock: clock, results: map[string]verdict{},
		gate: newGate(max(1, runtime.GOMAXPROCS(0)-1))}
}

func (s *stream) key(index int) *streamKey {
	for index >= len(s.keys) {
		s.keys = append(s.keys, streamKey{from: -1, clean: -1})
	}
	return &s.keys[index]
}

// invoked notes a new operation (slot) of partition index called at call; it may
// make the key's previous operation a cut.
func (s *stream) invoked(r *jsonlReader, index int, slot int32, call int64) {
	if s.void {
		return
	}
	k := s.key(index)
	if call < k.lastCall {
		s.abandon() // not in time order: the cuts made so far may not hold
		return
	}
	k.lastCall = call
	least := min(streamMinOps, streamFirstOps<<min(k.cuts, 16))
	if n := len(k.slots); n >= least && k.clean == k.slots[n-1] && k.open == 0 {
		s.cutAt(r, index, k, call)
	}
	k.clean = -1
	if k.open == 0 && k.latestRet < call {
		k.clean = slot
	}
	k.slots = append(k.slots, slot)
	k.open++
}

// cutAt cuts the key at its latest operation when that one returned before call.
func (s *stream) cutAt(r *jsonlReader, index int, k *streamKey, call int64) {
	lastSlot := k.slots[len(k.slots)-1]
	last := r.all[lastSlot]
	if last.Input == nil || last.Return >= call {
		return
	}
	carry, before, ok := cutAt(last)
	if !ok {
		return
	}
	ops := make([]porcupine.Operation, 0, len(k.slots)+1)
	if k.carry != nil {
		ops = append(ops, *k.carry)
	}
	for _, slot := range k.slots[:len(k.slots)-1] {
		if r.all[slot].Input != nil { // nil: failed, or an info read
			ops = append(ops, r.all[slot])
		}
	}
	ops = append(ops, before...)
	k.cuts++
	if len(before) > 0 { // a read: the next segment starts from the state it saw
		k.carry, k.slots, k.from = &carry, k.slots[:0], lastSlot+1
	} else { // a write: the next segment starts with it
		k.carry, k.slots, k.from = nil, append(k.slots[:0], lastSlot), lastSlot
	}
	s.search(r.h.partitions[index].key, ops)
}

// completed notes the end of a key's operation: returned at ret, or dropped
// (failed, an info read), or pending forever (info).
func (s *stream) completed(index int, ret int64, dropped, pending bool) {
	if s.void || index >= len(s.keys) {
		return
	}
	k := &s.keys[index]
	if pending {
		return // stays open: no cut after it
	}
	k.open--
	if !dropped {
		k.latestRet = max(k.latestRet, ret)
	}
}

func (s *stream) search(key string, ops []porcupine.Operation) {
	if s.unwatch == nil {
		s.unwatch = s.limit.watch(&s.stop)
	}
	s.count++
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.gate.enter()
		defer s.gate.leave()
		s.clock.begin()
		v := searchOne(s.m, ops, &s.stop)
		s.clock.end()
		s.mu.Lock()
		if rank[v] > rank[s.results[key]] {
			s.results[key] = v
		}
		s.mu.Unlock()
		if v == verdictIllegal {
			s.stop.Store(true)
		}
	}()
}

// read notes that the file is read: the searches left take every core.
func (s *stream) read() {
	s.gate.widen(runtime.GOMAXPROCS(0))
}

// gate lets a number of searches run at once; the number can grow.
type gate struct {
	mu            sync.Mutex
	cond          *sync.Cond
	limit, active int
}

func newGate(limit int) *gate {
	g := &gate{limit: limit}
	g.cond = sync.NewCond(&g.mu)
	return g
}

func (g *gate) enter() {
	g.mu.Lock()
	for g.active >= g.limit {
		g.cond.Wait()
	}
	g.active++
	g.mu.Unlock()
}

func (g *gate) leave() {
	g.mu.Lock()
	g.active--
	g.cond.Signal()
	g.mu.Unlock()
}

func (g *gate) widen(limit int) {
	g.mu.Lock()
	g.limit = limit
	g.cond.Broadcast()
	g.mu.Unlock()
}

// abandon voids what was searched early: everything is searched after reading.
func (s *stream) abandon() {
	if s.void {
		return
	}
	s.void = true
	s.stop.Store(true)
	s.wait()
}

// wait lets the early searches end; they hold the model's texts.
func (s *stream) wait() {
	s.wg.Wait()
	if s.unwatch != nil {
		s.unwatch()
		s.unwatch = nil
	}
}

// from is where partition index's history continues after its last cut, and the
// state it starts from (nil: the partition is whole, or opens with its cut write).
func (s *stream) remainder(index int) (from int32, carry *porcupine.Operation) {
	if s == nil || s.void || index >= len(s.keys) || s.keys[index].from < 0 {
		return 0, nil
	}
	return s.keys[index].from, s.keys[index].carry
}

// searchClock is the wall time during which at least one segment is searched, and when the
// first search began and the last one ended: what the caller waits for beside the search is
// then before the first, between searches (none running: the reading has not cut the next
// segment yet, or it waits to be scheduled) and after the last.
type searchClock struct {
	mu          sync.Mutex
	active      int
	since       time.Time
	busy        time.Duration
	first, last time.Time
}

func (c *searchClock) begin() {
	c.mu.Lock()
	if c.active == 0 {
		c.since = time.Now()
		if c.first.IsZero() {
			c.first = c.since
		}
	}
	c.active++
	c.mu.Unlock()
}

func (c *searchClock) end() {
	c.mu.Lock()
	c.active--
	if c.active == 0 {
		c.last = time.Now()
		c.busy += c.last.Sub(c.since)
	}
	c.mu.Unlock()
}
