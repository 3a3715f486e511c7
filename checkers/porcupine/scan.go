package main

// HistoryFile's scan in Go (faultbed/history.py, _Source.scan): every event of a faultbed
// history.jsonl validated, and its byte offset, kind, process, f and time kept as columns, five
// times faster than Python's json.loads line by line. It reads a line as the checker's reader
// does (parseLine: its known shapes, then parseEvent) and accepts only what Python's scan accepts
// with the same values: anything else (a line Python would refuse, or one whose values Go would
// have to decode: escapes, integers beyond 64 bits, a client event without a time, carriage
// returns, a last line without its newline) leaves the whole file to Python's scan, which then
// says what is wrong or reads it. The columns are written into memory from C's allocator, which
// the caller copies and hands back (FaultbedScanFree): none of it stays in Go's heap.

/*
#include <stdlib.h>

typedef struct {
	long long events;     // events read
	long long size;       // bytes read: the file's size
	long long end;        // where the last event's line ends; before size: a last line without its
	                      // newline that Go did not read, which Python takes for torn or reads again
	long long *offsets;   // each event's byte offset
	unsigned char *kinds; // each event's type (0 invoke, 1 ok, 2 fail, 3 info), + 4 for the nemesis's
	int *processes;       // a client's place among the processes in order of appearance; -1: the nemesis
	int *fs;              // the event's f: a place among fnames
	long long *times;     // time; 0 for the nemesis's
	long long pairs;      // operations paired (Columns.pairs), -1: the events do not pair
	long long *invokes;   // each operation's invocation's place
	long long *completions; // its completion's place, -1: never completed
	char *fnames;         // the fs in order of appearance, a JSON array
	char *fallback;       // why the file is left to Python's scan (NULL: it was read)
} faultbed_scan;
*/
import "C"

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"unicode/utf8"
	"unsafe"
)

// FaultbedScan scans the history at path into out (which the caller allocates, zeroed).
//
//export FaultbedScan
func FaultbedScan(path *C.char, out *C.faultbed_scan) {
	var s scanner
	defer func() {
		if recovered := recover(); recovered != nil { // C's allocator refused: Python's scan may still do
			s.free()
			*out = C.faultbed_scan{fallback: C.CString(fmt.Sprintf("internal error in the scan: %v", recovered))}
		}
	}()
	if err := s.scanFile(C.GoString(path)); err != nil {
		s.free()
		*out = C.faultbed_scan{fallback: C.CString(err.Error())}
		return
	}
	s.pairsEnd()
	names := []byte{'['}
	for i, name := range s.fNames {
		if i > 0 {
			names = append(names, ',')
		}
		names = append(names, '"')
		names = append(names, name...) // plain printable ASCII: its own JSON text
		names = append(names, '"')
	}
	*out = C.faultbed_scan{
		events: C.longlong(len(s.offsets.data)), size: C.longlong(s.size), end: C.longlong(s.end),
		offsets: (*C.longlong)(s.offsets.pointer()), kinds: (*C.uchar)(s.kinds.pointer()),
		processes: (*C.int)(s.processes.pointer()), fs: (*C.int)(s.fs.pointer()),
		times: (*C.longlong)(s.times.pointer()), fnames: C.CString(string(append(names, ']'))),
		pairs: C.longlong(len(s.invokes.data)), invokes: (*C.longlong)(s.invokes.pointer()),
		completions: (*C.longlong)(s.completions.pointer()),
	}
	if s.unpaired {
		out.pairs = -1
	}
}

// FaultbedScanFree releases what FaultbedScan put in out.
//
//export FaultbedScanFree
func FaultbedScanFree(out *C.faultbed_scan) {
	for _, p := range []unsafe.Pointer{unsafe.Pointer(out.offsets), unsafe.Pointer(out.kinds),
		unsafe.Pointer(out.processes), unsafe.Pointer(out.fs), unsafe.Pointer(out.times),
		unsafe.Pointer(out.invokes), unsafe.Pointer(out.completions),
		unsafe.Pointer(out.fnames), unsafe.Pointer(out.fallback)} {
		C.free(p)
	}
	*out = C.faultbed_scan{}
}

const (
	scanBlockBytes = 1 << 20
	scanMaxDepth   = 64 // faultbed/history.py MAX_DEPTH: a line with more brackets goes to Python, which counts
	nemesisKind    = 4
)

var (
	eventKinds  = map[string]byte{`"invoke"`: 0, `"ok"`: 1, `"fail"`: 2, `"info"`: 3}
	nemesisText = []byte(`"nemesis"`)
)

type scanner struct {
	offsets     column[int64]
	kinds       column[byte]
	processes   column[int32]
	fs          column[int32]
	times       column[int64]
	size        int64            // bytes read
	end         int64            // where the last line read ends (before size: the last line, not read)
	byProcess   map[string]int32 // a client process as written -> its place
	small       smallProcesses   // a process written as an integer n < 1<<16 -> its place
	fIDs        map[string]int32
	fNames      [][]byte
	open        []int64 // a client's open invocation's place (-1: none), by the client's place
	retired     []bool  // a client whose last operation ended in info
	unpaired    bool    // a client's events that do not pair
	invokes     column[int64]
	completions column[int64]
	lastF       []byte // the last f seen, and its place: fs repeat from line to line
	lastFID     int32
	known       shapes
	line        int
}

func (s *scanner) scanFile(path string) error {
	file, err := os.Open(path)
	if err != nil {
		return err
	}
	defer file.Close()
	s.byProcess, s.fIDs = map[string]int32{}, map[string]int32{}
	buf := make([]byte, scanBlockBytes)
	held := 0 // the start of a line that continues past the block
	for {
		n, err := io.ReadFull(file, buf[held:])
		data := buf[:held+n]
		end := bytes.LastIndexByte(data, '\n') + 1
		if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
			return err
		}
		last := err != nil
		if end == 0 && !last {
			buf = append(buf, make([]byte, len(buf))...) // a line longer than the block
			held = len(data)
			continue
		}
		if err := s.lines(data[:end]); err != nil {
			return err
		}
		s.size += int64(end)
		if last {
			s.end = s.size
			return s.lastLine(data[end:])
		}
		held = copy(buf, data[end:])
	}
}

// lines scans whole lines (data ends with a newline).
func (s *scanner) lines(data []byte) error {
	if bytes.IndexByte(data, '\r') >= 0 {
		return fallback("a carriage return") // Python's universal newlines split there
	}
	if !utf8.Valid(data) {
		return fallback("not UTF-8")
	}
	for start := 0; start < len(data); {
		end := start + bytes.IndexByte(data[start:], '\n') + 1
		s.line++
		if err := s.event(data[:end], start, s.size+int64(start)); err != nil {
			return err
		}
		start = end
	}
	return nil
}

// lastLine scans a last line without its newline: blank, or an event Go reads; otherwise it is left
// out (end stays before it), and Python decides whether it is torn (not JSON: the writer died in
// mid-line, the history is what comes before it) or must be read again.
func (s *scanner) lastLine(line []byte) error {
	if len(line) == 0 {
		return nil
	}
	if bytes.IndexByte(line, '\r') >= 0 || !utf8.Valid(line) {
		return fallback("an unusual last line")
	}
	s.line++
	if isBlank(line) || s.event(line, 0, s.size) == nil {
		s.size += int64(len(line))
		s.end = s.size
		return nil
	}
	s.size += int64(len(line))
	return nil
}

// event scans the line data[start:]: a blank line is skipped, an event is added.
func (s *scanner) event(data []byte, start int, offset int64) error {
	line := data[start:]
	if bytes.Count(line, []byte{'['})+bytes.Count(line, []byte{'{'}) > scanMaxDepth && nestingDepth(line) > scanMaxDepth {
		return fallback("line %d: values nested deeper than %d levels", s.line, scanMaxDepth)
	}
	e, ok, err := parseLine(data, start, true, true, s.line, &s.known)
	if err != nil {
		return fallback("line %d: %v", s.line, err)
	}
	if !ok {
		return nil // blank
	}
	text := func(sp span) []byte { return data[sp.start:sp.end] }
	kind, known := eventKinds[string(text(e.typ))]
	if !e.typ.present() || !known || !e.process.present() || !e.f.present() || text(e.f)[0] != '"' {
		return fallback("line %d: not an event Go reads", s.line)
	}
	if e.timeGiven && !e.hasTime {
		return fallback("line %d: a time that is not an integer", s.line)
	}
	process := text(e.process)
	place := int32(-1)
	if bytes.Equal(process, nemesisText) {
		kind |= nemesisKind
	} else {
		if !e.hasTime {
			return fallback("line %d: a client event without a time", s.line)
		}
		if place, err = s.place(process); err != nil {
			return err
		}
	}
	f := text(e.f)
	f = f[1 : len(f)-1]
	if !bytes.Equal(f, s.lastF) || s.lastF == nil {
		id, seen := s.fIDs[string(f)]
		if !seen {
			id = int32(len(s.fNames))
			name := bytes.Clone(f)
			s.fIDs[string(name)] = id
			s.fNames = append(s.fNames, name)
		}
		s.lastF, s.lastFID = s.fNames[id], id
	}
	moment := e.time
	if place < 0 {
		moment = 0
	} else if !s.unpaired {
		s.pair(int64(len(s.offsets.data)), kind, place)
	}
	s.offsets.add(offset)
	s.kinds.add(kind)
	s.processes.add(place)
	s.fs.add(s.lastFID)
	s.times.add(moment)
	return nil
}

// pair pairs the client event at `at` as Columns.pairs does (faultbed/history.py): an operation
// when it completes; a process that invokes while it has an operation open, or after an info, or
// completes with none open, leaves the history unpaired (Python's pass then says what is wrong).
func (s *scanner) pair(at int64, kind byte, place int32) {
	for int(place) >= len(s.open) {
		s.open, s.retired = append(s.open, -1), append(s.retired, false)
	}
	opened := s.open[place]
	switch {
	case kind == 0 && (opened >= 0 || s.retired[place]), kind != 0 && opened < 0:
		s.unpaired = true
		s.invokes.free()
		s.completions.free()
	case kind == 0:
		s.open[place] = at
	default:
		s.retired[place] = kind == 3
		s.open[place] = -1
		s.invokes.add(opened)
		s.completions.add(at)
	}
}

// pairsEnd adds the operations never completed, in the order of their invocations.
func (s *scanner) pairsEnd() {
	if s.unpaired {
		return
	}
	var open []int64
	for _, at := range s.open {
		if at >= 0 {
			open = append(open, at)
		}
	}
	slices.Sort(open)
	for _, at := range open {
		s.invokes.add(at)
		s.completions.add(-1)
	}
}

// place is a client process's place among the processes in order of appearance, as written:
// an integer (JSON's text of one is canonical, but for -0) or a string without escapes.
func (s *scanner) place(process []byte) (int32, error) {
	if n, ok := smallProcess(process); ok { // as the checker's reader looks its clients up
		if p, seen := s.small.get(n); seen {
			return p, nil
		}
		p := int32(len(s.byProcess))
		s.byProcess[string(process)] = p
		s.small.set(n, p)
		return p, nil
	}
	switch {
	case process[0] == '"' && !hasEscape(process):
	case isInteger(process):
		if _, err := strconv.ParseInt(string(process), 10, 64); err != nil {
			return 0, fallback("line %d: a process beyond 64 bits", s.line)
		}
	default:
		return 0, fallback("line %d: a process Go does not read", s.line)
	}
	p, seen := s.byProcess[string(process)]
	if !seen {
		p = int32(len(s.byProcess))
		s.byProcess[string(process)] = p
	}
	return p, nil
}

func (s *scanner) free() {
	s.offsets.free()
	s.kinds.free()
	s.processes.free()
	s.fs.free()
	s.times.free()
	s.invokes.free()
	s.completions.free()
}

// nestingDepth is the deepest bracket nesting of a line outside its strings (history.py's
// nesting_depth), counted up to scanMaxDepth + 1.
func nestingDepth(line []byte) int {
	depth, deepest, inString := 0, 0, false
	for i := 0; i < len(line); i++ {
		switch c := line[i]; {
		case inString && c == '\\':
			i++
		case c == '"':
			inString = !inString
		case inString:
		case c == '[' || c == '{':
			depth++
			if deepest = max(deepest, depth); deepest > scanMaxDepth {
				return deepest
			}
		case c == ']' || c == '}':
			depth--
		}
	}
	return deepest
}

// column is a growing array in memory from C's allocator.
type column[T any] struct{ data []T }

func (c *column[T]) add(v T) {
	if len(c.data) == cap(c.data) {
		c.grow()
	}
	c.data = append(c.data, v) // within its capacity: never Go's allocation
}

func (c *column[T]) grow() {
	capacity := max(4096, 2*cap(c.data))
	var zero T
	p := C.realloc(unsafe.Pointer(unsafe.SliceData(c.data)), C.size_t(capacity)*C.size_t(unsafe.Sizeof(zero)))
	if p == nil {
		panic("out of memory")
	}
	c.data = unsafe.Slice((*T)(p), capacity)[:len(c.data)]
}

func (c *column[T]) pointer() unsafe.Pointer {
	if cap(c.data) == 0 {
		return nil
	}
	return unsafe.Pointer(unsafe.SliceData(c.data))
}

func (c *column[T]) free() {
	if cap(c.data) > 0 {
		C.free(unsafe.Pointer(unsafe.SliceData(c.data)))
	}
	c.data = nil
}
