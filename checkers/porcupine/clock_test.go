package main

import (
	"os"
	"path/filepath"
	"testing"
)

// The response says when, in the call, the first search began and the last one ended: the time
// between them holds every moment some segment was searched (porcupine_ms), and the call holds both.
func TestTheSearchesSpanIsWithinTheCallAndHoldsTheSearch(t *testing.T) {
	path := filepath.Join(t.TempDir(), "history.jsonl")
	if err := os.WriteFile(path, []byte(warmUpHistory(2000)), 0o644); err != nil {
		t.Fatal(err)
	}
	resp := check(&request{Model: "kv", Initial: []byte("null"), HistoryFile: path, HistoryFormat: "faultbed"})
	if resp.Error != "" || resp.Result != "Ok" || resp.SegmentsEarly == 0 {
		t.Fatalf("check: %+v", resp)
	}
	const tick = 0.002 // each figure is truncated to the microsecond
	if !(resp.SearchFromMs > 0 && resp.SearchFromMs <= resp.SearchToMs && resp.SearchToMs <= resp.GoMs+tick &&
		resp.SearchToMs-resp.SearchFromMs >= resp.PorcupineMs-tick && resp.PorcupineMs > 0) {
		t.Fatalf("searches from %.3f to %.3f ms, %.3f ms of them searching, in a call of %.3f ms",
			resp.SearchFromMs, resp.SearchToMs, resp.PorcupineMs, resp.GoMs)
	}
	none := check(&request{Model: "kv", Initial: []byte("null"), Ops: opRows("[]")})
	if none.Error != "" || none.Ops != 0 {
		t.Fatalf("an empty history: %+v", none)
	}
	if none.SearchFromMs != 0 || none.SearchToMs != 0 {
		t.Fatalf("nothing searched, yet searches from %.3f to %.3f ms", none.SearchFromMs, none.SearchToMs)
	}
}
