package main

// Lines of a history come in a few layouts: faultbed writes every invocation with the same
// fields in the same order and the same separators, and every completion of a kind alike. A
// parse worker remembers the layouts of lines it has read (a shape: the bytes that stand
// between values); a line that starts like a known shape is read by comparing those bytes and
// scanning only the values, without reading field names, spaces and separators one by one.
// Anything that differs (another field, other spaces, a value that does not scan) sends the
// line through parseEvent's general reading, so what is accepted is exactly what it accepts.

import "bytes"

const maxShapes = 8

// lineShape is one layout: prefix is a line's start through the end of its first value
// (`{"type": "invoke"`), literals[k] what stands before value k+1 (`, "process": `).
type lineShape struct {
	prefix     []byte
	firstStart int // where the first value starts within prefix
	firstBit   uint16
	literals   [][]byte
	bits       []uint16
}

// shapes are one worker's layouts, newest replacing the oldest once there are maxShapes.
type shapes struct {
	known  [maxShapes]*lineShape
	n      int
	next   int
	spans  []valueSpan // the general reading's values, reused line after line
	misses int         // lines read in general since one had a known shape
}

// valueSpan is where a value was found by the general reading (learn).
type valueSpan struct {
	start, end int
	bit        uint16
}

// read fills e from line[start:] when the line has a known shape; false leaves e to parseEvent.
func (s *shapes) read(line []byte, start int, e *event) bool {
	rest := line[start:]
	for k := 0; k < s.n; k++ {
		shape := s.known[k]
		if !bytes.HasPrefix(rest, shape.prefix) {
			continue
		}
		if shape.match(line, start, e) {
			s.misses = 0
			return true
		}
		*e = event{}
	}
	s.misses++
	return false
}

func (shape *lineShape) match(line []byte, start int, e *event) bool {
	i := start + len(shape.prefix)
	if shape.firstBit != 0 && e.set(shape.firstBit, line, start+shape.firstStart, i) != nil {
		return false
	}
	for k, literal := range shape.literals {
		if !bytes.HasPrefix(line[i:], literal) {
			return false
		}
		i += len(literal)
		end, err := scanEventValue(line, i)
		if err != nil {
			return false
		}
		if bit := shape.bits[k]; bit != 0 && e.set(bit, line, i, end) != nil {
			return false
		}
		i = end
	}
	return i < len(line) && line[i] == '}' && skipSpace(line, i+1) == len(line)
}

// learn keeps the shape of a line the general reading accepted, its values at spans; in a
// file whose lines share no layout, only every 64th line's (learning costs allocations).
func (s *shapes) learn(line []byte, start int, spans []valueSpan) {
	if len(spans) == 0 || (s.misses > maxShapes && s.misses%64 != 0) {
		return
	}
	shape := &lineShape{prefix: bytes.Clone(line[start:spans[0].end]), firstStart: spans[0].start - start,
		firstBit: spans[0].bit}
	for k := 1; k < len(spans); k++ {
		shape.literals = append(shape.literals, bytes.Clone(line[spans[k-1].end:spans[k].start]))
		shape.bits = append(shape.bits, spans[k].bit)
	}
	if s.n < maxShapes {
		s.known[s.n] = shape
		s.n++
		return
	}
	s.known[s.next] = shape
	s.next = (s.next + 1) % maxShapes
}

// scanEventValue scans the value at line[i] (plain strings and numbers first).
func scanEventValue(line []byte, i int) (int, error) {
	switch {
	case i < len(line) && line[i] >= '0' && line[i] <= '9': // process, time, index: most values
		return numberEnd(line, i)
	case i < len(line) && line[i] == '"':
		if end, plain := plainStringEnd(line, i); plain {
			return end, nil
		}
	}
	return scanValue(line, i, 0)
}
