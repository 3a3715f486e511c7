package main

// faultbed's history.jsonl read here rather than in Python, streamed: a million
// operations as Python dicts cost gigabytes and most of the time.
//
// This is the fast path for well-formed histories only. It yields exactly the
// rows that checkers/formats.py (rows_from_events) would; anything it is not
// sure about (malformed lines, escapes, floats, objects, pairing errors) makes
// it give up with errFallback, and the caller reads the file in Python, which
// names the problem or checks what this reader did not want to judge.

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"strconv"
	"unicode/utf8"
)

// errFallback: let Python's reader decide about this file.
type fallbackError struct{ reason string }

func (e *fallbackError) Error() string { return "read it in Python: " + e.reason }

func fallback(format string, args ...interface{}) error {
	return &fallbackError{reason: fmt.Sprintf(format, args...)}
}

const bytesPerOp = 200 // an invocation and its completion take about 240 bytes as faultbed writes them

// event holds the fields of one line as canonical JSON texts.
type event struct {
	typ, process, f, key, value []byte
	time                        int64
	hasTime, hasKey, hasValue   bool
}

type jsonlReader struct {
	path     string
	strings  map[string]string // interned texts: processes, fs, keys and values repeat
	rows     []rawOp
	keep     []bool
	open     map[string]int
	retired  map[string]bool
	latest   int64
	scratch  []byte
	lineNo   int
	events   int // lines that hold an event, as Python's read_history counts them
	canonBuf []byte
}

func readJSONL(path string) ([]rawOp, int64, int, error) {
	file, err := os.Open(path)
	if err != nil {
		return nil, 0, 0, fallback("cannot open: %v", err)
	}
	defer file.Close()
	r := &jsonlReader{path: path, strings: map[string]string{}, open: map[string]int{}, retired: map[string]bool{}}
	if info, err := file.Stat(); err == nil {
		// room for about as many operations as the file holds: growing by copying cost a fifth of the time
		ops := min(info.Size()/bytesPerOp, 1<<26)
		r.rows, r.keep = make([]rawOp, 0, ops), make([]bool, 0, ops)
	}
	if info, err := file.Stat(); err == nil && info.Size() >= parallelBytes && runtime.GOMAXPROCS(0) > 1 {
		if err := r.readParallel(file); err != nil {
			return nil, 0, 0, err
		}
		return r.kept(), r.latest, r.events, nil
	}
	in := bufio.NewReaderSize(file, 1<<20)
	for {
		line, complete, err := r.readLine(in)
		if err != nil {
			return nil, 0, 0, err
		}
		if line == nil {
			break
		}
		r.lineNo++
		if err := r.line(line, complete); err != nil {
			return nil, 0, 0, err
		}
	}
	return r.kept(), r.latest, r.events, nil
}

// kept drops the operations that certainly did not happen (fail).
func (r *jsonlReader) kept() []rawOp {
	rows := r.rows[:0]
	for i, row := range r.rows {
		if r.keep[i] {
			rows = append(rows, row)
		}
	}
	return rows
}

// readOps returns the request's operations: its rows, or its history file read here.
func readOps(req *request) (raw []rawOp, latest int64, events int, err error) {
	if req.HistoryFile != "" {
		return readJSONL(req.HistoryFile)
	}
	err = req.Ops.each(func(index int, cols [][]byte) error {
		op, err := decodeOp(index, cols)
		raw = append(raw, op)
		latest = max(latest, op.call, op.ret)
		return err
	})
	return raw, latest, 0, err
}

// readLine returns the next line without its newline; complete is false for a
// last line without one (a writer that died mid-line). nil at the end.
func (r *jsonlReader) readLine(in *bufio.Reader) (line []byte, complete bool, err error) {
	chunk, err := in.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) {
		r.scratch = append(r.scratch[:0], chunk...)
		for errors.Is(err, bufio.ErrBufferFull) {
			chunk, err = in.ReadSlice('\n')
			r.scratch = append(r.scratch, chunk...)
		}
		chunk = r.scratch
	}
	switch {
	case err == io.EOF && len(chunk) == 0:
		return nil, false, nil
	case err == io.EOF:
		return chunk, false, nil
	case err != nil:
		return nil, false, fallback("cannot read: %v", err)
	}
	return chunk[:len(chunk)-1], true, nil
}

func (r *jsonlReader) line(line []byte, complete bool) error {
	e, ok, err := parseLine(line, complete, r.lineNo)
	if err != nil || !ok {
		return err
	}
	return r.take(&e)
}

// take pairs one parsed event (in file order).
func (r *jsonlReader) take(e *event) error {
	r.events++
	return r.event(e)
}

// parseLine reads one line; ok is false for a blank or torn last line. It
// touches nothing shared, so blocks of lines are parsed in parallel.
func parseLine(line []byte, complete bool, number int) (e event, ok bool, err error) {
	if isBlank(line) {
		return e, false, nil
	}
	if !utf8.Valid(line) {
		return e, false, fallback("line %d is not UTF-8", number)
	}
	if err := parseEvent(line, &e); err != nil {
		var syntax *syntaxError
		if !complete && errors.As(err, &syntax) {
			return e, false, nil // a torn last line: the prefix is still a history
		}
		if errors.As(err, &syntax) {
			return e, false, fallback("line %d: %v", number, err)
		}
		return e, false, err
	}
	return e, true, nil
}

func isBlank(line []byte) bool {
	for _, c := range line {
		if c != ' ' && c != '\t' && c != '\r' && c != '\n' {
			return false
		}
	}
	return true
}

// event pairs invocations with completions, as faultbed.history.pair_operations.
func (r *jsonlReader) event(e *event) error {
	switch string(e.typ) {
	case `"invoke"`, `"ok"`, `"fail"`, `"info"`:
	default:
		return fallback("line %d: unknown type", r.lineNo)
	}
	if e.process == nil || e.f == nil {
		return fallback("line %d: no process or f", r.lineNo)
	}
	if string(e.process) == `"nemesis"` {
		if e.hasTime {
			r.latest = max(r.latest, e.time)
		}
		return nil
	}
	if hasEscape(e.process) || !(e.process[0] == '"' || isInteger(e.process)) || e.f[0] != '"' {
		return fallback("line %d: process or f of an unusual kind", r.lineNo)
	}
	if !e.hasTime {
		return fallback("line %d: no integer time", r.lineNo)
	}
	r.latest = max(r.latest, e.time)
	process := r.intern(e.process)
	if string(e.typ) == `"invoke"` {
		return r.invoke(process, e)
	}
	return r.complete(process, e)
}

func (r *jsonlReader) invoke(process string, e *event) error {
	{
		if _, open := r.open[process]; open || r.retired[process] {
			return fallback("line %d: process %s invokes while open or retired", r.lineNo, process)
		}
		r.open[process] = len(r.rows)
		key, input := "null", "null"
		if e.hasKey {
			text, err := r.canonical(e.key)
			if err != nil {
				return err
			}
			key = text
		}
		if e.hasValue {
			text, err := r.canonical(e.value)
			if err != nil {
				return err
			}
			input = text
		}
		f, _ := jsonString(e.f)
		// no meta: it only decorates the picture, and Python draws from its own reader
		r.rows = append(r.rows, rawOp{process: process, call: e.time, f: r.internString(f), key: key,
			input: input, output: "null"})
		r.keep = append(r.keep, true)
		return nil
	}
}

func (r *jsonlReader) complete(process string, e *event) error {
	slot, open := r.open[process]
	if !open {
		return fallback("line %d: completion with no open invocation", r.lineNo)
	}
	delete(r.open, process)
	row := &r.rows[slot]
	switch string(e.typ) {
	case `"ok"`:
		if e.time < row.call {
			return fallback("line %d: returns before it is called", r.lineNo)
		}
		row.ret, row.known = e.time, true
		if row.f == "cas" {
			row.output = "true"
		} else if e.hasValue {
			text, err := r.canonical(e.value)
			if err != nil {
				return err
			}
			row.output = text
		}
	case `"fail"`:
		r.keep[slot] = false
	default:
		r.retired[process] = true
	}
	return nil
}

// canonical interns a value's canonical text; plain values need no copy to look up.
func (r *jsonlReader) canonical(raw []byte) (string, error) {
	if s, ok := r.strings[string(raw)]; ok && raw[0] != '[' {
		return s, nil
	}
	text, err := canonical(raw)
	if err != nil {
		return "", err
	}
	return r.intern(text), nil
}

func (r *jsonlReader) intern(text []byte) string {
	if s, ok := r.strings[string(text)]; ok {
		return s
	}
	s := string(text)
	r.strings[s] = s
	return s
}

func (r *jsonlReader) internString(s string) string {
	if interned, ok := r.strings[s]; ok {
		return interned
	}
	r.strings[s] = s
	return s
}

// -- one line: a flat JSON object ---------------------------------------------------

type syntaxError struct{ at int }

func (e *syntaxError) Error() string { return fmt.Sprintf("not JSON at byte %d", e.at) }

// parseEvent reads one JSON object; values of the fields it uses come back as
// canonical JSON text (Python's json.dumps with separators (",", ":")).
func parseEvent(line []byte, e *event) error {
	i := skipSpace(line, 0)
	if i == len(line) || line[i] != '{' {
		if i < len(line) && (line[i] == '[' || line[i] == '"' || line[i] == 'n' || isNumberStart(line[i])) {
			return fallback("not an object")
		}
		return &syntaxError{at: i}
	}
	var seen uint16
	i = skipSpace(line, i+1)
	if i < len(line) && line[i] == '}' {
		return fallback("an empty object")
	}
	for {
		if i >= len(line) || line[i] != '"' {
			return &syntaxError{at: i}
		}
		end, err := scanValue(line, i, 0)
		if err != nil {
			return err
		}
		name := line[i+1 : end-1]
		if hasEscape(name) {
			return fallback("escaped field name")
		}
		if bit := fieldBits[string(name)]; seen&bit != 0 {
			return fallback("field %q twice", string(name))
		} else {
			seen |= bit
		}
		i = skipSpace(line, end)
		if i >= len(line) || line[i] != ':' {
			return &syntaxError{at: i}
		}
		i = skipSpace(line, i+1)
		end, err = scanValue(line, i, 0)
		if err != nil {
			return err
		}
		if err := e.set(name, line[i:end]); err != nil {
			return err
		}
		i = skipSpace(line, end)
		if i < len(line) && line[i] == ',' {
			i = skipSpace(line, i+1)
			continue
		}
		if i < len(line) && line[i] == '}' {
			if skipSpace(line, i+1) != len(line) {
				return &syntaxError{at: i + 1}
			}
			return nil
		}
		return &syntaxError{at: i}
	}
}

var fieldBits = map[string]uint16{"type": 1, "process": 2, "f": 4, "key": 8, "value": 16, "time": 32}

func (e *event) set(name []byte, raw []byte) error {
	var err error
	switch string(name) {
	case "type":
		e.typ = raw
	case "process":
		e.process = raw
	case "f":
		if hasEscape(raw) {
			return fallback("escaped f")
		}
		e.f = raw
	case "key":
		e.key, e.hasKey = raw, true
	case "value":
		e.value, e.hasValue = raw, true
	case "time":
		if !isInteger(raw) {
			return nil // not an integer time: Python names the event if it is an operation
		}
		e.time, err = strconv.ParseInt(string(raw), 10, 64)
		if err != nil {
			return fallback("time out of range")
		}
		e.hasTime = true
	}
	return err
}

func hasEscape(raw []byte) bool {
	for _, c := range raw {
		if c == '\\' || c >= 0x80 {
			return true
		}
	}
	return false
}

func isNumberStart(c byte) bool { return c == '-' || (c >= '0' && c <= '9') }

func isInteger(raw []byte) bool {
	digits := raw
	if len(digits) > 0 && digits[0] == '-' {
		digits = digits[1:]
	}
	if len(digits) == 0 || (len(raw) != len(digits) && string(digits) == "0") {
		return false // -0 reads back as 0 in Python: leave it to Python
	}
	for _, c := range digits {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// canonical is the value's text as Python writes it for the checker: no spaces.
// Only integers, plain ASCII strings, literals and lists of those; anything else
// (floats, objects, escapes) is left to Python.
func canonical(raw []byte) ([]byte, error) {
	switch c := raw[0]; {
	case c == '"':
		if hasEscape(raw) {
			return nil, fallback("escaped string")
		}
		return raw, nil
	case c == 'n' || c == 't' || c == 'f':
		return raw, nil
	case isNumberStart(c):
		if !isInteger(raw) {
			return nil, fallback("a number that is not an integer")
		}
		return raw, nil
	case c == '[':
		out := make([]byte, 0, len(raw))
		out = append(out, '[')
		err := eachElement(raw, func(element []byte) error {
			text, err := canonical(element)
			if len(out) > 1 {
				out = append(out, ',')
			}
			out = append(out, text...)
			return err
		})
		return append(out, ']'), err
	default:
		return nil, fallback("an object or an unusual value")
	}
}

// maxDepth bounds nesting: deeper values go to Python, which refuses them in one line
// (and the recursion here never comes near Go's stack limit, which is fatal, not a panic).
const maxDepth = 64

// scanValue returns where the JSON value at line[i] ends, checking its syntax.
func scanValue(line []byte, i int, depth int) (int, error) {
	if i >= len(line) {
		return i, &syntaxError{at: i}
	}
	switch c := line[i]; {
	case c == '"':
		for j := i + 1; j < len(line); j++ {
			switch {
			case line[j] == '"':
				return j + 1, nil
			case line[j] == '\\':
				j++
			case line[j] < 0x20:
				return j, &syntaxError{at: j}
			}
		}
		return len(line), &syntaxError{at: len(line)}
	case c == '[' || c == '{':
		if depth >= maxDepth {
			return i, fallback("values nested deeper than %d levels", maxDepth)
		}
		return scanContainer(line, i, depth+1)
	case isNumberStart(c):
		return numberEnd(line, i)
	default:
		for _, literal := range []string{"null", "true", "false"} {
			if len(line)-i >= len(literal) && string(line[i:i+len(literal)]) == literal {
				return i + len(literal), nil
			}
		}
		if c == 'N' || c == 'I' {
			return i, fallback("NaN or Infinity")
		}
		return i, &syntaxError{at: i}
	}
}

// numberEnd reads a JSON number: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?
func numberEnd(line []byte, i int) (int, error) {
	start := i
	digits := func() int {
		n := 0
		for i < len(line) && line[i] >= '0' && line[i] <= '9' {
			i, n = i+1, n+1
		}
		return n
	}
	if line[i] == '-' {
		i++
	}
	first := i
	if digits() == 0 || (line[first] == '0' && i-first > 1) {
		return i, &syntaxError{at: start}
	}
	if i < len(line) && line[i] == '.' {
		i++
		if digits() == 0 {
			return i, &syntaxError{at: start}
		}
	}
	if i < len(line) && (line[i] == 'e' || line[i] == 'E') {
		i++
		if i < len(line) && (line[i] == '+' || line[i] == '-') {
			i++
		}
		if digits() == 0 {
			return i, &syntaxError{at: start}
		}
	}
	return i, nil
}

func scanContainer(line []byte, i int, depth int) (int, error) {
	closing := byte(']')
	if line[i] == '{' {
		closing = '}'
	}
	i = skipSpace(line, i+1)
	if i < len(line) && line[i] == closing {
		return i + 1, nil
	}
	for {
		if closing == '}' {
			if i >= len(line) || line[i] != '"' {
				return i, &syntaxError{at: i}
			}
			end, err := scanValue(line, i, depth)
			if err != nil {
				return end, err
			}
			i = skipSpace(line, end)
			if i >= len(line) || line[i] != ':' {
				return i, &syntaxError{at: i}
			}
			i = skipSpace(line, i+1)
		}
		end, err := scanValue(line, i, depth)
		if err != nil {
			return end, err
		}
		i = skipSpace(line, end)
		if i < len(line) && line[i] == ',' {
			i = skipSpace(line, i+1)
			continue
		}
		if i < len(line) && line[i] == closing {
			return i + 1, nil
		}
		return i, &syntaxError{at: i}
	}
}
