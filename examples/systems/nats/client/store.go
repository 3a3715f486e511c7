package main

// Operations on the bucket and what their outcomes mean:
//
//	read   kv.Get: ok with the JSON-decoded value, ok null when the key was never written;
//	       any error is fail (a read changes nothing)
//	write  kv.Put: ok when JetStream acknowledged the message
//	cas    kv.Get, compare the value, then kv.Update(key, new, revision): ok when acknowledged,
//	       fail when the value differed or the server answered "wrong last sequence"
//
// A write or cas is fail only when it certainly had no effect: the message never left this client
// (not connected: publishes are never buffered), nobody received it (no responders), or the stream
// leader refused it for a wrong last sequence. A timeout, a lost connection or any other JetStream
// error is info.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

type store struct {
	nc   *nats.Conn
	js   jetstream.JetStream
	opts options
	kv   jetstream.KeyValue
}

func ok(value any) reply              { return reply{Type: "ok", Value: value} }
func fail(err string) reply           { return reply{Type: "fail", Error: err} }
func info(err error) reply            { return reply{Type: "info", Error: describe(err)} }
func failErr(err error) reply         { return fail(describe(err)) }
func describe(err error) string       { return strings.TrimPrefix(err.Error(), "nats: ") }
func encode(v json.RawMessage) []byte { return []byte(v) }

func (s *store) invoke(ctx context.Context, req request) reply {
	if !s.connected(ctx) {
		return fail("not connected to " + s.opts.server) // nothing was sent
	}
	kv, err := s.bucket(ctx, true)
	if err != nil {
		return fail("bucket: " + describe(err)) // nothing was sent to the bucket
	}
	switch req.F {
	case "read":
		return s.read(ctx, kv, req.Key)
	case "write":
		if _, err := kv.Put(ctx, req.Key, encode(req.Value)); err != nil {
			return writeError(err)
		}
		return ok(req.Value)
	case "cas":
		return s.cas(ctx, kv, req)
	}
	return fail(fmt.Sprintf("unknown operation %q", req.F))
}

// connected waits (until ctx ends) for the connection, which is made in the background.
func (s *store) connected(ctx context.Context) bool {
	for !s.nc.IsConnected() {
		select {
		case <-ctx.Done():
			return false
		case <-time.After(5 * time.Millisecond):
		}
	}
	return true
}

func (s *store) read(ctx context.Context, kv jetstream.KeyValue, key string) reply {
	value, _, err := get(ctx, kv, key)
	if err != nil {
		return failErr(err)
	}
	return ok(value)
}

// get returns the key's value (nil when missing) and its revision (0 when missing).
func get(ctx context.Context, kv jetstream.KeyValue, key string) (any, uint64, error) {
	entry, err := kv.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, err
	}
	var value any
	if err := json.Unmarshal(entry.Value(), &value); err != nil {
		return nil, 0, fmt.Errorf("stored value %q is not JSON: %w", entry.Value(), err)
	}
	return value, entry.Revision(), nil
}

func (s *store) cas(ctx context.Context, kv jetstream.KeyValue, req request) reply {
	var pair [2]json.RawMessage
	if err := json.Unmarshal(req.Value, &pair); err != nil {
		return fail("cas value must be [expected, new]")
	}
	current, revision, err := get(ctx, kv, req.Key)
	if err != nil {
		return failErr(err) // nothing written yet
	}
	var expected any
	if err := json.Unmarshal(pair[0], &expected); err != nil || revision == 0 || !equal(current, expected) {
		return fail("cas-mismatch")
	}
	if _, err := kv.Update(ctx, req.Key, encode(pair[1]), revision); err != nil {
		if errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			return fail("cas-mismatch: revision moved")
		}
		return writeError(err)
	}
	return ok(req.Value)
}

func equal(a, b any) bool {
	ja, errA := json.Marshal(a)
	jb, errB := json.Marshal(b)
	return errA == nil && errB == nil && string(ja) == string(jb)
}

// writeError maps a failed publish to fail (certainly not stored) or info (unknown).
func writeError(err error) reply {
	switch {
	case errors.Is(err, nats.ErrReconnectBufExceeded), errors.Is(err, nats.ErrConnectionReconnecting),
		errors.Is(err, nats.ErrConnectionClosed), errors.Is(err, nats.ErrInvalidConnection):
		return fail("not sent: " + describe(err))
	case errors.Is(err, jetstream.ErrNoStreamResponse), errors.Is(err, nats.ErrNoResponders):
		return fail("no responders: " + describe(err))
	}
	return info(err)
}

func streamName(bucket string) string { return "KV_" + bucket }

// bucket binds the key-value bucket, creating it on first use. With check, a bucket whose
// allow_direct differs from --direct is an error: gets would not take the path asked for (and
// nats-server 2.9 applies a changed allow_direct only at the stream's next leader election).
func (s *store) bucket(ctx context.Context, check bool) (jetstream.KeyValue, error) {
	if s.kv != nil {
		return s.kv, nil
	}
	kv, err := s.js.KeyValue(ctx, s.opts.bucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		kv, err = s.create(ctx)
	}
	if err != nil {
		return nil, err
	}
	if check {
		stream, err := s.js.Stream(ctx, streamName(s.opts.bucket))
		if err != nil {
			return nil, err
		}
		if direct := stream.CachedInfo().Config.AllowDirect; direct != s.opts.direct {
			return nil, fmt.Errorf("bucket %s has allow_direct=%v, this client was started with --direct=%v",
				s.opts.bucket, direct, s.opts.direct)
		}
	}
	s.kv = kv
	return kv, nil
}

func (s *store) create(ctx context.Context) (jetstream.KeyValue, error) {
	if s.opts.direct { // exactly what an application gets from nats.go: allow_direct is on
		return s.js.CreateKeyValue(ctx, jetstream.KeyValueConfig{
			Bucket: s.opts.bucket, Replicas: s.opts.replicas, Storage: jetstream.FileStorage})
	}
	// The stream nats.go would create, but without allow_direct: every get goes to the stream leader.
	_, err := s.js.CreateStream(ctx, jetstream.StreamConfig{
		Name:              streamName(s.opts.bucket),
		Subjects:          []string{"$KV." + s.opts.bucket + ".>"},
		MaxMsgsPerSubject: 1,
		MaxBytes:          -1,
		MaxMsgSize:        -1,
		MaxMsgs:           -1,
		MaxConsumers:      -1,
		Storage:           jetstream.FileStorage,
		Replicas:          s.opts.replicas,
		AllowRollup:       true,
		DenyDelete:        true,
		Duplicates:        2 * time.Minute,
		Discard:           jetstream.DiscardNew,
		AllowDirect:       false,
	})
	if err != nil && !errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
		return nil, err
	}
	return s.js.KeyValue(ctx, s.opts.bucket)
}
