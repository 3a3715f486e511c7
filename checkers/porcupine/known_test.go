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

// With events_of_illegal, the answer says where the illegal keys' operations are in the
// file: every invocation and completion (a failed one too, an info one, one never
// completed), 1-based among the lines that hold an event, in the file's order; nothing
// for a legal key, a nemesis event or a blank line, and nothing unless asked.
func TestTheIllegalKeysEventsAreNamedByTheirPlaceInTheFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "history.jsonl")
	lines := `{"type": "invoke", "process": 0, "f": "write", "key": "a", "value": 1, "time": 10}
{"type": "invoke", "process": 2, "f": "write", "key": "b", "value": 1, "time": 11}

{"type": "ok", "process": 0, "f": "write", "key": "a", "value": 1, "time": 20}
{"type": "info", "process": "nemesis", "f": "start-partition", "value": "x", "time": 21}
{"type": "invoke", "process": 3, "f": "write", "key": "a", "value": 5, "time": 22}
{"type": "fail", "process": 3, "f": "write", "key": "a", "value": 5, "time": 23}
{"type": "ok", "process": 2, "f": "write", "key": "b", "value": 1, "time": 24}
{"type": "invoke", "process": 1, "f": "read", "key": "a", "value": null, "time": 30}
{"type": "ok", "process": 1, "f": "read", "key": "a", "value": 2, "time": 40}
{"type": "invoke", "process": 4, "f": "write", "key": "a", "value": 7, "time": 41}
{"type": "info", "process": 4, "f": "write", "key": "a", "value": 7, "time": 42}
{"type": "invoke", "process": 0, "f": "read", "key": "a", "value": null, "time": 50}
`
	if err := os.WriteFile(path, []byte(lines), 0o644); err != nil {
		t.Fatal(err)
	}
	resp := check(&request{Model: "kv", HistoryFile: path, EventsOfIllegal: true})
	want := []int32{1, 3, 5, 6, 8, 9, 10, 11, 12}
	if resp.Result != "Illegal" || len(resp.IllegalEvents) != len(want) {
		t.Fatalf("events of the illegal key a: want %v: %+v", want, resp)
	}
	for i := range want {
		if resp.IllegalEvents[i] != want[i] {
			t.Fatalf("events of the illegal key a: want %v, got %v", want, resp.IllegalEvents)
		}
	}
	if resp = check(&request{Model: "kv", HistoryFile: path}); resp.IllegalEvents != nil {
		t.Fatalf("not asked: none given: %v", resp.IllegalEvents)
	}
}
