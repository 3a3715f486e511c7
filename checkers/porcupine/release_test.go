package main

import (
	"runtime"
	"testing"
)

// heldHeapBytes reads, without stopping the world, what ReadMemStats gives as HeapSys - HeapReleased.
func TestHeldHeapBytesIsWhatTheHeapHoldsFromTheMachine(t *testing.T) {
	held := make([][]byte, 0, 64)
	for i := 0; i < 64; i++ {
		chunk := make([]byte, 1<<20)
		for j := 0; j < len(chunk); j += 4096 {
			chunk[j] = 1
		}
		held = append(held, chunk)
	}
	var stats runtime.MemStats
	runtime.ReadMemStats(&stats)
	want, got := stats.HeapSys-stats.HeapReleased, heldHeapBytes()
	runtime.KeepAlive(held)
	if got < 64<<20 || float64(got) < 0.9*float64(want) || float64(got) > 1.1*float64(want) {
		t.Fatalf("heldHeapBytes %d MB, ReadMemStats says %d MB held", got>>20, want>>20)
	}
}
