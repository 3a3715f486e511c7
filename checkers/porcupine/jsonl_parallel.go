package main

// The file is read in blocks of whole lines, parsed by a few goroutines, and
// paired in file order by this one. Blocks are recycled: fresh buffers cost
// more in zeroing than the parsing does, and parsed events are spans of their
// block (no pointers), so the collector has nothing to scan in them.

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"runtime"
	"sync"
)

// blockBytes: small, so that pairing, the cuts and the searches made while reading
// (stream.go) follow the parsing closely, and the few recycled blocks and their parsed
// lines stay in the CPU's cache: a fresh page costs a fault, and on a 2-CPU virtual
// machine 256 KB blocks made a 10k history's check (Go's part, in a fresh process) a third
// longer: 15 ms against 11.6 ms, median of 15 (the blocks and their parsed lines were 4 MB
// of fresh memory, 1,000 page faults, against 0.3 MB now);
// large enough that handing a block over (a few channel operations) costs nothing beside
// parsing it. The first block is smaller still (firstBlockBytes): the first searches
// start after a few hundred lines.
const (
	blockBytes      = 32 << 10
	firstBlockBytes = 16 << 10
)

type block struct {
	seq   int
	buf   []byte // recycled storage; data is its filled part
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

func (r *jsonlReader) readBlocks(file *os.File) error {
	workers := runtime.GOMAXPROCS(0)
	free := make(chan *block, workers+2+headBlocks)
	for i := 0; i < cap(free); i++ {
		free <- takeBlock()
	}
	defer keepBlocks(free)
	blocks := make(chan *block, workers)
	parsed := make(chan *block, workers+2)
	done := make(chan struct{})
	defer close(done)
	waiting := map[int]*block{}
	// The first block is read here, and parsed here as it is paired: a goroutine just started,
	// or just woken, runs 0.1-1 ms later on a virtual machine, and the first search waits for the
	// first block; the reading goroutine and the parsers start meanwhile.
	head, carry, reading := readHead(file, free)
	if reading {
		go cutBlocks(file, free, blocks, done, carry, len(head))
	} else {
		close(blocks)
	}
	for w := 0; w < workers; w++ {
		go func() {
			var known shapes // this worker's line layouts
			for b := range blocks {
				parseBlock(b, &known)
				select {
				case parsed <- b:
				case <-done:
					return
				}
			}
		}()
	}
	var known shapes // the head's line layouts
	for next := 0; ; {
		var b *block
		if next < len(head) {
			b = head[next]
			parseBlock(b, &known)
		} else if b = waiting[next]; b == nil {
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
		r.data = b.data
		for i := range b.parse {
			r.lineNo = base + b.parse[i].line // for the messages of pairing errors
			if err := r.take(&b.parse[i].e); err != nil {
				return err
			}
		}
		r.lineNo = base + b.lines
		r.data = nil
		last := b.last // read before b is given back: the reading goroutine may refill it at once
		free <- b      // never blocks: every block came from free
		if last {
			return nil
		}
	}
}

// headBlocks: the blocks the pairing goroutine reads itself (16 KB: some 70 operations of a
// faultbed history, where the first cut is), before the reading goroutine takes over. Not three (16
// KB, then 32 KB each), as once: the first one waited for the other two to be read. With one, and
// streamFirstOps 4 (changed together), a 10k history's time outside its search fell from 20 % of
// the search to 16 % (median of 61 fresh processes in turns; paired, 3 points).
const headBlocks = 1

// readHead reads the first blocks of the file, unparsed, and where the reading goroutine goes on
// (reading: the file has more; carry: the start of a line the last block cut). It stops early at
// a line longer than a block: the reading goroutine reads on with it.
func readHead(file *os.File, free chan *block) (head []*block, carry []byte, reading bool) {
	for len(head) < headBlocks {
		b := <-free
		size := blockBytes
		if len(head) == 0 {
			size = firstBlockBytes
		}
		var whole bool
		if carry, whole = readBlock(file, b, carry, size, len(head)); !whole {
			free <- b
			return head, carry, true
		}
		head = append(head, b)
		if b.last || b.err != nil {
			return head, nil, false
		}
	}
	return head, carry, true
}

// blockPool keeps blocks from one check to the next: a fresh page costs a fault (2-16 us
// on a virtual machine), and a small check's first blocks are where its first searches wait.
// The library's warm-up (warm.go) leaves a few here for a process's first check.
var blockPool struct {
	sync.Mutex
	blocks []*block
}

const pooledBlocks = 16 // two checks at once on 2 CPUs hold 7 each; some 100 KB a block with its parsed lines

func takeBlock() *block {
	blockPool.Lock()
	defer blockPool.Unlock()
	if n := len(blockPool.blocks); n > 0 {
		b := blockPool.blocks[n-1]
		blockPool.blocks = blockPool.blocks[:n-1]
		return b
	}
	return &block{}
}

// keepBlocks pools the blocks left in free; those still in another goroutine's hands (a read
// or a parse cut short by an error) are left to the collector.
func keepBlocks(free chan *block) {
	for {
		select {
		case b := <-free:
			blockPool.Lock()
			if len(blockPool.blocks) < pooledBlocks {
				*b = block{buf: b.buf, parse: b.parse[:0]}
				blockPool.blocks = append(blockPool.blocks, b)
			}
			blockPool.Unlock()
		default:
			return
		}
	}
}

// cutBlocks fills recycled blocks with whole lines of the file, from block seq on (carry: the
// start of a line the block before cut).
func cutBlocks(file *os.File, free chan *block, out chan<- *block, done <-chan struct{}, carry []byte, seq int) {
	defer close(out)
	for {
		var b *block
		select {
		case b = <-free:
		case <-done:
			return
		}
		size := blockBytes
		if seq == 0 {
			size = firstBlockBytes
		}
		var whole bool
		if carry, whole = readBlock(file, b, carry, size, seq); !whole {
			free <- b // never blocks: it just came from free
			continue
		}
		end := b.last || b.err != nil // read before b is handed on: it comes back refilled, or reset
		select {
		case out <- b:
		case <-done:
			return
		}
		if end {
			return
		}
		seq++
	}
}

// readBlock fills b with carry and the next size bytes of the file, up to the last whole
// line, and returns what follows it (the next block's carry); not whole when the block holds
// no whole line (a line longer than the block: the caller reads on into a larger one).
func readBlock(file *os.File, b *block, carry []byte, size, seq int) (next []byte, whole bool) {
	if need := len(carry) + size; cap(b.buf) < need {
		// room for the next carried line start; every block as large as the largest: made once
		b.buf = make([]byte, max(need, blockBytes)+4096)
	}
	data := b.buf[:len(carry)+size]
	copy(data, carry)
	n, err := io.ReadFull(file, data[len(carry):])
	data = data[:len(carry)+n]
	*b = block{seq: seq, buf: b.buf, data: data, last: err != nil, parse: b.parse[:0]}
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
		b.err = fallback("cannot read: %v", err)
		return carry, true
	}
	if b.last {
		return carry, true
	}
	cut := bytes.LastIndexByte(data, '\n') + 1
	next = append(carry[:0], data[cut:]...)
	if cut == 0 {
		return next, false
	}
	b.data = data[:cut]
	return next, true
}

func parseBlock(b *block, known *shapes) {
	if b.err != nil {
		return
	}
	data := b.data
	ascii := isASCII(data) // then no line needs its own UTF-8 check
	if b.parse == nil {
		b.parse = make([]parsedLine, 0, max(len(data), blockBytes)/100) // faultbed writes about 115 bytes a line
	}
	for start := 0; start < len(data); {
		end := bytes.IndexByte(data[start:], '\n')
		lineEnd, next, complete := len(data), len(data), false
		if end >= 0 {
			lineEnd, next, complete = start+end, start+end+1, true
		}
		b.lines++
		e, ok, err := parseLine(data[:lineEnd], start, complete || !b.last, ascii, b.lines, known)
		if err != nil {
			b.err = err
			return
		}
		if ok {
			b.parse = append(b.parse, parsedLine{e: e, line: b.lines})
		}
		start = next
	}
}

// isASCII tells whether data holds no byte >= 0x80, 32 bytes at a time, then eight.
func isASCII(data []byte) bool {
	i := 0
	for ; i+32 <= len(data); i += 32 {
		word := binary.LittleEndian.Uint64(data[i:]) | binary.LittleEndian.Uint64(data[i+8:]) |
			binary.LittleEndian.Uint64(data[i+16:]) | binary.LittleEndian.Uint64(data[i+24:])
		if word&0x8080808080808080 != 0 {
			return false
		}
	}
	for ; i+8 <= len(data); i += 8 {
		if binary.LittleEndian.Uint64(data[i:])&0x8080808080808080 != 0 {
			return false
		}
	}
	for ; i < len(data); i++ {
		if data[i] >= 0x80 {
			return false
		}
	}
	return true
}
