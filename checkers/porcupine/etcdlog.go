package main

// porcupine's Jepsen etcd logs read here, as checkers/formats.py
// (import_porcupine_etcd, rows_from_entries with a failed cas that ran) reads
// them: `INFO  jepsen.util - 3<TAB>:ok<TAB>:cas<TAB>[1 4]`. Anything this reader
// is not sure about (other characters, an unknown value, a pairing error) gives
// the file back to Python, which names the problem.

import (
	"bytes"
	"os"
	"strconv"
)

// etcdEntry is a log line's invocation, waiting for its completion.
type etcdEntry struct {
	call  int64
	f     string
	input string
}

func readEtcdLog(path string) (raw []rawOp, latest int64, err error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, 0, fallback("cannot read: %v", err)
	}
	open := map[string]etcdEntry{}
	var order []string // open processes in the order they invoked, as Python's dict keeps them
	var time int64
	for number, line := 1, data; len(line) > 0 || number == 1; number++ {
		end := bytes.IndexByte(line, '\n')
		rest := []byte(nil)
		if end >= 0 {
			line, rest = line[:end], line[end+1:]
		}
		line = bytes.TrimSuffix(line, []byte{'\r'})
		if !isBlank(line) {
			process, typ, f, value, ok := etcdFields(line)
			if !ok {
				return nil, 0, fallback("line %d is not a plain Jepsen etcd log line", number)
			}
			entry, known := open[process]
			switch {
			case typ == "invoke" && known:
				return nil, 0, fallback("line %d: process %s invokes while open", number, process)
			case typ == "invoke":
				open[process] = etcdEntry{call: time, f: f, input: value}
				order = append(order, process)
			case !known:
				return nil, 0, fallback("line %d: completion with no open invocation", number)
			default:
				delete(open, process)
				row := rawOp{process: process, call: entry.call, ret: time, known: true, f: entry.f, key: "null",
					input: entry.input, output: value}
				isRead := entry.f == "read" || entry.f == "get"
				switch {
				case typ == "ok" && entry.f == "cas":
					row.output = "true"
				case typ == "ok":
				case typ == "info" && isRead: // constrains nothing
					row.known = false
				case typ == "info":
					row.ret, row.known, row.output = 0, false, "null"
				case typ == "fail" && entry.f == "cas": // porcupine's etcd: it ran and found another value
					row.output = "false"
				case typ == "fail":
					row.known = false
				default:
					return nil, 0, fallback("line %d: type %s", number, typ)
				}
				if row.known || (typ == "info" && !isRead) {
					raw = append(raw, row)
					latest = max(latest, row.call, row.ret)
				}
			}
			time++
		}
		if end < 0 {
			break
		}
		line = rest
	}
	for _, process := range order {
		if entry, still := open[process]; still && entry.f != "read" && entry.f != "get" {
			raw = append(raw, rawOp{process: process, call: entry.call, f: entry.f, key: "null", input: entry.input,
				output: "null"})
			latest = max(latest, entry.call)
			delete(open, process) // a process invokes once at a time: its last invocation is the open one
		}
	}
	return raw, latest, nil
}

// etcdFields splits `INFO<ws>jepsen.util<ws>-<ws>PROCESS<ws>:TYPE<ws>:F<ws>VALUE`; the value
// comes back as canonical JSON (nil and :keywords are null). Only ASCII spaces and tabs.
func etcdFields(line []byte) (process, typ, f, value string, ok bool) {
	if len(line) == 0 || line[0] != 'I' { // Python's pattern matches from the first character
		return "", "", "", "", false
	}
	for _, c := range line {
		if c >= 0x7f || (c < ' ' && c != '\t') {
			return "", "", "", "", false // Python's \s, \d and \w know more than ASCII
		}
	}
	fields := bytes.FieldsFunc(line, func(r rune) bool { return r == ' ' || r == '\t' })
	if len(fields) < 7 || string(fields[0]) != "INFO" || string(fields[1]) != "jepsen.util" || string(fields[2]) != "-" {
		return "", "", "", "", false
	}
	number, ok := etcdInteger(fields[3], false)
	if !ok || len(fields[4]) < 2 || fields[4][0] != ':' || len(fields[5]) < 2 || fields[5][0] != ':' {
		return "", "", "", "", false
	}
	typ, f = string(fields[4][1:]), string(fields[5][1:])
	if !isWord(typ, false) || !isWord(f, true) {
		return "", "", "", "", false
	}
	value, ok = etcdValue(fields[6:])
	return number, typ, f, value, ok
}

func isWord(s string, dash bool) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c == '_' || (c >= '0' && c <= '9') || (c|0x20 >= 'a' && c|0x20 <= 'z') || (dash && c == '-')) {
			return false
		}
	}
	return true
}

// etcdInteger is the canonical text of a decimal integer (Python's int(), then JSON).
func etcdInteger(text []byte, signed bool) (string, bool) {
	digits := text
	if signed && len(digits) > 0 && digits[0] == '-' {
		digits = digits[1:]
	}
	if len(digits) == 0 || len(digits) > 18 { // longer ones: Python's big integers
		return "", false
	}
	for _, c := range digits {
		if c < '0' || c > '9' {
			return "", false
		}
	}
	n, err := strconv.ParseInt(string(text), 10, 64)
	return strconv.FormatInt(n, 10), err == nil
}

// etcdValue reads nil, :keyword, an integer or [A B].
func etcdValue(fields [][]byte) (string, bool) {
	if len(fields) == 1 {
		text := fields[0]
		if string(text) == "nil" || text[0] == ':' {
			return "null", true
		}
		if text[0] != '[' {
			return etcdInteger(text, true)
		}
	}
	joined := bytes.Join(fields, []byte{' '})
	if len(joined) < 2 || joined[0] != '[' || joined[len(joined)-1] != ']' {
		return "", false
	}
	pair := bytes.Fields(joined[1 : len(joined)-1])
	if len(pair) != 2 {
		return "", false
	}
	from, ok1 := etcdInteger(pair[0], true)
	to, ok2 := etcdInteger(pair[1], true)
	return "[" + from + "," + to + "]", ok1 && ok2
}
