package main

// A multi-register, as in knossos: a txn is a list of [f key value] micro-ops,
// f being read (r) or write (w), applied atomically. A read of null is always
// legal (knossos: its value is unknown). The state is every key's value, in key
// order, joined by NUL so that states compare as strings.

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/anishathalye/porcupine"
)

type microOp struct {
	write bool
	key   int
	value string
}

type multiRegister struct {
	keyIndex map[string]int // key as JSON text -> position in the state
	keyNames []string
	initial  map[string]string
}

func newMultiRegisterModel(initial string) (*model, error) {
	r := &multiRegister{keyIndex: map[string]int{}, initial: map[string]string{}}
	if err := r.readInitial(initial); err != nil {
		return nil, err
	}
	m := &model{name: "multi-register"}
	m.porcupine = porcupine.Model{
		Init:                      r.init,
		Step:                      r.step,
		Hash:                      func(state interface{}) uint64 { return hashString(state.(string)) },
		DescribeOperation:         r.describeOp,
		DescribeState:             r.describeState,
		DescribeOperationMetadata: describeMetadata,
	}
	// prepare runs on every operation before the search starts, so by the time
	// init runs every key has its place.
	m.prepare = func(op rawOp) (interface{}, interface{}, bool, error) {
		if op.f != "txn" {
			return nil, nil, false, unknownF(op, "multi-register", "txn")
		}
		source := op.input
		if op.known && op.output != "null" {
			source = op.output // the completion carries what the reads saw
		}
		txn, err := r.readTxn(source)
		if err != nil {
			return nil, nil, false, err
		}
		if !op.known && !hasWrite(txn) {
			return nil, nil, true, nil // an info read-only txn constrains nothing
		}
		if !op.known {
			return txn, nil, false, nil
		}
		return txn, true, false, nil
	}
	return m, nil
}

func (r *multiRegister) readInitial(initial string) error {
	if initial == "null" {
		return nil
	}
	var values map[string]json.RawMessage
	if err := json.Unmarshal([]byte(initial), &values); err != nil {
		return fmt.Errorf("multi-register initial value must be a JSON object of keys, not %s", initial)
	}
	names := make([]string, 0, len(values))
	for name := range values {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		keyText, _ := json.Marshal(name)
		r.initial[string(keyText)] = string(values[name])
		r.key(string(keyText))
	}
	return nil
}

func (r *multiRegister) key(text string) int {
	index, ok := r.keyIndex[text]
	if !ok {
		index = len(r.keyNames)
		r.keyIndex[text] = index
		r.keyNames = append(r.keyNames, text)
	}
	return index
}

func (r *multiRegister) readTxn(text string) ([]microOp, error) {
	items, ok := jsonElements(text)
	if !ok {
		return nil, fmt.Errorf("txn value must be a list of [f key value], not %s", describeValue(text))
	}
	txn := make([]microOp, len(items))
	for i, item := range items {
		parts, ok := jsonElements(item)
		if !ok || len(parts) != 3 {
			return nil, fmt.Errorf("txn micro-op must be [f key value], not %s", describeValue(item))
		}
		switch f, _ := jsonString([]byte(parts[0])); f {
		case "read", "r":
		case "write", "w":
			txn[i].write = true
		default:
			return nil, fmt.Errorf("multi-register does not know micro-op %s (it knows read, write)", parts[0])
		}
		txn[i].key = r.key(parts[1])
		txn[i].value = parts[2]
	}
	return txn, nil
}

func hasWrite(txn []microOp) bool {
	for _, op := range txn {
		if op.write {
			return true
		}
	}
	return false
}

func (r *multiRegister) init() interface{} {
	values := make([]string, len(r.keyNames))
	for i, name := range r.keyNames {
		if v, ok := r.initial[name]; ok {
			values[i] = v
		} else {
			values[i] = "null"
		}
	}
	return strings.Join(values, "\x00")
}

func (r *multiRegister) step(state, input, output interface{}) (bool, interface{}) {
	values := strings.Split(state.(string), "\x00")
	for _, op := range input.([]microOp) {
		switch {
		case op.write:
			values[op.key] = op.value
		case output != nil && op.value != "null" && values[op.key] != op.value:
			return false, state
		}
	}
	return true, strings.Join(values, "\x00")
}

func (r *multiRegister) describeOp(input, output interface{}) string {
	parts := make([]string, 0, len(input.([]microOp)))
	for _, op := range input.([]microOp) {
		f := "r"
		if op.write {
			f = "w"
		}
		parts = append(parts, fmt.Sprintf("%s %s %s", f, describeKey(r.keyNames[op.key]), describeValue(op.value)))
	}
	suffix := ""
	if output == nil {
		suffix = " -> ?"
	}
	return "txn[" + strings.Join(parts, ", ") + "]" + suffix
}

func (r *multiRegister) describeState(state interface{}) string {
	values := strings.Split(state.(string), "\x00")
	parts := make([]string, len(values))
	for i, v := range values {
		parts[i] = describeKey(r.keyNames[i]) + ": " + describeValue(v)
	}
	return "{" + strings.Join(parts, ", ") + "}"
}
