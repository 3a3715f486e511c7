package main

// A mutex (acquire/release), as in knossos: state is whether the lock is held.

import (
	"github.com/anishathalye/porcupine"
)

type mutexInput struct{ acquire bool }

func newMutexModel(initial string) (*model, error) {
	held := initial == "true"
	m := &model{name: "mutex"}
	m.porcupine = porcupine.Model{
		Init: func() interface{} { return held },
		Step: mutexStep,
		Hash: func(state interface{}) uint64 {
			if state.(bool) {
				return 1
			}
			return 0
		},
		DescribeOperation:         describeMutexOp,
		DescribeState:             describeMutexState,
		DescribeOperationMetadata: describeMetadata,
	}
	m.prepare = func(op rawOp) (interface{}, interface{}, bool, error) {
		var input *mutexInput
		switch op.f {
		case "acquire", "lock":
			input = &mutexInput{acquire: true}
		case "release", "unlock":
			input = &mutexInput{acquire: false}
		default:
			return nil, nil, false, unknownF(op, "mutex", "acquire, release")
		}
		if !op.known {
			return input, nil, false, nil
		}
		return input, true, false, nil
	}
	return m, nil
}

func mutexStep(state, input, output interface{}) (bool, interface{}) {
	held := state.(bool)
	in := input.(*mutexInput)
	if output == nil {
		// unknown: never illegal; if it took effect the lock ends up held (acquire)
		// or free (release), and if it could not have, the lock already is.
		return true, in.acquire
	}
	if in.acquire {
		return !held, true
	}
	return held, false
}

func describeMutexOp(input, output interface{}) string {
	name := "release()"
	if input.(*mutexInput).acquire {
		name = "acquire()"
	}
	if output == nil {
		return name + " -> ?"
	}
	return name
}

func describeMutexState(state interface{}) string {
	if state.(bool) {
		return "held"
	}
	return "free"
}
