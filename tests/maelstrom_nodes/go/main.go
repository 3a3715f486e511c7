// A Maelstrom node in Go, standard library only: echo, unique-ids and broadcast
// (jepsen-io/maelstrom doc/protocol.md and doc/workloads.md). It was written against
// Maelstrom's documented protocol, not against faultbed: JSON messages one per line on
// stdin/stdout, logs on stderr.
//
// Unique ids are "<node>-<start time in ns>-<sequence>": a node that restarts has lost its
// sequence, but not the clock. Broadcast gossips every value to every other node until that
// node confirms it; each start is a new incarnation, so a restarted peer is refilled. It
// acknowledges a broadcast at once (unlike tests/maelstrom_nodes/broadcast.py, which waits for a
// majority): valid under partitions, but a kill right after the acknowledgement can lose a value.
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"math/rand"
	"os"
	"sort"
	"sync"
	"time"
)

type message struct {
	Src  string          `json:"src"`
	Dest string          `json:"dest"`
	Body json.RawMessage `json:"body"`
}

type body map[string]any

type node struct {
	mu          sync.Mutex
	out         *json.Encoder
	id          string
	ids         []string
	started     int64
	sequence    int64
	incarnation string
	values      map[float64]bool
	confirmed   map[string]map[float64]bool
	peerIncarn  map[string]string
}

func (n *node) send(dest string, b body) {
	if err := n.out.Encode(map[string]any{"src": n.id, "dest": dest, "body": b}); err != nil {
		fmt.Fprintf(os.Stderr, "%s: write: %v\n", n.id, err)
		os.Exit(1)
	}
}

func (n *node) reply(m message, req body, b body) {
	b["in_reply_to"] = req["msg_id"]
	n.send(m.Src, b)
}

func (n *node) peers() []string {
	var peers []string
	for _, id := range n.ids {
		if id != n.id {
			peers = append(peers, id)
		}
	}
	return peers
}

func numbers(raw any) []float64 {
	list, _ := raw.([]any)
	var values []float64
	for _, v := range list {
		if f, ok := v.(float64); ok {
			values = append(values, f)
		}
	}
	return values
}

func (n *node) learnIncarnation(peer string, incarnation any) {
	s, _ := incarnation.(string)
	if n.peerIncarn[peer] != s {
		n.peerIncarn[peer] = s
		n.confirmed[peer] = map[float64]bool{}
	}
}

func (n *node) sorted() []float64 {
	values := make([]float64, 0, len(n.values))
	for v := range n.values {
		values = append(values, v)
	}
	sort.Float64s(values)
	return values
}

func (n *node) handle(m message) {
	var req body
	if err := json.Unmarshal(m.Body, &req); err != nil {
		fmt.Fprintf(os.Stderr, "%s: bad body %s\n", n.id, m.Body)
		return
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	switch req["type"] {
	case "init":
		n.id, _ = req["node_id"].(string)
		n.ids = nil
		for _, id := range req["node_ids"].([]any) {
			n.ids = append(n.ids, id.(string))
		}
		n.reply(m, req, body{"type": "init_ok"})
		fmt.Fprintf(os.Stderr, "%s: initialised, cluster %v\n", n.id, n.ids)
		go n.gossipLoop()
	case "echo":
		n.reply(m, req, body{"type": "echo_ok", "echo": req["echo"]})
	case "generate":
		n.sequence++
		n.reply(m, req, body{"type": "generate_ok", "id": fmt.Sprintf("%s-%d-%d", n.id, n.started, n.sequence)})
	case "topology":
		n.reply(m, req, body{"type": "topology_ok"})
	case "broadcast":
		if v, ok := req["message"].(float64); ok {
			n.values[v] = true
			n.reply(m, req, body{"type": "broadcast_ok"})
		} else {
			n.reply(m, req, body{"type": "error", "code": 12, "text": "message must be a number"})
		}
	case "read":
		n.reply(m, req, body{"type": "read_ok", "messages": n.sorted()})
	case "gossip":
		values := numbers(req["messages"])
		for _, v := range values {
			n.values[v] = true
		}
		n.learnIncarnation(m.Src, req["incarnation"])
		n.send(m.Src, body{"type": "gossip_ok", "messages": values, "incarnation": n.incarnation})
	case "gossip_ok":
		n.learnIncarnation(m.Src, req["incarnation"])
		for _, v := range numbers(req["messages"]) {
			n.confirmed[m.Src][v] = true
		}
	default:
		if _, isReply := req["in_reply_to"]; !isReply {
			n.reply(m, req, body{"type": "error", "code": 10, "text": fmt.Sprintf("unknown type %v", req["type"])})
		}
	}
}

func (n *node) gossipLoop() {
	for tick := 1; ; tick++ {
		time.Sleep(time.Duration(150+rand.Intn(50)) * time.Millisecond)
		n.mu.Lock()
		for _, peer := range n.peers() {
			if n.confirmed[peer] == nil {
				n.confirmed[peer] = map[float64]bool{}
			}
			pending := []float64{}
			for v := range n.values {
				if !n.confirmed[peer][v] && len(pending) < 1000 {
					pending = append(pending, v)
				}
			}
			if len(pending) > 0 || tick%6 == 0 {
				n.send(peer, body{"type": "gossip", "messages": pending, "incarnation": n.incarnation})
			}
		}
		n.mu.Unlock()
	}
}

func main() {
	now := time.Now().UnixNano()
	n := &node{
		out: json.NewEncoder(os.Stdout), started: now, incarnation: fmt.Sprintf("%x", now),
		values: map[float64]bool{}, confirmed: map[string]map[float64]bool{}, peerIncarn: map[string]string{},
	}
	scanner := bufio.NewScanner(os.Stdin)
	scanner.Buffer(make([]byte, 1<<20), 64<<20)
	for scanner.Scan() {
		var m message
		if err := json.Unmarshal(scanner.Bytes(), &m); err != nil {
			fmt.Fprintf(os.Stderr, "not JSON: %.200s\n", scanner.Text())
			continue
		}
		n.handle(m)
	}
}
