package main

import (
	"fmt"
	"sort"
	"strings"

	"github.com/anishathalye/porcupine"
)

// A model is a porcupine model plus how to read faultbed operations for it.
//
// Steps receive a nil output for an operation whose outcome is unknown (info):
// such a step is always legal and takes effect if it could have. Because the
// operation returns at infinity, porcupine may also linearize it after every
// other operation, which is the same as "it never happened".
type model struct {
	name        string
	partitioned bool // one independent sub-history per key
	porcupine   porcupine.Model
	// prepare turns a row into porcupine's input and output (nil output when
	// unknown); skip means the operation constrains nothing (an info read).
	prepare func(op rawOp) (input, output interface{}, skip bool, err error)
	// impossible tells, without searching, that no order of the operations explains
	// one of their reads (registers.impossibleRead), and notes that read for found;
	// nil for models without such a test
	impossible func(ops []porcupine.Operation) (read porcupine.Operation, found bool)
	found      func() []impossibleRead // the first read impossible on each key, by key
}

type modelFactory func(initial string) (*model, error)

var modelFactories = map[string]modelFactory{
	"register":       func(initial string) (*model, error) { return newRegisterModel("register", initial) },
	"cas-register":   func(initial string) (*model, error) { return newRegisterModel("cas-register", initial) },
	"kv":             func(initial string) (*model, error) { return newRegisterModel("kv", initial) },
	"mutex":          newMutexModel,
	"multi-register": newMultiRegisterModel,
	"fifo-queue":     newQueueModel,
}

func modelNames() string {
	names := make([]string, 0, len(modelFactories))
	for name := range modelFactories {
		names = append(names, name)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

func newModel(name string, initial string) (*model, error) {
	factory, ok := modelFactories[name]
	if !ok {
		return nil, fmt.Errorf("unknown model %q (known: %s)", name, modelNames())
	}
	if initial == "" {
		initial = "null"
	}
	return factory(initial)
}

// hashString is FNV-1a, inlined because it runs on every cached state.
func hashString(s string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	return h
}

// describeValue shortens a JSON value for the visualization.
func describeValue(value string) string {
	const limit = 200
	if len(value) > limit {
		return value[:limit/2] + "…" + value[len(value)-limit/2:]
	}
	return value
}

// describeKey shows a key without JSON quotes when it is a plain string.
func describeKey(key string) string {
	if key == "null" || key == "" {
		return ""
	}
	if plain, ok := jsonString([]byte(key)); ok && !strings.ContainsAny(plain, ` ,()"`) && plain != "" {
		return plain
	}
	return describeValue(key)
}

func unknownF(op rawOp, m string, known string) error {
	return fmt.Errorf("model %s does not know operation %q (it knows %s)", m, op.f, known)
}

// splitJSONList returns the elements of a JSON list as texts; null is empty.
func splitJSONList(text string) ([]string, error) {
	if text == "null" {
		return nil, nil
	}
	values, ok := jsonElements(text)
	if !ok {
		return nil, fmt.Errorf("expected a JSON list, not %s", describeValue(text))
	}
	return values, nil
}
