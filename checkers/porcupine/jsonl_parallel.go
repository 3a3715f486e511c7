package main

// Large histories are parsed by a few goroutines, a block of lines each, while
// this one pairs the events in file order: parsing is most of the reading.

import (
	"bytes"
	"errors"
	"io"
	"os"
	"runtime"
)

const (
	parallelBytes = 8 << 20 // smaller files are read by one goroutine
	blockBytes    = 4 << 20
)

type block struct {
	seq   int
	data  []byte
	last  bool // the end of the file: its last line may be torn
	err   error
	lines int
	parse []parsedLine
}

type parsedLine struct {
	e    event
	line int // within the block, from 1
}

func (r *jsonlReader) readParallel(file *os.File) error {
	workers := runtime.GOMAXPROCS(0)
	blocks := make(chan *block, workers)
	parsed := make(chan *block, workers)
	done := make(chan struct{})
	defer close(done)
	go readBlocks(file, blocks, done)
	for w := 0; w < workers; w++ {
		go func() {
			for b := range blocks {
				parseBlock(b)
				select {
				case parsed <- b:
				case <-done:
					return
				}
			}
		}()
	}
	waiting := map[int]*block{}
	for next := 0; ; {
		b, ok := waiting[next]
		if !ok {
			b = <-parsed
			waiting[b.seq] = b
			continue
		}
		delete(waiting, next)
		next++
		if b.err != nil {
			return b.err
		}
		base := r.lineNo
		for i := range b.parse {
			r.lineNo = base + b.parse[i].line // for the messages of pairing errors
			if err := r.take(&b.parse[i].e); err != nil {
				return err
			}
		}
		r.lineNo = base + b.lines
		if b.last {
			return nil
		}
	}
}

// readBlocks cuts the file into blocks of whole lines.
func readBlocks(file *os.File, out chan<- *block, done <-chan struct{}) {
	defer close(out)
	var carry []byte
	for seq := 0; ; {
		data := make([]byte, len(carry)+blockBytes)
		copy(data, carry)
		n, err := io.ReadFull(file, data[len(carry):])
		data = data[:len(carry)+n]
		b := &block{seq: seq, data: data, last: err != nil}
		if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
			b.err = fallback("cannot read: %v", err)
		} else if !b.last {
			cut := bytes.LastIndexByte(data, '\n') + 1
			if cut == 0 {
				carry = data // a line longer than a block: read on
				continue
			}
			carry = append([]byte(nil), data[cut:]...)
			b.data = data[:cut]
		}
		select {
		case out <- b:
		case <-done:
			return
		}
		if b.last || b.err != nil {
			return
		}
		seq++
	}
}

func parseBlock(b *block) {
	if b.err != nil {
		return
	}
	data := b.data
	b.parse = make([]parsedLine, 0, len(data)/100)
	for len(data) > 0 {
		end := bytes.IndexByte(data, '\n')
		line, complete := data, false
		if end >= 0 {
			line, data, complete = data[:end], data[end+1:], true
		} else {
			data = nil
		}
		b.lines++
		e, ok, err := parseLine(line, complete || !b.last, b.lines)
		if err != nil {
			b.err = err
			return
		}
		if ok {
			b.parse = append(b.parse, parsedLine{e: e, line: b.lines})
		}
	}
}
