package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

// Keys a check of the same history found illegal are drawn without a second search;
// a key the history does not have makes the request search as usual.
func TestKnownIllegalKeysAreDrawnWithoutASearch(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "history.jsonl")
	lines := `{"type": "invoke", "process": 0, "f": "write", "key": "a", "value": 1, "time": 10}
{"type": "ok", "process": 0, "f": "write", "key": "a", "value": 1, "time": 20}
{"type": "invoke", "process": 1, "f": "read", "key": "a", "value": null, "time": 30}
{"type": "ok", "process": 1, "f": "read", "key": "a", "value": 2, "time": 40}
{"type": "invoke", "process": 2, "f": "write", "key": "b", "value": 1, "time": 50}
{"type": "ok", "process": 2, "f": "write", "key": "b", "value": 1, "time": 60}
`
	if err := os.WriteFile(path, []byte(lines), 0o644); err != nil {
		t.Fatal(err)
	}
	draw := func(known string) response {
		picture := filepath.Join(dir, "picture.html")
		os.Remove(picture)
		resp := check(&request{Model: "kv", HistoryFile: path, Visualize: picture,
			KnownIllegal: []json.RawMessage{json.RawMessage(known)}})
		if _, err := os.Stat(picture); err != nil || resp.Error != "" {
			t.Fatalf("known %s: no picture (%v): %+v", known, err, resp)
		}
		return resp
	}
	resp := draw(`"a"`)
	if resp.Result != "Illegal" || resp.Segments != 0 || resp.CancelledPartitions != 1 ||
		len(resp.IllegalKeys) != 1 || string(resp.IllegalKeys[0]) != `"a"` || len(resp.ImpossibleReads) != 1 {
		t.Fatalf("drawn from the known verdict: %+v", resp)
	}
	resp = draw(`"zz"`)
	if resp.Result != "Illegal" || resp.Segments == 0 || len(resp.IllegalKeys) != 1 {
		t.Fatalf("an unknown key: searched as usual: %+v", resp)
	}
}
