// Command client is faultbed's `process` client for the NATS JetStream key-value store.
//
// One process per faultbed worker. It connects to one NATS server (--server host:port) and never
// follows the cluster's advertised servers, reads one JSON request per line on stdin
// ({"f": "read"|"write"|"cas", "key": "k1", "value": ...}) and writes one JSON reply per line on
// stdout ({"type": "ok"|"fail"|"info", "value": ..., "error": "..."}).
//
// With --leader it prints the name of the server leading the bucket's stream and exits (faultbed's
// `[leader] command`), creating the bucket first when it is missing; exit 1 when no leader is known.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// maxReplicas is JetStream's largest replication factor.
const maxReplicas = 5

type options struct {
	server   string
	node     string
	bucket   string
	replicas int
	direct   bool
	timeout  time.Duration
	leader   bool
}

func parseOptions() options {
	var o options
	var nodes string
	flag.StringVar(&o.server, "server", "127.0.0.1:4222", "host:port of the NATS server's client port")
	flag.StringVar(&o.node, "node", "", "the server's node name (for log lines only)")
	flag.StringVar(&o.bucket, "bucket", "faultbed", "key-value bucket name")
	flag.StringVar(&nodes, "nodes", "", "comma list of the cluster's nodes: replicas = min(count, 5)")
	flag.IntVar(&o.replicas, "replicas", 0, "bucket replicas (overrides --nodes)")
	flag.BoolVar(&o.direct, "direct", false,
		"allow_direct on the bucket, as nats.go creates buckets by default: any current replica answers gets")
	flag.DurationVar(&o.timeout, "timeout", 900*time.Millisecond, "per-operation deadline unless the request says")
	flag.BoolVar(&o.leader, "leader", false, "print the bucket stream's leader and exit")
	flag.Parse()
	if o.replicas <= 0 {
		o.replicas = 1
		if nodes != "" {
			o.replicas = min(len(strings.Split(nodes, ",")), maxReplicas)
		}
	}
	return o
}

func connect(o options) (*nats.Conn, error) {
	return nats.Connect("nats://"+o.server,
		nats.Name("faultbed-"+o.node),
		nats.DontRandomize(),
		nats.IgnoreDiscoveredServers(), // a worker talks to its own node only, as faultbed expects
		nats.RetryOnFailedConnect(true),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(100*time.Millisecond),
		nats.ReconnectBufSize(-1), // never buffer a publish while disconnected: it fails, never sent
		nats.Timeout(o.timeout),
		nats.PingInterval(time.Second),
		nats.MaxPingsOutstanding(2),
	)
}

func main() {
	log.SetFlags(log.Ltime | log.Lmicroseconds)
	log.SetPrefix("nats-client ")
	o := parseOptions()
	nc, err := connect(o)
	if err != nil {
		log.Fatalf("connect %s: %v", o.server, err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		log.Fatalf("jetstream: %v", err)
	}
	if o.leader {
		os.Exit(printLeader(nc, js, o))
	}
	serve(&store{nc: nc, js: js, opts: o}, os.Stdin, os.Stdout)
}

// printLeader prints the name of the server leading the bucket's stream; it creates the bucket when
// missing (so that the cluster is ready once the bucket has a leader). Exit 1: no leader known.
func printLeader(nc *nats.Conn, js jetstream.JetStream, o options) int {
	ctx, cancel := context.WithTimeout(context.Background(), o.timeout)
	defer cancel()
	s := &store{nc: nc, js: js, opts: o}
	if !s.connected(ctx) {
		log.Printf("leader: not connected to %s", o.server)
		return 1
	}
	if _, err := s.bucket(ctx, false); err != nil {
		log.Printf("leader: bucket: %v", err)
		return 1
	}
	stream, err := js.Stream(ctx, streamName(o.bucket))
	if err != nil {
		log.Printf("leader: %v", err)
		return 1
	}
	info := stream.CachedInfo()
	if info.Cluster == nil || info.Cluster.Leader == "" {
		return 1
	}
	fmt.Println(info.Cluster.Leader)
	return 0
}

type request struct {
	ID      json.RawMessage `json:"id"`
	F       string          `json:"f"`
	Key     string          `json:"key"`
	Value   json.RawMessage `json:"value"`
	Timeout float64         `json:"timeout"`
}

type reply struct {
	ID    json.RawMessage `json:"id,omitempty"`
	Type  string          `json:"type"`
	Value any             `json:"value"`
	Error string          `json:"error,omitempty"`
}

func serve(s *store, in io.Reader, out io.Writer) {
	scanner := bufio.NewScanner(in)
	scanner.Buffer(make([]byte, 64*1024), 1024*1024)
	encoder := json.NewEncoder(out) // one line per reply; stdout is unbuffered
	for scanner.Scan() {
		var req request
		var rep reply
		if err := json.Unmarshal(scanner.Bytes(), &req); err != nil {
			rep = reply{Type: "fail", Error: "bad request: " + err.Error()}
		} else {
			timeout := s.opts.timeout
			if req.Timeout > 0 {
				timeout = time.Duration(req.Timeout * 0.9 * float64(time.Second))
			}
			ctx, cancel := context.WithTimeout(context.Background(), timeout)
			rep = s.invoke(ctx, req)
			rep.ID = req.ID
			cancel()
		}
		if err := encoder.Encode(rep); err != nil {
			log.Fatalf("stdout: %v", err)
		}
	}
}
