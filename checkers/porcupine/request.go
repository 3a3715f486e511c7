package main

// The JSON protocol between Python (checkers/linearizable.py) and this library.
//
// Operations travel as arrays rather than objects because histories have tens of
// thousands of them and arrays are cheaper to write in Python and to decode here.

import (
	"encoding/json"
	"fmt"
	"strconv"
)

// An op row: [process, call, return, f, key, input, output, metadata?].
// return is null for an operation whose outcome is unknown (Jepsen's info): it
// returns "at infinity" with an output every model accepts.
const (
	colProcess = iota
	colCall
	colReturn
	colF
	colKey
	colInput
	colOutput
	colMeta
	minColumns = colOutput + 1
	maxColumns = colMeta + 1
)

type request struct {
	Model         string          `json:"model"`
	Initial       json.RawMessage `json:"initial"`
	TimeoutMs     float64         `json:"timeout_ms"`
	MemoryLimitMB float64         `json:"memory_limit_mb"` // stop (unknown) when the process's RSS passes it; 0: no limit
	// stop (unknown) when the machine's available memory falls below MemoryFloorMB while the
	// process holds more than MemoryFloorHoldMB; 0: no floor
	MemoryFloorMB     float64          `json:"memory_floor_mb"`
	MemoryFloorHoldMB float64          `json:"memory_floor_hold_mb"`
	Visualize         string           `json:"visualize"`
	AlwaysVisualize   bool             `json:"always_visualize"`
	Ops               opRows           `json:"ops"`
	HistoryFile       string           `json:"history_file"`   // instead of ops: a history file
	HistoryFormat     string           `json:"history_format"` // faultbed (history.jsonl, the default) or porcupine-etcd
	Annotations       []annotationSpec `json:"annotations"`
	// KnownIllegal: the keys an earlier check of the same history found illegal; with
	// Visualize, they are drawn without searching the history again (the rest are left out)
	KnownIllegal []json.RawMessage `json:"known_illegal"`
	// EventsOfIllegal: with a faultbed history file, the answer lists where the illegal keys'
	// operations are in it (IllegalEvents), so that the caller reads those events alone
	EventsOfIllegal bool `json:"events_of_illegal"`
}

// annotationSpec is a nemesis (or other test framework) event drawn beside the history.
// End nil means "until the end of the history".
type annotationSpec struct {
	Tag         string `json:"tag"`
	Start       int64  `json:"start"`
	End         *int64 `json:"end"`
	Description string `json:"description"`
	Details     string `json:"details"`
	Color       string `json:"color"`
}

type response struct {
	Result              string            `json:"result,omitempty"` // Ok, Illegal or Unknown
	PorcupineMs         float64           `json:"porcupine_ms"`     // the search alone
	GoMs                float64           `json:"go_ms"`            // everything inside the call
	SearchFromMs        float64           `json:"search_from_ms"`   // from the call's start to the first search (0: none)
	SearchToMs          float64           `json:"search_to_ms"`     // to the end of the last search
	Ops                 int               `json:"ops"`              // operations checked (after dropping no-ops)
	Partitions          int               `json:"partitions"`
	Completed           int               `json:"completed"`                        // operations with a known return
	Events              int               `json:"events,omitempty"`                 // history_file: the events (lines) it holds
	Segments            int               `json:"segments"`                         // long partitions are searched in segments
	SegmentsEarly       int               `json:"segments_while_reading,omitempty"` // of them, searched while the file was read
	IllegalKeys         []json.RawMessage `json:"illegal_keys,omitempty"`
	IllegalEvents       []int32           `json:"illegal_events,omitempty"`   // events_of_illegal: 1-based, ascending
	ImpossibleReads     []impossibleRead  `json:"impossible_reads,omitempty"` // illegal without a search
	CancelledPartitions int               `json:"cancelled_partitions"`
	MemoryExceeded      bool              `json:"memory_exceeded,omitempty"`    // stopped at the memory limit: unknown
	MachineMemoryLow    bool              `json:"machine_memory_low,omitempty"` // stopped at the machine's floor: unknown
	AvailableMB         float64           `json:"available_mb,omitempty"`       // the machine's available memory then
	PeakRSSMB           float64           `json:"peak_rss_mb,omitempty"`        // the largest resident set seen while searching
	Visualization       string            `json:"visualization,omitempty"`
	VisualizationError  string            `json:"visualization_error,omitempty"`
	VisualizeMs         float64           `json:"visualize_ms,omitempty"`
	PictureSkipped      int               `json:"picture_skipped,omitempty"` // legal partitions too long to draw
	Error               string            `json:"error,omitempty"`
	ErrorOp             int               `json:"error_op"`           // index into ops, -1 when not about one op
	Fallback            bool              `json:"fallback,omitempty"` // history_file: read it in Python instead
}

// impossibleRead is a read that saw a value no operation called before it returned
// could have written (nor the initial one): illegal whatever the order.
type impossibleRead struct {
	Key    json.RawMessage `json:"key"`
	Value  json.RawMessage `json:"value"`
	Call   int64           `json:"call"`
	Return int64           `json:"return"`
	Origin string          `json:"origin,omitempty"`
}

// rawOp is one decoded row; values stay as canonical JSON text (Python writes them
// with sorted keys and no spaces), so equal values have equal text.
type rawOp struct {
	process string
	call    int64
	ret     int64
	known   bool // false: info, returns at infinity with an unknown output
	f       string
	key     string
	input   string
	output  string
	meta    string
}

type opError struct {
	index int
	msg   string
}

func (e *opError) Error() string { return e.msg }

func opErrorf(index int, format string, args ...interface{}) error {
	return &opError{index: index, msg: fmt.Sprintf(format, args...)}
}

// opRows keeps the operations undecoded: rows are split by a small scanner, because
// encoding/json would spend more time on a small history than the search does.
// encoding/json has validated the whole request before UnmarshalJSON runs.
type opRows []byte

func (r *opRows) UnmarshalJSON(data []byte) error {
	*r = append((*r)[:0], data...)
	return nil
}

// each calls visit with every row's columns, which are slices of the request.
func (r opRows) each(visit func(index int, cols [][]byte) error) error {
	data := []byte(r)
	if i := skipSpace(data, 0); i == len(data) || data[i] == 'n' {
		return nil // null: no operations
	}
	cols := make([][]byte, 0, maxColumns)
	index := 0
	return eachElement(data, func(row []byte) error {
		cols = cols[:0]
		if row[0] != '[' {
			return opErrorf(index, "operation is not a JSON array: %s", describeValue(string(row)))
		}
		if err := eachElement(row, func(col []byte) error { cols = append(cols, col); return nil }); err != nil {
			return err
		}
		index++
		return visit(index-1, cols)
	})
}

// eachElement calls visit with each element of the JSON array that data holds.
func eachElement(data []byte, visit func([]byte) error) error {
	i := skipSpace(data, 0)
	if i == len(data) || data[i] != '[' {
		return fmt.Errorf("expected a JSON array")
	}
	for i = skipSpace(data, i+1); i < len(data) && data[i] != ']'; {
		end := valueEnd(data, i)
		if err := visit(data[i:end]); err != nil {
			return err
		}
		i = skipSpace(data, end)
		if i < len(data) && data[i] == ',' {
			i = skipSpace(data, i+1)
		}
	}
	return nil
}

// jsonElements returns the elements of a JSON array as texts; ok is false when the
// text is not an array. Only for text from the (validated) request.
func jsonElements(text string) (elements []string, ok bool) {
	data := []byte(text)
	err := eachElement(data, func(element []byte) error {
		elements = append(elements, string(element))
		return nil
	})
	return elements, err == nil
}

func skipSpace(data []byte, i int) int {
	for i < len(data) && jsonSpace[data[i]] {
		i++
	}
	return i
}

var jsonSpace = [256]bool{' ': true, '\n': true, '\t': true, '\r': true}

// valueEnd returns where the (valid) JSON value starting at data[i] ends.
func valueEnd(data []byte, i int) int {
	depth := 0
	for ; i < len(data); i++ {
		switch data[i] {
		case '"':
			for i++; i < len(data) && data[i] != '"'; i++ {
				if data[i] == '\\' {
					i++
				}
			}
			if depth == 0 {
				return i + 1
			}
		case '[', '{':
			depth++
		case ']', '}':
			if depth == 0 {
				return i
			}
			depth--
			if depth == 0 {
				return i + 1
			}
		case ',', ' ', '\n', '\t', '\r':
			if depth == 0 {
				return i
			}
		}
	}
	return i
}

func decodeOp(index int, cols [][]byte) (rawOp, error) {
	if len(cols) < minColumns || len(cols) > maxColumns {
		return rawOp{}, opErrorf(index, "operation has %d fields, want %d or %d", len(cols), minColumns, maxColumns)
	}
	op := rawOp{process: string(cols[colProcess]), key: string(cols[colKey]),
		input: string(cols[colInput]), output: string(cols[colOutput])}
	var err error
	if op.call, err = strconv.ParseInt(string(cols[colCall]), 10, 64); err != nil {
		return rawOp{}, opErrorf(index, "call time %s is not a 64-bit integer", cols[colCall])
	}
	if string(cols[colReturn]) != "null" {
		if op.ret, err = strconv.ParseInt(string(cols[colReturn]), 10, 64); err != nil {
			return rawOp{}, opErrorf(index, "return time %s is not a 64-bit integer", cols[colReturn])
		}
		if op.ret < op.call {
			return rawOp{}, opErrorf(index, "returns (%d) before it is called (%d)", op.ret, op.call)
		}
		op.known = true
	}
	var ok bool
	if op.f, ok = jsonString(cols[colF]); !ok {
		return rawOp{}, opErrorf(index, "f must be a string, not %s", cols[colF])
	}
	if len(cols) > colMeta {
		op.meta, _ = jsonString(cols[colMeta]) // metadata is decoration only
	}
	return op, nil
}

// jsonString decodes a JSON string, quickly when it has no escapes (the usual case).
func jsonString(raw json.RawMessage) (string, bool) {
	n := len(raw)
	if n < 2 || raw[0] != '"' || raw[n-1] != '"' {
		return "", false
	}
	for _, c := range raw[1 : n-1] {
		if c == '\\' {
			var s string
			err := json.Unmarshal(raw, &s)
			return s, err == nil
		}
	}
	return string(raw[1 : n-1]), true
}
