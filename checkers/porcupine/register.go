package main

// Registers: `register` (read/write), `cas-register` (+ cas) and `kv` (+ append).
// All three partition by key, so a history over several keys is one register per
// key; a history without keys is one register. Values are canonical JSON text.
//
// The search compares, hashes and boxes states millions of times, and an int in
// an interface needs no allocation while a string does; so unless the history
// appends, values are interned to ints before the search and states are ints.
// Appends make new values during the search, so with appends states are texts.

import (
	"fmt"
	"sort"
	"sync"

	"github.com/anishathalye/porcupine"
)

type registerOp uint8

const (
	opRead registerOp = iota
	opWrite
	opCas
	opAppend
	opCarry // a segment's start: the state the earlier part ends in (a write, drawn as such)
)

// Inputs and outputs hold ids, not texts: no pointers, so the collector never
// looks inside the millions of them, and inputs come from slabs.
type registerInput struct {
	op       registerOp
	key      int32 // into registers.texts, as values are
	value    int32 // write or append argument
	from, to int32 // cas
}

type registerOutput struct {
	value   int32 // what a read saw
	swapped bool  // whether a cas found its expected value
}

type registers struct {
	ids      map[string]int32     // keys and values, interned
	shortIDs shortTexts[int32]    // the same for short texts, found first (short.go)
	casPairs shortTexts[[2]int32] // a short cas argument ("[1,2]") -> its two values' ids
	texts    []string
	appends  bool // states are texts, not ids
	slab     []registerInput
	reads    []*registerOutput // the output of a read of each value, shared
	start    int32             // every key's initial value

	mu         sync.Mutex
	impossible map[int32]porcupine.Operation // by key: the first impossible read found (impossibleRead)
}

var (
	wrote      = &registerOutput{}
	swapped    = &registerOutput{swapped: true}
	notSwapped = &registerOutput{}
)

func (r *registers) value(text string) int32 {
	word := packText(text)
	if id, ok := r.shortIDs.get(word); ok {
		return id
	}
	id, ok := r.ids[text]
	if !ok {
		id = int32(len(r.texts))
		r.ids[text] = id
		r.texts = append(r.texts, text)
	}
	r.shortIDs.put(word, id)
	return id
}

func (r *registers) newInput(op registerOp, key int32) *registerInput {
	if len(r.slab) == cap(r.slab) {
		r.slab = make([]registerInput, 0, 4096)
	}
	r.slab = append(r.slab, registerInput{op: op, key: key})
	return &r.slab[len(r.slab)-1]
}

func (r *registers) read(value int32) *registerOutput {
	for int(value) >= len(r.reads) {
		r.reads = append(r.reads, &registerOutput{value: int32(len(r.reads))})
	}
	return r.reads[value]
}

func (r *registers) state(v int32) interface{} {
	if r.appends {
		return r.texts[v]
	}
	return int(v)
}

func (r *registers) stateText(state interface{}) string {
	if r.appends {
		return state.(string)
	}
	return r.texts[state.(int)]
}

var registerOpsByModel = map[string]map[string]registerOp{
	"register":     {"read": opRead, "get": opRead, "write": opWrite, "put": opWrite},
	"cas-register": {"read": opRead, "get": opRead, "write": opWrite, "put": opWrite, "cas": opCas},
	"kv": {"read": opRead, "get": opRead, "write": opWrite, "put": opWrite, "cas": opCas,
		"append": opAppend},
}

var registerOpNames = map[string]string{
	"register":     "read, write",
	"cas-register": "read, write, cas",
	"kv":           "read, write, cas, append",
}

func newRegisterModel(name string, initial string) (*model, error) {
	ops := registerOpsByModel[name]
	r := &registers{ids: map[string]int32{}}
	start := r.value(initial)
	r.start = start
	m := &model{name: name, partitioned: true, impossible: r.impossibleRead, found: r.found}
	m.porcupine = porcupine.Model{
		Init: func() interface{} { return r.state(start) },
		Step: r.step,
		// No Hash: porcupine then keys its cache by the set of linearized operations
		// alone and tells the few states apart by Equal, which measured a third faster
		// (fewer, fuller map entries) on porcupine's Jepsen logs than one entry per state.
		DescribeOperation:         r.describeOp,
		DescribeState:             func(state interface{}) string { return describeValue(r.stateText(state)) },
		DescribeOperationMetadata: describeMetadata,
	}
	var kinds shortTexts[registerOp] // ops, for short fs (short.go)
	m.prepare = func(op rawOp) (interface{}, interface{}, bool, error) {
		word := packText(op.f)
		kind, ok := kinds.get(word)
		if !ok {
			if kind, ok = ops[op.f]; !ok {
				return nil, nil, false, unknownF(op, name, registerOpNames[name])
			}
			kinds.put(word, kind)
		}
		if kind == opAppend { // written only then: searches running while the file is read read it
			r.appends = true
		}
		return r.prepare(kind, op)
	}
	return m, nil
}

func (r *registers) prepare(kind registerOp, op rawOp) (interface{}, interface{}, bool, error) {
	switch kind {
	case opRead:
		if !op.known {
			return nil, nil, true, nil // an info read constrains nothing
		}
		return r.newInput(kind, r.value(op.key)), r.read(r.value(op.output)), false, nil
	case opCas:
		word := packText(op.input)
		pair, ok := r.casPairs.get(word)
		if !ok {
			elements, ok := jsonElements(op.input)
			if !ok || len(elements) != 2 {
				return nil, nil, false, fmt.Errorf("cas value must be [expected, new], not %s", op.input)
			}
			pair = [2]int32{r.value(elements[0]), r.value(elements[1])}
			r.casPairs.put(word, pair)
		}
		input := r.newInput(kind, r.value(op.key))
		input.from, input.to = pair[0], pair[1]
		if !op.known {
			return input, nil, false, nil
		}
		// true (or anything but false) is a cas that swapped; false is porcupine's
		// etcd reading of a failed cas: it ran and found another value.
		if op.output != "false" {
			return input, swapped, false, nil
		}
		return input, notSwapped, false, nil
	default:
		input := r.newInput(kind, r.value(op.key))
		input.value = r.value(op.input)
		if !op.known {
			return input, nil, false, nil
		}
		return input, wrote, false, nil
	}
}

// impossibleRead tells whether a read among ops (one key's, in call order, or a
// segment's) saw a value that neither the initial value is nor an operation called
// before the read returned may have written: a value nobody wrote (a torn or
// corrupted read), or one written only later. No order of the operations explains
// it, so they are illegal without a search; porcupine would have to try every order
// first, which on a key with many clients at once outlasts any time or memory
// limit. Only a necessary condition: finding none proves nothing. The read that
// returned first is noted for found. Histories that append are left to the search.
func (r *registers) impossibleRead(ops []porcupine.Operation) (porcupine.Operation, bool) {
	if r.appends {
		return porcupine.Operation{}, false
	}
	earliest := make(map[int32]int64, 8) // a value: the earliest call of an operation that may write it
	for _, op := range ops {
		in := op.Input.(*registerInput)
		var v int32
		switch in.op {
		case opWrite, opCarry:
			v = in.value
		case opCas:
			if out, known := op.Output.(*registerOutput); known && !out.swapped {
				continue
			}
			v = in.to
		default:
			continue
		}
		if call, seen := earliest[v]; !seen || op.Call < call {
			earliest[v] = op.Call
		}
	}
	var first porcupine.Operation
	found := false
	for _, op := range ops {
		in := op.Input.(*registerInput)
		out, known := op.Output.(*registerOutput)
		if in.op != opRead || !known || out.value == r.start {
			continue
		}
		if call, seen := earliest[out.value]; seen && call <= op.Return { // porcupine: a call before a return at the same time
			continue
		}
		if !found || op.Return < first.Return {
			first, found = op, true
		}
	}
	if found {
		key := first.Input.(*registerInput).key
		r.mu.Lock()
		if known, seen := r.impossible[key]; !seen || first.Return < known.Return {
			if r.impossible == nil {
				r.impossible = map[int32]porcupine.Operation{}
			}
			r.impossible[key] = first
		}
		r.mu.Unlock()
	}
	return first, found
}

func (r *registers) found() []impossibleRead {
	r.mu.Lock()
	defer r.mu.Unlock()
	reads := make([]impossibleRead, 0, len(r.impossible))
	for key, op := range r.impossible {
		read := impossibleRead{Key: []byte(r.texts[key]), Value: []byte(r.texts[op.Output.(*registerOutput).value]),
			Call: op.Call, Return: op.Return}
		if raw, ok := op.Metadata.(*rawOp); ok {
			read.Origin = describeOrigin(*raw)
		}
		reads = append(reads, read)
	}
	sort.Slice(reads, func(i, j int) bool { return reads[i].Return < reads[j].Return })
	return reads
}

func (r *registers) step(state, input, output interface{}) (bool, interface{}) {
	in := input.(*registerInput)
	out, known := output.(*registerOutput)
	if r.appends {
		return r.stepText(state.(string), in, out, known)
	}
	current := state.(int)
	switch in.op {
	case opRead:
		return !known || int(out.value) == current, current
	case opWrite, opCarry:
		return true, int(in.value)
	default: // cas
		if current == int(in.from) {
			return !known || out.swapped, int(in.to)
		}
		return !known || !out.swapped, current
	}
}

func (r *registers) stepText(current string, in *registerInput, out *registerOutput, known bool) (bool, interface{}) {
	switch in.op {
	case opRead:
		return !known || r.texts[out.value] == current, current
	case opWrite, opCarry:
		return true, r.texts[in.value]
	case opCas:
		if current == r.texts[in.from] {
			return !known || out.swapped, r.texts[in.to]
		}
		return !known || !out.swapped, current
	default:
		next, ok := appendJSON(current, r.texts[in.value])
		return ok, next
	}
}

// appendJSON appends to a JSON value without decoding it: strings concatenate
// (porcupine's kv logs), anything else makes or extends a list (Jepsen's
// list-append). Canonical JSON escapes per character, so joining texts is exact.
func appendJSON(current, value string) (string, bool) {
	isString := func(s string) bool { return len(s) >= 2 && s[0] == '"' }
	switch {
	case current == "null" && isString(value):
		return value, true
	case current == "null":
		return "[" + value + "]", true
	case isString(current) && isString(value):
		return current[:len(current)-1] + value[1:], true
	case current == "[]":
		return "[" + value + "]", true
	case len(current) >= 2 && current[0] == '[':
		return current[:len(current)-1] + "," + value + "]", true
	default:
		return current, false // appending to a number or an object: no such step
	}
}

func (r *registers) describeOp(input, output interface{}) string {
	in := input.(*registerInput)
	out, known := output.(*registerOutput)
	key := describeKey(r.texts[in.key])
	withKey := func(args string) string {
		if key == "" {
			return args
		}
		return key + ", " + args
	}
	switch in.op {
	case opCarry:
		return fmt.Sprintf("state(%s) = %s, as the earlier part ends", key, describeValue(r.texts[in.value]))
	case opRead:
		if !known {
			return fmt.Sprintf("read(%s) -> ?", key)
		}
		return fmt.Sprintf("read(%s) -> %s", key, describeValue(r.texts[out.value]))
	case opCas:
		result := "?"
		if known && out.swapped {
			result = "ok"
		} else if known {
			result = "fail"
		}
		args := describeValue(r.texts[in.from]) + ", " + describeValue(r.texts[in.to])
		return fmt.Sprintf("cas(%s) -> %s", withKey(args), result)
	default:
		name := "write"
		if in.op == opAppend {
			name = "append"
		}
		if !known {
			return fmt.Sprintf("%s(%s) -> ?", name, withKey(describeValue(r.texts[in.value])))
		}
		return fmt.Sprintf("%s(%s)", name, withKey(describeValue(r.texts[in.value])))
	}
}

func describeMetadata(metadata interface{}) string {
	if op, ok := metadata.(*rawOp); ok {
		return describeOrigin(*op)
	}
	if text, ok := metadata.(string); ok {
		return text
	}
	return ""
}
