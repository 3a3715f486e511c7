package main

import (
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
)

// The warm-up's history is read by Go's own reader (not handed back to Python), is
// linearizable, and is searched while read, as a caller's history would be.
func TestWarmUpHistoryTakesTheFastPath(t *testing.T) {
	resp, err := checkWarmUpHistory()
	if err != nil {
		t.Fatal(err)
	}
	if resp.Error != "" || resp.Result != "Ok" || resp.Ops != 3*warmUpRounds || resp.SegmentsEarly == 0 {
		t.Fatalf("warm-up check: %+v", resp)
	}
}

// The warm-up leaves every block its check took in the pool, and a check takes them and gives
// them all back (an early stop leaves only those still in another goroutine's hands to the collector).
func TestBlocksArePooledAcrossChecks(t *testing.T) {
	<-loaded // the library's own warm-up fills the pool too
	blockPool.Lock()
	blockPool.blocks = nil
	blockPool.Unlock()
	warmUp()
	blockPool.Lock()
	pooled := len(blockPool.blocks)
	warmed, emptied := 0, 0
	for _, b := range blockPool.blocks {
		if cap(b.buf) >= blockBytes {
			warmed++
		}
		if len(b.data) == 0 && len(b.parse) == 0 && b.seq == 0 && !b.last {
			emptied++
		}
	}
	blockPool.Unlock()
	if want := min(runtime.GOMAXPROCS(0)+2+headBlocks, pooledBlocks); pooled != want || warmed < headBlocks ||
		emptied != pooled {
		t.Fatalf("after the warm-up: %d blocks pooled, %d with their buffers, %d emptied", pooled, warmed, emptied)
	}
	warmUp()
	blockPool.Lock()
	again := len(blockPool.blocks)
	blockPool.Unlock()
	if again != pooled {
		t.Fatalf("a second check left %d blocks in the pool, not the %d it took", again, pooled)
	}
}

// A block handed back to the reading goroutine is refilled at once: the pairing goroutine once
// read its `last` after giving it back, saw the refilled final block's, and stopped there,
// leaving the rest of the file unread (a history with an impossible read in its lost part was
// valid, 1 in 30 fresh processes, whose first check runs beside the warm-up). Checks beside the
// warm-up read every operation, every time; `go test -race` (the suite runs it so) flags the race.
func TestAFileReadBesideTheWarmUpIsReadWhole(t *testing.T) {
	<-loaded
	path := filepath.Join(t.TempDir(), "history.jsonl")
	if err := os.WriteFile(path, []byte(warmUpHistory(4000)), 0o644); err != nil { // some 70 blocks
		t.Fatal(err)
	}
	for round := 0; round < 20; round++ {
		var wg sync.WaitGroup
		wg.Add(1)
		go func() { defer wg.Done(); warmUp() }()
		resp := check(&request{Model: "kv", Initial: []byte("null"), HistoryFile: path, HistoryFormat: "faultbed"})
		wg.Wait()
		if resp.Error != "" || resp.Result != "Ok" || resp.Ops != 3*4000 || resp.Events != 6*4000 {
			t.Fatalf("round %d: %s, %d ops, %d events (want 12000, 24000) %s", round, resp.Result, resp.Ops,
				resp.Events, resp.Error)
		}
	}
}

// A caller's check that begins while the warm-up runs ends the warm-up's history where it is:
// the two would otherwise share the CPUs to the end (on 2 CPUs a 10k history's check spent a
// few percent more outside its search). Begun with a caller's check running, it reads nothing.
func TestTheWarmUpGivesWayToACallersCheck(t *testing.T) {
	checking.Add(1)
	resp, err := checkWarmUpHistory()
	checking.Add(-1)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Error != "" || resp.Ops != 0 || resp.Events != 0 {
		t.Fatalf("a warm-up beside a caller's check read %d events, %d operations (want none) %s",
			resp.Events, resp.Ops, resp.Error)
	}
	if resp, _ := checkWarmUpHistory(); resp.Ops != 3*warmUpRounds { // and alone, all of it
		t.Fatalf("the warm-up alone read %d operations, want %d", resp.Ops, 3*warmUpRounds)
	}
}
