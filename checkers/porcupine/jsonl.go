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
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"runtime"
	"sort"
	"strconv"
	"syscall"
	"unicode/utf8"
	"unsafe"

	"github.com/anishathalye/porcupine"
)

// errFallback: let Python's reader decide about this file.
type fallbackError struct{ reason string }

func (e *fallbackError) Error() string { return "read it in Python: " + e.reason }

func fallback(format string, args ...interface{}) error {
	return &fallbackError{reason: fmt.Sprintf(format, args...)}
}

const bytesPerOp = 200 // an invocation and its completion take about 240 bytes as faultbed writes them

// span is a part of a block: pointer-free, so a block's parsed events cost the GC nothing.
type span struct{ start, end uint32 }

// event holds the fields of one line as spans of its block (canonical JSON texts
// after canonical()); a span that ends at 0 is an absent field (a line starts with '{').
type event struct {
	typ, process, f, key, value span
	time                        int64
	hasTime                     bool
	timeGiven                   bool // a time field, an integer or not (HistoryFile's scan refuses the other)
}

func (s span) present() bool { return s.end != 0 }

// openOp is an invocation waiting for its completion: where its operation sits.
type openOp struct {
	slot          int // in jsonlReader.all
	call          int64
	f, key, input string
}

// pendingOp is an operation whose outcome stays unknown: it returns at infinity.
type pendingOp struct {
	openOp
	process string
}

// process is one client's state while the file is paired; its index is its client id
// (processes are numbered in order of their first invocation).
type process struct {
	name    string
	op      openOp // its open invocation, when open
	open    bool
	retired bool // its last operation ended in info: it invokes no more
}

// keyEntry is what a key as written stands for: its canonical text and partition.
type keyEntry struct {
	text  string
	index int
}

type jsonlReader struct {
	model     *model
	strings   map[string]string // interned texts: fs and values repeat
	lists     map[string]string // a list value as written -> its canonical text
	processes map[string]int32  // a process as written -> its index in byClient
	small     smallProcesses    // a process written as an integer n < 1<<16 -> its index
	byClient  []process
	keys      map[string]keyEntry  // a key as written (absent: "") -> its text and partition
	shortKeys shortTexts[keyEntry] // the same for short keys, found first (short.go)
	shortFs   shortTexts[string]   // an f as written -> its interned text
	shortVals shortTexts[string]   // a value as written -> its canonical text (canonical)
	byKey     map[string]int       // a partition's key -> its index
	h         history
	all       []porcupine.Operation // in invocation order, dealt to partitions at the end (growing
	partOf    []int32               // each partition's slice cost more copying than the reading)
	prepared  int                   // operations in r.all with an input (the others failed, or are info reads)
	pending   []pendingOp
	sized     chan sizedOps // the arrays of operations as large as the file suggests, once made (resize)
	latest    int64
	data      []byte // the block being paired
	lineNo    int
	events    int     // lines that hold an event, as Python's read_history counts them
	stream    *stream // searches segments while the file is read; nil: after
	// eventAt: with events_of_illegal, each operation's invocation and completion (0: none) by slot
	eventAt  [][2]int32
	numbered bool
}

// readJSONL reads a faultbed history.jsonl straight into partitions of porcupine
// operations (in invocation order, as the rows Python would hand over).
func readJSONL(m *model, path string, annotations []annotationSpec, early *stream, numbered bool) (h history, err error) {
	file, err := os.Open(path)
	if err != nil {
		return history{}, fallback("cannot open: %v", err)
	}
	defer file.Close()
	r := &jsonlReader{model: m, strings: map[string]string{}, lists: map[string]string{},
		processes: map[string]int32{}, keys: map[string]keyEntry{}, byKey: map[string]int{}, stream: early,
		numbered: numbered}
	if early != nil {
		defer func() {
			if err != nil {
				early.abandon() // the file goes back to Python: nothing searched early counts
			}
		}()
	}
	if info, err := file.Stat(); err == nil {
		ops := min(info.Size()/bytesPerOp, 1<<26) // about as many as the file holds
		r.sized = make(chan sizedOps, 1)
		go func() {
			all, partOf := make([]porcupine.Operation, 0, ops), make([]int32, 0, ops)
			r.sized <- sizedOps{all, partOf}
			populate(all[:cap(all)])
		}()
	}
	if err := r.readBlocks(file); err != nil {
		return history{}, err
	}
	return r.finish(annotations)
}

// sizedOps are the reader's arrays of operations as large as the file's size suggests, made in a
// goroutine of their own while the first blocks are read and paired; the operations paired until
// then move into them (resize). Made up front, they held up the start of the reading: memory the
// heap had held before is cleared first (0.7 MB took 1.5-2 ms before a 10k history's first search),
// and a 1M history's 60 MB came in before the first block was read. Fresh processes in turns:
// 1M 1.37 -> 1.26 s (medians of 5 each), 100k 179 -> 167 ms (7 each), 10k unchanged (25 each).
type sizedOps struct {
	all    []porcupine.Operation
	partOf []int32
}

// resize moves the operations read so far into the sized arrays when they are made; until then
// they grow as appends grow them.
func (r *jsonlReader) resize() {
	select {
	case sized := <-r.sized:
		r.sized = nil
		if cap(sized.all) > len(r.all) {
			r.all, r.partOf = append(sized.all, r.all...), append(sized.partOf, r.partOf...)
		}
	default:
	}
}

// populate has the kernel map every page of ops now, writable (madvise MADV_POPULATE_WRITE, Linux
// 5.14), while the file is read. Fresh from the kernel, a page is mapped on first touch; when the
// collector scans the array (it holds pointers) before the reading has filled it, that touch is a
// read, which maps the shared zero page, and the append that fills the page later faults again to
// copy it, flushing the page from every CPU's TLB by interrupts: on a 2-CPU virtual machine that
// was a sixth of the CPU of a 1M-operation check. The kernel keeps what a page holds, so this
// races with nothing; without MADV_POPULATE_WRITE it does nothing.
func populate(ops []porcupine.Operation) {
	const page = 4096
	if len(ops) == 0 {
		return
	}
	start := uintptr(unsafe.Pointer(unsafe.SliceData(ops)))
	end := start + uintptr(len(ops))*unsafe.Sizeof(ops[0])
	start = (start + page - 1) &^ (page - 1)
	end &^= page - 1
	if end > start {
		syscall.Syscall(syscall.SYS_MADVISE, start, end-start, madvPopulateWrite)
	}
	runtime.KeepAlive(ops)
}

const madvPopulateWrite = 23 // MADV_POPULATE_WRITE

// finish settles the operations left pending and drops those that did not happen.
func (r *jsonlReader) finish(annotations []annotationSpec) (history, error) {
	h := &r.h
	for _, p := range r.pending {
		if p.f == "append" && r.stream != nil {
			r.stream.abandon() // preparing it makes states texts: searches on int states must be over first
		}
	}
	h.infinity, h.events = after(annotatedLatest(r.latest, annotations)), r.events
	for _, p := range r.byClient {
		if p.open {
			r.pending = append(r.pending, pendingOp{openOp: p.op, process: p.name})
		}
	}
	for _, p := range r.pending {
		op := rawOp{process: p.process, call: p.call, f: p.f, key: p.key, input: p.input, output: "null"}
		input, output, skip, err := r.model.prepare(op)
		if err != nil {
			return history{}, fallback("%v", err)
		}
		if !skip {
			target := &r.all[p.slot]
			target.Input, target.Output, target.Return = input, output, h.infinity
			r.prepared++
		}
	}
	// a key cut while reading keeps what follows its last cut, opened by the state that cut left
	from := make([]int32, len(h.partitions))
	sizes := make([]int, len(h.partitions))
	first := len(r.all) // every operation before it is in a segment searched while reading
	for i := range h.partitions {
		var carry *porcupine.Operation
		from[i], carry = r.stream.remainder(i)
		if carry != nil {
			sizes[i]++
		}
		first = min(first, int(from[i]))
	}
	h.ops = r.prepared
	for i := first; i < len(r.all); i++ {
		if p := r.partOf[i]; r.all[i].Input != nil && int32(i) >= from[p] { // nil: failed, or an info read
			sizes[p]++
		}
	}
	for i := range h.partitions {
		h.partitions[i].ops = make([]porcupine.Operation, 0, sizes[i])
		if _, carry := r.stream.remainder(i); carry != nil {
			h.partitions[i].ops = append(h.partitions[i].ops, *carry)
		}
	}
	for i := first; i < len(r.all); i++ {
		if p := r.partOf[i]; r.all[i].Input != nil && int32(i) >= from[p] {
			h.partitions[p].ops = append(h.partitions[p].ops, r.all[i])
		}
	}
	r.all = nil
	if r.numbered { // the partitions are sorted and the empty ones dropped below: their keys now
		keys := make([]string, len(h.partitions))
		for i, p := range h.partitions {
			keys[i] = p.key
		}
		h.numbered = &numberedOps{eventAt: r.eventAt, partOf: r.partOf, keys: keys}
	}
	kept := h.partitions[:0]
	for _, p := range h.partitions {
		if len(p.ops) > 0 {
			kept = append(kept, p)
		}
	}
	h.partitions = kept
	sort.SliceStable(h.partitions, func(i, j int) bool { return h.partitions[i].key < h.partitions[j].key })
	return *h, nil
}

// readOps returns the request's operation rows.
func readOps(req *request) (raw []rawOp, latest int64, err error) {
	err = req.Ops.each(func(index int, cols [][]byte) error {
		op, err := decodeOp(index, cols)
		raw = append(raw, op)
		latest = max(latest, op.call, op.ret)
		return err
	})
	return raw, latest, err
}

// parseLine reads one line (data[start:]); ok is false for a blank or torn last
// line. ascii: the line is known to be ASCII (valid UTF-8). It touches nothing shared, so blocks of lines are parsed in parallel.
func parseLine(data []byte, start int, complete, ascii bool, number int, known *shapes) (e event, ok bool, err error) {
	line := data[start:]
	if isBlank(line) {
		return e, false, nil
	}
	if !ascii && !utf8.Valid(line) {
		return e, false, fallback("line %d is not UTF-8", number)
	}
	if known.read(data, start, &e) {
		return e, true, escapesRead(line, number)
	}
	known.spans = known.spans[:0]
	if err := parseEvent(data, start, &e, &known.spans); err != nil {
		var syntax *syntaxError
		if errors.As(err, &syntax) {
			syntax.at -= start // within the line
		}
		if !complete && errors.As(err, &syntax) {
			return e, false, nil // a torn last line: the prefix is still a history
		}
		if errors.As(err, &syntax) {
			return e, false, fallback("line %d: %v", number, err)
		}
		return e, false, err
	}
	known.learn(data, start, known.spans)
	return e, true, escapesRead(line, number)
}

// escapesRead: the reading above skips what follows a backslash in a string, so a line with one is
// checked whole, as Python's json.loads would: `"\q"` is not JSON, and Python says so.
func escapesRead(line []byte, number int) error {
	if bytes.IndexByte(line, '\\') >= 0 && !json.Valid(line) {
		return fallback("line %d: not JSON (an escape)", number)
	}
	return nil
}

func isBlank(line []byte) bool {
	for _, c := range line {
		if c != ' ' && c != '\t' && c != '\r' && c != '\n' {
			return false
		}
	}
	return true
}

func (r *jsonlReader) bytes(s span) []byte { return r.data[s.start:s.end] }

// take pairs one parsed event (in file order), as faultbed.history.pair_operations.
func (r *jsonlReader) take(e *event) error {
	r.events++
	typ := r.bytes(e.typ)
	switch string(typ) {
	case `"invoke"`, `"ok"`, `"fail"`, `"info"`:
	default:
		return fallback("line %d: unknown type", r.lineNo)
	}
	if !e.process.present() || !e.f.present() {
		return fallback("line %d: no process or f", r.lineNo)
	}
	process, f := r.bytes(e.process), r.bytes(e.f)
	if string(process) == `"nemesis"` {
		if e.hasTime {
			r.latest = max(r.latest, e.time)
		}
		return nil
	}
	if hasEscape(process) || !(process[0] == '"' || isInteger(process)) || f[0] != '"' {
		return fallback("line %d: process or f of an unusual kind", r.lineNo)
	}
	if !e.hasTime {
		return fallback("line %d: no integer time", r.lineNo)
	}
	r.latest = max(r.latest, e.time)
	if string(typ) == `"invoke"` {
		return r.invoke(process, e)
	}
	return r.complete(process, e)
}

// client is the index of a process as written, and whether it was seen before.
func (r *jsonlReader) client(text []byte) (int32, bool) {
	if n, ok := smallProcess(text); ok {
		return r.small.get(n)
	}
	client, seen := r.processes[string(text)]
	return client, seen
}

// smallProcess reads a process written as an integer 0 <= n < 1<<16 without leading zeros (the
// way faultbed writes its workers'): it is looked up in a slice, not a map. Larger ones (final
// reads use 1,000,000 on) go to the map: the slice grows to the largest number seen.
func smallProcess(text []byte) (int, bool) {
	if len(text) == 0 || len(text) > 5 || (text[0] == '0' && len(text) > 1) {
		return 0, false
	}
	n := 0
	for _, c := range text {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, n < 1<<16
}

// smallProcesses holds what small processes (smallProcess) stand for, by their number: a slice
// grown to the largest number seen, each value + 1 (0: not seen).
type smallProcesses []int32

func (t smallProcesses) get(n int) (int32, bool) {
	if n < len(t) && t[n] > 0 {
		return t[n] - 1, true
	}
	return 0, false
}

func (t *smallProcesses) set(n int, value int32) {
	*t = append(*t, make([]int32, max(0, n+1-len(*t)))...)
	(*t)[n] = value + 1
}

func (r *jsonlReader) invoke(processText []byte, e *event) error {
	client, seen := r.client(processText)
	if !seen {
		client = int32(len(r.byClient))
		name := string(processText)
		if n, small := smallProcess(processText); small {
			r.small.set(n, client)
		} else {
			r.processes[name] = client
		}
		r.byClient = append(r.byClient, process{name: name})
	}
	p := &r.byClient[client]
	if p.open || p.retired {
		return fallback("line %d: process %s invokes while open or retired", r.lineNo, processText)
	}
	key, err := r.key(e)
	if err != nil {
		return err
	}
	input := "null"
	if e.value.present() {
		if input, err = r.canonical(r.bytes(e.value)); err != nil {
			return err
		}
	}
	f := r.bytes(e.f)
	// no metadata: it only decorates the picture, and Python draws from its own reader
	p.op, p.open = openOp{slot: len(r.all), call: e.time, f: r.internF(f[1 : len(f)-1]), key: key.text,
		input: input}, true // no escapes in f: checked while parsing
	if len(r.all) == cap(r.all) && r.sized != nil {
		r.resize()
	}
	r.all = append(r.all, porcupine.Operation{ClientId: int(client), Call: e.time})
	r.partOf = append(r.partOf, int32(key.index))
	if r.numbered {
		r.eventAt = append(r.eventAt, [2]int32{int32(r.events), 0})
	}
	if r.stream != nil {
		r.stream.invoked(r, key.index, int32(len(r.all)-1), e.time)
	}
	return nil
}

// key is the event's key: its canonical text ("null" when absent) and partition.
func (r *jsonlReader) key(e *event) (keyEntry, error) {
	var raw []byte // absent: the empty text, which no JSON value is
	if e.key.present() {
		raw = r.bytes(e.key)
	}
	word := packText(raw)
	if entry, ok := r.shortKeys.get(word); ok {
		return entry, nil
	}
	if entry, ok := r.keys[string(raw)]; ok {
		r.shortKeys.put(word, entry)
		return entry, nil
	}
	text := "null"
	if raw != nil {
		canon, err := canonical(raw)
		if err != nil {
			return keyEntry{}, err
		}
		text = r.intern(canon)
	}
	partitionKey := ""
	if r.model.partitioned {
		partitionKey = text
	}
	index, seen := r.byKey[partitionKey] // a key written two ways ([1, 2], [1,2]) shares its partition
	if !seen {
		index = len(r.h.partitions)
		r.byKey[partitionKey] = index
		r.h.partitions = append(r.h.partitions, partition{key: partitionKey})
	}
	entry := keyEntry{text: text, index: index}
	r.keys[string(raw)] = entry
	r.shortKeys.put(word, entry)
	return entry, nil
}

func (r *jsonlReader) complete(processText []byte, e *event) error {
	client, seen := r.client(processText)
	if !seen || !r.byClient[client].open {
		return fallback("line %d: completion with no open invocation", r.lineNo)
	}
	p := &r.byClient[client]
	op, process := p.op, p.name
	p.open = false
	if r.numbered {
		r.eventAt[op.slot][1] = int32(r.events)
	}
	index := int(r.partOf[op.slot])
	switch string(r.bytes(e.typ)) {
	case `"ok"`:
		if op.f == "append" && r.stream != nil {
			r.stream.abandon() // states become texts: searches on int states must be over first
		}
		if e.time < op.call {
			return fallback("line %d: returns before it is called", r.lineNo)
		}
		row := rawOp{process: process, call: op.call, ret: e.time, known: true, f: op.f, key: op.key,
			input: op.input, output: "null"}
		if op.f == "cas" {
			row.output = "true"
		} else if e.value.present() {
			text, err := r.canonical(r.bytes(e.value))
			if err != nil {
				return err
			}
			row.output = text
		}
		input, output, skip, err := r.model.prepare(row)
		if err != nil {
			return fallback("line %d: %v", r.lineNo, err) // Python names it with its place
		}
		if !skip {
			target := &r.all[op.slot]
			target.Input, target.Output, target.Return = input, output, e.time
			r.h.completed++
			r.prepared++
		}
		if r.stream != nil {
			r.stream.completed(index, e.time, skip, false)
		}
	case `"fail"`: // certainly did not happen: its slot stays empty and is dropped
		if r.stream != nil {
			r.stream.completed(index, 0, true, false)
		}
	default:
		p.retired = true
		r.pending = append(r.pending, pendingOp{openOp: op, process: process})
		if r.stream != nil { // an info read constrains nothing (dropped); anything else stays open
			kind, known := registerOpsByModel[r.model.name][op.f]
			r.stream.completed(index, 0, known && kind == opRead, !(known && kind == opRead))
		}
	}
	return nil
}

// canonical interns a value's canonical text; known values need no copy to look up.
func (r *jsonlReader) canonical(raw []byte) (string, error) {
	word := packText(raw)
	if s, ok := r.shortVals.get(word); ok {
		return s, nil
	}
	s, err := r.canonicalText(raw)
	if err == nil {
		r.shortVals.put(word, s)
	}
	return s, err
}

func (r *jsonlReader) canonicalText(raw []byte) (string, error) {
	if raw[0] == '[' {
		if s, ok := r.lists[string(raw)]; ok {
			return s, nil
		}
		text, err := canonical(raw)
		if err != nil {
			return "", err
		}
		s := r.intern(text)
		r.lists[string(raw)] = s
		return s, nil
	}
	if s, ok := r.strings[string(raw)]; ok {
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

// internF interns an f as written (it has no escapes).
func (r *jsonlReader) internF(text []byte) string {
	word := packText(text)
	if interned, ok := r.shortFs.get(word); ok {
		return interned
	}
	s := r.intern(text)
	r.shortFs.put(word, s)
	return s
}

// -- one line: a flat JSON object ---------------------------------------------------

type syntaxError struct{ at int }

func (e *syntaxError) Error() string { return fmt.Sprintf("not JSON at byte %d", e.at) }

// parseEvent reads one JSON object; values of the fields it uses come back as
// canonical JSON text (Python's json.dumps with separators (",", ":")). spans gets where
// each value is (shapes.learn).
func parseEvent(line []byte, start int, e *event, spans *[]valueSpan) error {
	i := skipSpace(line, start)
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
		bit, end, plain := fieldName(line, i)
		if !plain { // an escape, a control character or non-ASCII in the name, or no closing quote
			var err error
			if end, err = scanValue(line, i, 0); err != nil {
				return err
			}
			if hasEscape(line[i+1 : end-1]) {
				return fallback("escaped field name")
			}
			bit = fieldBit(line[i+1 : end-1])
		}
		if seen&bit != 0 {
			return fallback("field %q twice", string(line[i+1:end-1]))
		}
		seen |= bit
		if end+2 < len(line) && line[end] == ':' && line[end+1] == ' ' && !jsonSpace[line[end+2]] {
			i = end + 2 // `": "` as Python writes it
		} else {
			i = skipSpace(line, end)
			if i >= len(line) || line[i] != ':' {
				return &syntaxError{at: i}
			}
			i = skipSpace(line, i+1)
		}
		end, err := scanEventValue(line, i)
		if err != nil {
			return err
		}
		*spans = append(*spans, valueSpan{start: i, end: end, bit: bit})
		if bit != 0 {
			if err := e.set(bit, line, i, end); err != nil {
				return err
			}
		}
		if end+2 < len(line) && line[end] == ',' && line[end+1] == ' ' && line[end+2] == '"' {
			i = end + 2 // `, "` as Python writes it
			continue
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

// fieldName reads the field name at line[i] ('"'): which field it is (0: one not used),
// where it ends, and whether it is plain (closed, printable ASCII, no escapes); a name
// that is not plain is read again by the caller.
func fieldName(line []byte, i int) (bit uint16, end int, plain bool) {
	if end, plain = plainStringEnd(line, i); plain {
		bit = fieldBit(line[i+1 : end-1])
	}
	return bit, end, plain
}

// plainStringEnd returns where the string at line[i] ('"') ends, and whether it is plain:
// closed, printable ASCII, no escapes (anything else is read again by scanValue).
func plainStringEnd(line []byte, i int) (int, bool) {
	for j := i + 1; j < len(line); j++ {
		switch c := line[j]; {
		case c == '"':
			return j + 1, true
		case c == '\\' || c < 0x20 || c >= 0x80:
			return j, false
		}
	}
	return len(line), false
}

const (
	fieldType uint16 = 1 << iota
	fieldProcess
	fieldF
	fieldKey
	fieldValue
	fieldTime
)

func fieldBit(name []byte) uint16 {
	switch string(name) {
	case "type":
		return fieldType
	case "process":
		return fieldProcess
	case "f":
		return fieldF
	case "key":
		return fieldKey
	case "value":
		return fieldValue
	case "time":
		return fieldTime
	}
	return 0
}

func (e *event) set(field uint16, line []byte, start, end int) error {
	raw, s := line[start:end], span{uint32(start), uint32(end)}
	switch field {
	case fieldType:
		e.typ = s
	case fieldProcess:
		e.process = s
	case fieldF:
		if hasEscape(raw) {
			return fallback("escaped f")
		}
		e.f = s
	case fieldKey:
		e.key = s
	case fieldValue:
		e.value = s
	case fieldTime:
		e.timeGiven = true
		if time, ok := smallInteger(raw); ok {
			e.time, e.hasTime = time, true
			return nil
		}
		if !isInteger(raw) {
			return nil // not an integer time: Python names the event if it is an operation
		}
		var err error
		if e.time, err = strconv.ParseInt(string(raw), 10, 64); err != nil {
			return fallback("time out of range")
		}
		e.hasTime = true
	}
	return nil
}

// smallInteger reads a non-negative integer of 1 to 18 digits (it cannot overflow); anything
// else (a sign, a fraction, an exponent, more digits) is left to the caller.
func smallInteger(raw []byte) (int64, bool) {
	if len(raw) == 0 || len(raw) > 18 {
		return 0, false
	}
	var n int64
	for _, c := range raw {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
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
		if end, plain := plainStringEnd(line, i); plain {
			return end, nil
		}
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
	if line[i] == '-' {
		i++
	}
	first := i
	i = digitsEnd(line, i)
	if i == first || (line[first] == '0' && i-first > 1) {
		return i, &syntaxError{at: start}
	}
	if i < len(line) && line[i] == '.' {
		i++
		if j := digitsEnd(line, i); j == i {
			return j, &syntaxError{at: start}
		} else {
			i = j
		}
	}
	if i < len(line) && (line[i] == 'e' || line[i] == 'E') {
		i++
		if i < len(line) && (line[i] == '+' || line[i] == '-') {
			i++
		}
		if j := digitsEnd(line, i); j == i {
			return j, &syntaxError{at: start}
		} else {
			i = j
		}
	}
	return i, nil
}

func digitsEnd(line []byte, i int) int {
	for i < len(line) && line[i] >= '0' && line[i] <= '9' {
		i++
	}
	return i
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
