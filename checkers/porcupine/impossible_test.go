package main

import (
	"math/rand"
	"strconv"
	"testing"

	"github.com/anishathalye/porcupine"
)

// randomRegisterHistory is a few operations on one key with random times and
// answers, some of them values nobody writes ("9"), some never returning.
func randomRegisterHistory(t *testing.T, m *model, rng *rand.Rand) []porcupine.Operation {
	var ops []porcupine.Operation
	value := func() string { return strconv.Itoa(rng.Intn(3)) }
	for i := 0; i < 2+rng.Intn(6); i++ {
		call := int64(rng.Intn(100))
		op := rawOp{process: strconv.Itoa(i), call: call, ret: call + 1 + int64(rng.Intn(40)), known: rng.Intn(8) > 0,
			key: `"k"`}
		switch rng.Intn(3) {
		case 0:
			op.f, op.known, op.output = "read", true, value()
			if rng.Intn(6) == 0 {
				op.output = "9"
			}
		case 1:
			op.f, op.input = "write", value()
		default:
			op.f, op.input, op.output = "cas", "["+value()+","+value()+"]", []string{"true", "false"}[rng.Intn(2)]
		}
		input, output, skip, err := m.prepare(op)
		if err != nil || skip {
			t.Fatalf("prepare %+v: %v %v", op, skip, err)
		}
		ret := op.ret
		if !op.known {
			ret = 1000
		}
		ops = append(ops, porcupine.Operation{ClientId: i, Input: input, Call: op.call, Output: output, Return: ret})
	}
	return ops
}

// A read found impossible makes the history illegal: porcupine's search, which
// tries every order, agrees on every random history where one is found.
func TestAnImpossibleReadIsIllegalForTheSearchToo(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	found, illegal := 0, 0
	for n := 0; n < 20000; n++ {
		m, err := newModel("cas-register", "0")
		if err != nil {
			t.Fatal(err)
		}
		ops := randomRegisterHistory(t, m, rng)
		legal := porcupine.CheckOperations(m.porcupine, ops)
		if !legal {
			illegal++
		}
		if _, impossible := m.impossible(ops); impossible {
			found++
			if legal {
				t.Fatalf("history %d: an impossible read in a legal history: %v", n, describeOps(m, ops))
			}
		}
	}
	// the test must see both: impossible reads, and illegal histories only a search finds
	if found < 1000 || illegal-found < 1000 {
		t.Fatalf("found %d impossible of %d illegal histories: too few to tell", found, illegal)
	}
}

// A read of a value that nobody wrote, and one of a value written only by an
// operation called after the read returned, are impossible; a read of a value
// a concurrent write or an unfinished cas may have written is not.
func TestImpossibleReads(t *testing.T) {
	cases := []struct {
		name       string
		ops        []rawOp
		impossible bool
	}{
		{"nobody wrote it", []rawOp{{f: "write", input: "1", call: 0, ret: 5}, {f: "read", output: "2", call: 6, ret: 9}}, true},
		{"written later", []rawOp{{f: "read", output: "2", call: 0, ret: 5}, {f: "write", input: "2", call: 6, ret: 9}}, true},
		{"written at once", []rawOp{{f: "read", output: "2", call: 0, ret: 5}, {f: "write", input: "2", call: 5, ret: 9}}, false},
		{"overlapping", []rawOp{{f: "read", output: "2", call: 0, ret: 5}, {f: "write", input: "2", call: 3, ret: 9}}, false},
		{"the initial value", []rawOp{{f: "write", input: "1", call: 0, ret: 5}, {f: "read", output: "0", call: 6, ret: 9}}, false},
		{"a failed cas", []rawOp{{f: "cas", input: "[0,2]", output: "false", call: 0, ret: 5}, {f: "read", output: "2", call: 6, ret: 9}}, true},
		{"a cas never answered", []rawOp{{f: "cas", input: "[0,2]", call: 0, ret: 5, known: false}, {f: "read", output: "2", call: 6, ret: 9}}, false},
	}
	for _, c := range cases {
		m, _ := newModel("cas-register", "0")
		var ops []porcupine.Operation
		for i, op := range c.ops {
			op.process, op.key, op.known = strconv.Itoa(i), `"k"`, op.known || c.name != "a cas never answered" || op.f != "cas"
			input, output, _, err := m.prepare(op)
			if err != nil {
				t.Fatal(err)
			}
			ret := op.ret
			if !op.known {
				ret = 1000
			}
			ops = append(ops, porcupine.Operation{ClientId: i, Input: input, Call: op.call, Output: output, Return: ret})
		}
		read, impossible := m.impossible(ops)
		if impossible != c.impossible {
			t.Errorf("%s: impossible %v, want %v", c.name, impossible, c.impossible)
		}
		if impossible && (read.Input.(*registerInput).op != opRead || len(m.found()) != 1) {
			t.Errorf("%s: found %+v, noted %v", c.name, read, m.found())
		}
		if impossible && porcupine.CheckOperations(m.porcupine, ops) {
			t.Errorf("%s: porcupine finds it legal", c.name)
		}
	}
}

func describeOps(m *model, ops []porcupine.Operation) []string {
	var out []string
	for _, op := range ops {
		out = append(out, m.porcupine.DescribeOperation(op.Input, op.Output)+" ["+strconv.FormatInt(op.Call, 10)+
			","+strconv.FormatInt(op.Return, 10)+"]")
	}
	return out
}
