package main

// A FIFO queue (enqueue/dequeue). The state is the queue's values as canonical
// JSON texts, each followed by a NUL (which JSON text never contains raw), so
// states compare as strings.

import (
	"strings"

	"github.com/anishathalye/porcupine"
)

type queueInput struct {
	enqueue bool
	value   string
}

const queueSeparator = "\x00"

func newQueueModel(initial string) (*model, error) {
	start, err := initialQueue(initial)
	if err != nil {
		return nil, err
	}
	m := &model{name: "fifo-queue"}
	m.porcupine = porcupine.Model{
		Init:                      func() interface{} { return start },
		Step:                      queueStep,
		Hash:                      func(state interface{}) uint64 { return hashString(state.(string)) },
		DescribeOperation:         describeQueueOp,
		DescribeState:             describeQueueState,
		DescribeOperationMetadata: describeMetadata,
	}
	m.prepare = func(op rawOp) (interface{}, interface{}, bool, error) {
		switch op.f {
		case "enqueue":
			if !op.known {
				return &queueInput{enqueue: true, value: op.input}, nil, false, nil
			}
			return &queueInput{enqueue: true, value: op.input}, "", false, nil
		case "dequeue":
			if !op.known {
				return &queueInput{}, nil, false, nil
			}
			return &queueInput{}, op.output, false, nil
		default:
			return nil, nil, false, unknownF(op, "fifo-queue", "enqueue, dequeue")
		}
	}
	return m, nil
}

// initialQueue reads an initial value: null (empty) or a JSON list of values.
func initialQueue(initial string) (string, error) {
	values, err := splitJSONList(initial)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	for _, v := range values {
		b.WriteString(v)
		b.WriteString(queueSeparator)
	}
	return b.String(), nil
}

func queueStep(state, input, output interface{}) (bool, interface{}) {
	queue := state.(string)
	in := input.(*queueInput)
	if in.enqueue {
		return true, queue + in.value + queueSeparator
	}
	end := strings.Index(queue, queueSeparator)
	if output == nil { // unknown dequeue: removes the head if there is one
		if end < 0 {
			return true, queue
		}
		return true, queue[end+1:]
	}
	seen := output.(string)
	if end < 0 {
		return seen == "null", queue // a dequeue that saw nothing: the queue was empty
	}
	return queue[:end] == seen, queue[end+1:]
}

func describeQueueOp(input, output interface{}) string {
	in := input.(*queueInput)
	switch {
	case in.enqueue && output == nil:
		return "enqueue(" + describeValue(in.value) + ") -> ?"
	case in.enqueue:
		return "enqueue(" + describeValue(in.value) + ")"
	case output == nil:
		return "dequeue() -> ?"
	default:
		return "dequeue() -> " + describeValue(output.(string))
	}
}

func describeQueueState(state interface{}) string {
	values := strings.Split(strings.TrimSuffix(state.(string), queueSeparator), queueSeparator)
	if state.(string) == "" {
		values = nil
	}
	return describeValue("[" + strings.Join(values, ", ") + "]")
}
