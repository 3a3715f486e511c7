package main

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
	"sync/atomic"
	"time"

	"github.com/anishathalye/porcupine"
)

type partition struct {
	key string // the key as JSON text; "" for an unpartitioned model
	ops []porcupine.Operation
}

type verdict uint8

const (
	verdictOk verdict = iota
	verdictIllegal
	verdictCancelled // stopped because another partition was illegal, or the timeout
)

type history struct {
	partitions []partition
	ops        int
	completed  int   // operations with a known return: none means nothing happened to check
	infinity   int64 // where unknown operations return: after every event
	events     int   // read from a history file: its events (lines)
	// numbered: read from a history file with events_of_illegal, where each operation is in it
	numbered *numberedOps
}

// numberedOps are the events (1-based, as Python counts them) of every operation's invocation
// and completion (0: none), failed ones too, by its place in the file, and its partition's key
// (keys[partOf[place]]: the partitions as they were read, before sorting).
type numberedOps struct {
	eventAt [][2]int32
	partOf  []int32
	keys    []string
}

// check runs one request: read the operations, search every partition, and draw
// the visualization when asked.
func check(req *request) (resp response) {
	started := time.Now()
	resp.ErrorOp = -1
	defer func() { resp.GoMs = milliseconds(time.Since(started)) }()
	m, err := newModel(req.Model, string(req.Initial))
	if err != nil {
		return failure(resp, err)
	}
	limit := &memoryLimit{bytes: int64(req.MemoryLimitMB * (1 << 20)), floor: int64(req.MemoryFloorMB * (1 << 20)),
		hold: int64(req.MemoryFloorHoldMB * (1 << 20))}
	clock := &searchClock{}
	var early *stream // a faultbed history.jsonl is searched while it is read (stream.go)
	if req.HistoryFile != "" && (req.HistoryFormat == "" || req.HistoryFormat == "faultbed") && req.Visualize == "" {
		early = newStream(m, limit, clock)
	}
	h, err := readHistory(m, req, early)
	if early != nil {
		early.read()
	}
	if err != nil {
		return failure(resp, err)
	}
	resp.Ops, resp.Partitions, resp.Completed, resp.Events = h.ops, len(h.partitions), h.completed, h.events
	timeout := time.Duration(req.TimeoutMs * float64(time.Millisecond))

	counts := early != nil && !early.void // reading is over: void no longer changes
	var stop *atomic.Bool
	if counts {
		stop = &early.stop
	}
	verdicts, known := knownVerdicts(m, h, req)
	var segments int
	if !known {
		verdicts, segments = searchSegments(m, h.partitions, timeout, limit, clock, stop)
	}
	if early != nil {
		early.wait()
	}
	if counts {
		for i, p := range h.partitions { // every key cut early still has its last part here
			if v := early.results[p.key]; rank[v] > rank[verdicts[i]] {
				verdicts[i] = v
			}
		}
		segments += early.count
		resp.SegmentsEarly = early.count
	}
	resp.Segments = segments
	resp.PorcupineMs = milliseconds(clock.busy) // the wall time while some segment was searched
	if !clock.first.IsZero() {
		resp.SearchFromMs, resp.SearchToMs = milliseconds(clock.first.Sub(started)), milliseconds(clock.last.Sub(started))
	}
	resp.MemoryExceeded = limit.exceeded.Load()
	if low := limit.machineLow.Load(); low > 0 {
		resp.MachineMemoryLow, resp.AvailableMB = true, float64(low)/(1<<20)
	}
	resp.PeakRSSMB = float64(limit.peak.Load()) / (1 << 20)
	resp.Result = string(porcupine.Ok)
	for i, v := range verdicts {
		switch {
		case v == verdictIllegal:
			resp.Result = string(porcupine.Illegal)
			if m.partitioned && h.partitions[i].key != "null" {
				resp.IllegalKeys = append(resp.IllegalKeys, []byte(h.partitions[i].key))
			}
		case v == verdictCancelled:
			resp.CancelledPartitions++
			if resp.Result == string(porcupine.Ok) {
				resp.Result = string(porcupine.Unknown)
			}
		}
	}
	if m.found != nil {
		resp.ImpossibleReads = m.found()
	}
	if h.numbered != nil && resp.Result == string(porcupine.Illegal) {
		resp.IllegalEvents = illegalEvents(h, verdicts)
	}
	if req.Visualize != "" && (req.AlwaysVisualize || resp.Result == string(porcupine.Illegal)) {
		drawStarted := time.Now()
		// the verdict stands even when the picture cannot be drawn
		skipped, err := visualize(m, h, verdicts, req, timeout, limit)
		resp.PictureSkipped = skipped
		if err != nil {
			resp.VisualizationError = fmt.Sprintf("cannot write the visualization %s: %v", req.Visualize, err)
		} else {
			resp.Visualization = req.Visualize
		}
		resp.VisualizeMs = milliseconds(time.Since(drawStarted))
	}
	return resp
}

// knownVerdicts are the verdicts an earlier check of this history gave, when the
// request only wants them drawn: its illegal keys illegal (an impossible read among
// them noted, as a search would), every other key left out as a cancelled search
// is. false when there are none, or one names no key of the history: then search.
func knownVerdicts(m *model, h history, req *request) ([]verdict, bool) {
	if req.Visualize == "" || len(req.KnownIllegal) == 0 || !m.partitioned {
		return nil, false
	}
	illegal := map[string]bool{}
	for _, raw := range req.KnownIllegal {
		key, err := canonical(raw)
		if err != nil {
			return nil, false
		}
		illegal[string(key)] = false
	}
	verdicts := make([]verdict, len(h.partitions))
	for i, p := range h.partitions {
		verdicts[i] = verdictCancelled
		if _, named := illegal[p.key]; named {
			verdicts[i], illegal[p.key] = verdictIllegal, true
			if m.impossible != nil {
				m.impossible(p.ops)
			}
		}
	}
	for _, found := range illegal {
		if !found {
			return nil, false
		}
	}
	return verdicts, true
}

// illegalEvents are the events of the illegal partitions' operations, in the file's order.
func illegalEvents(h history, verdicts []verdict) []int32 {
	illegal := map[string]bool{}
	for i, v := range verdicts {
		if v == verdictIllegal {
			illegal[h.partitions[i].key] = true
		}
	}
	var events []int32
	for slot, at := range h.numbered.eventAt {
		if illegal[h.numbered.keys[h.numbered.partOf[slot]]] {
			events = append(events, at[0])
			if at[1] != 0 {
				events = append(events, at[1])
			}
		}
	}
	slices.Sort(events) // completions come between later invocations
	return events
}

func failure(resp response, err error) response {
	resp.Result = ""
	resp.Error = err.Error()
	var fallbackErr *fallbackError
	resp.Fallback = errors.As(err, &fallbackErr)
	var opErr *opError
	if errors.As(err, &opErr) {
		resp.ErrorOp = opErr.index
	}
	return resp
}

func milliseconds(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// readHistory turns rows into porcupine operations, partitioned by key when the
// model is. Processes become dense client ids in order of appearance, because
// the visualization draws one row per id from 0 to the largest.
func readHistory(m *model, req *request, early *stream) (history, error) {
	var raw []rawOp
	var latest int64
	var err error
	switch {
	case req.HistoryFile == "":
		raw, latest, err = readOps(req)
	case req.HistoryFormat == "" || req.HistoryFormat == "faultbed":
		return readJSONL(m, req.HistoryFile, req.Annotations, early, req.EventsOfIllegal)
	case req.HistoryFormat == "porcupine-etcd":
		raw, latest, err = readEtcdLog(req.HistoryFile)
	default:
		return history{}, fallback("no reader for the format %q", req.HistoryFormat)
	}
	if err != nil {
		return history{}, err
	}
	h := history{infinity: after(annotatedLatest(latest, req.Annotations))}
	clients := map[string]int{}
	byKey := map[string]int{}
	for i, op := range raw {
		input, output, skip, err := m.prepare(op)
		if err != nil {
			return history{}, &opError{index: i, msg: err.Error()}
		}
		if skip {
			continue
		}
		client, seen := clients[op.process]
		if !seen {
			client = len(clients)
			clients[op.process] = client
		}
		ret := h.infinity
		if op.known {
			ret = op.ret
			h.completed++
		}
		pop := porcupine.Operation{ClientId: client, Input: input, Call: op.call, Output: output,
			Return: ret, Metadata: &raw[i]} // described only when drawn (describeMetadata)
		key := ""
		if m.partitioned {
			key = op.key
		}
		index, seen := byKey[key]
		if !seen {
			index = len(h.partitions)
			byKey[key] = index
			h.partitions = append(h.partitions, partition{key: key})
		}
		h.partitions[index].ops = append(h.partitions[index].ops, pop)
		h.ops++
	}
	sort.SliceStable(h.partitions, func(i, j int) bool { return h.partitions[i].key < h.partitions[j].key })
	return h, nil
}

// annotatedLatest is the latest time of the history and its annotations.
func annotatedLatest(latest int64, annotations []annotationSpec) int64 {
	for _, a := range annotations {
		latest = max(latest, a.Start)
		if a.End != nil {
			latest = max(latest, *a.End)
		}
	}
	return latest
}

// after is the first time after t. At the end of int64 it is t itself (t + 1 would wrap around
// to the beginning of time and put unknown returns before their calls: a false Illegal). That is
// still after every event: porcupine orders a call before a return of the same time, so a return
// at t never precedes a call at t.
func after(t int64) int64 {
	if t == math.MaxInt64 {
		return t
	}
	return t + 1
}

func describeOrigin(op rawOp) string {
	origin := "process " + op.process
	if op.meta != "" {
		origin += ", " + op.meta
	}
	return origin
}
