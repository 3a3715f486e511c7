package main

import (
	"runtime"
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
