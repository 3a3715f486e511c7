package main

// The picture: porcupine's HTML page, drawn by searching again while recording
// partial linearizations. That search keeps a bitset of the partition's operations
// per state it visits (n*n/8 bytes for n operations), so a long partition is not
// drawn whole: an illegal one shows its first illegal segment (segments.go; it
// starts from the state the earlier part ends in, drawn as such), a legal one is
// left out and counted. The drawing stops at the time and memory limits too.

import (
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/anishathalye/porcupine"
)

// A key with a read no order explains (registers.impossibleRead) is drawn whole up to
// this many operations, beyond it as the read and the operations overlapping it.
const pictureWholeOps = 100

const pictureMaxOps = 10000 // about 12 MB of bitsets per visited state at most: a picture a person can read

// visualize draws the partitions whose verdict is known (a cancelled one may never
// finish) beside the annotations; skipped counts those too long to draw.
func visualize(m *model, h history, verdicts []verdict, req *request, timeout time.Duration,
	limit *memoryLimit) (skipped int, err error) {
	defer func() { // the verdict stands whatever happens to its picture
		if recovered := recover(); recovered != nil {
			err = fmt.Errorf("internal error while drawing: %v", recovered)
		}
	}()
	var stop atomic.Bool
	if timeout > 0 {
		timer := time.AfterFunc(timeout, func() { stop.Store(true) })
		defer timer.Stop()
	}
	defer limit.watch(&stop)()
	var chosen [][]porcupine.Operation
	rows := map[int]int{} // the picture has a row per client from 0 to the largest: skip the absent
	for i, p := range h.partitions {
		if verdicts[i] == verdictCancelled {
			continue
		}
		drawn := p.ops
		if verdicts[i] == verdictIllegal && m.impossible != nil && len(p.ops) > pictureWholeOps {
			if read, found := m.impossible(p.ops); found { // a hot key's orders may be beyond any search
				drawn = overlapping(p.ops, read)
			}
		}
		if len(drawn) > pictureMaxOps {
			if drawn = pictureSegment(m, i, p.ops, verdicts[i], &stop); drawn == nil {
				skipped++
				continue
			}
		}
		ops := make([]porcupine.Operation, len(drawn))
		for j, op := range drawn {
			row, seen := rows[op.ClientId]
			if !seen {
				row = len(rows)
				rows[op.ClientId] = row
			}
			ops[j] = op
			ops[j].ClientId = row
		}
		chosen = append(chosen, ops)
	}
	var aborted atomic.Bool
	drawn := stoppable(m.porcupine, &stop, &aborted)
	drawn.Partition = func([]porcupine.Operation) [][]porcupine.Operation { return chosen }
	_, info := porcupine.CheckOperationsVerbose(drawn, nil, timeout)
	if aborted.Load() {
		return skipped, errors.New("its search stopped at the time or memory limit")
	}
	info.AddAnnotations(annotations(req.Annotations, h.infinity))
	return skipped, draw(m, drawn.Partition, info, req.Visualize)
}

// draw writes the page with the model itself, not the stoppable one the search used:
// the drawing steps through the partial linearizations again, and the stoppable model
// refuses every step once its timer or the memory limit has fired, which can be after
// porcupine's own timeout ended the search (it then returns what it found, which can
// be drawn); porcupine panics at a refused step.
func draw(m *model, partition func([]porcupine.Operation) [][]porcupine.Operation, info porcupine.LinearizationInfo,
	path string) error {
	plain := m.porcupine
	plain.Partition = partition
	return porcupine.VisualizePath(plain, info, path)
}

// overlapping is the read and the operations of ops whose time overlaps its
// own: illegal alone (none of them may have written what it saw), and few.
func overlapping(ops []porcupine.Operation, read porcupine.Operation) []porcupine.Operation {
	var window []porcupine.Operation
	for _, op := range ops {
		if op.Call <= read.Return && op.Return >= read.Call {
			window = append(window, op)
		}
	}
	return window
}

// pictureSegment is the first illegal segment of a long illegal partition, when it
// is short enough to draw; nil otherwise.
func pictureSegment(m *model, index int, ops []porcupine.Operation, v verdict, stop *atomic.Bool) []porcupine.Operation {
	if v != verdictIllegal {
		return nil
	}
	for _, s := range splitPartition(index, ops) {
		if len(s.ops) > pictureMaxOps {
			return nil
		}
		if searchOne(m, s.ops, stop) == verdictIllegal {
			return s.ops
		}
	}
	return nil
}

func annotations(specs []annotationSpec, infinity int64) []porcupine.Annotation {
	out := make([]porcupine.Annotation, 0, len(specs))
	for _, a := range specs {
		end := infinity
		if a.End != nil {
			end = *a.End
		}
		tag := a.Tag
		if tag == "" {
			tag = "nemesis"
		}
		out = append(out, porcupine.Annotation{Tag: tag, Start: a.Start, End: end,
			Description: a.Description, Details: a.Details, BackgroundColor: a.Color})
	}
	return out
}
