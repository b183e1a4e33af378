package kafka

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/auditrelay/auditrelay/internal/event"
	"github.com/auditrelay/auditrelay/internal/park"
	"github.com/auditrelay/auditrelay/internal/units"
)

const testTopic = "identity-audit"

// events returns n PingOne-like events of source src, ids prefix-0000….
func events(src, prefix string, n int) []event.Raw {
	out := make([]event.Raw, n)
	t0 := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	for i := range out {
		id := fmt.Sprintf("%s-%05d", prefix, i)
		out[i] = event.Raw{Source: src, Provider: "pingone", Tenant: "env-" + fmt.Sprint(i%3), ID: id,
			Time: t0.Add(time.Duration(i) * time.Second),
			Data: json.RawMessage(`{"id":"` + id + `","action":{"type":"USER.UPDATED"},"result":{"status":"SUCCESS","description":"Updated user jane.doe@example.com in population Default"}}`)}
	}
	return out
}

// newCluster starts a kfake cluster of brokers brokers with testTopic
// seeded (3 partitions), closed when the test ends.
func newCluster(t testing.TB, brokers int, opts ...kfake.Opt) *kfake.Cluster {
	t.Helper()
	c, err := kfake.NewCluster(append([]kfake.Opt{kfake.NumBrokers(brokers), kfake.SeedTopics(3, testTopic)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// syncBuffer is a bytes.Buffer safe for the client's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type harness struct {
	sink *Sink
	park *park.File
	logs *syncBuffer
	cfg  Config
}

// newSink returns a sink on c's brokers (plain TCP, loopback), with the
// given changes to its config, closed when the test ends.
func newSink(t testing.TB, addrs []string, mod func(*Config), extra ...kgo.Opt) *harness {
	t.Helper()
	off := false
	cfg := Config{Brokers: addrs, Topic: testTopic, TLS: TLS{Enabled: &off},
		RequestTimeout: units.Duration(5 * time.Second), DeliveryTimeout: units.Duration(20 * time.Second)}
	if mod != nil {
		mod(&cfg)
	}
	cfg.SetDefaults()
	h := &harness{logs: &syncBuffer{}, park: park.New(filepath.Join(t.TempDir(), "parked.ndjson"))}
	s, err := New(cfg, Options{Park: h.park, ClientOpts: extra,
		Logger: slog.New(slog.NewTextHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		t.Fatal(err)
	}
	h.sink, h.cfg = s, cfg
	t.Cleanup(func() { s.Close(context.Background()) })
	return h
}

// consume reads records from topics until want have come or 20s passed.
func consume(t testing.TB, addrs []string, want int, topics ...string) []*kgo.Record {
	t.Helper()
	return consumeWith(t, addrs, want, topics)
}

func consumeWith(t testing.TB, addrs []string, want int, topics []string, opts ...kgo.Opt) []*kgo.Record {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(addrs...), kgo.ConsumeTopics(topics...),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(200 * time.Millisecond)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var out []*kgo.Record
	for len(out) < want && ctx.Err() == nil {
		fs := cl.PollFetches(ctx)
		fs.EachError(func(topic string, p int32, err error) {
			if ctx.Err() == nil {
				t.Logf("fetch %s/%d: %v", topic, p, err)
			}
		})
		out = append(out, fs.Records()...)
	}
	// anything more than want would be a duplicate: read a little longer
	more, cancel2 := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel2()
	out = append(out, cl.PollFetches(more).Records()...)
	return out
}

// header returns a record's header value.
func header(r *kgo.Record, key string) string {
	for _, h := range r.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}

// countIDs counts records by their auditrelay-id header.
func countIDs(recs []*kgo.Record) map[string]int {
	m := map[string]int{}
	for _, r := range recs {
		m[header(r, HeaderID)]++
	}
	return m
}

// exactlyOnce reports events of batch missing or repeated in recs.
func exactlyOnce(t testing.TB, batch []event.Raw, recs []*kgo.Record) {
	t.Helper()
	ids := countIDs(recs)
	missing, dups := 0, 0
	for _, ev := range batch {
		switch n := ids[ev.ID]; {
		case n == 0:
			missing++
		case n > 1:
			dups += n - 1
		}
	}
	if missing > 0 || dups > 0 || len(recs) != len(batch) {
		t.Errorf("%d events: %d records, %d missing, %d repeats", len(batch), len(recs), missing, dups)
	}
}

// fmtSscanPort reads the port of host:port.
func fmtSscanPort(addr string, p *int) (int, error) {
	i := strings.LastIndexByte(addr, ':')
	return fmt.Sscan(addr[i+1:], p)
}

// kgoRecord is a consumed record.
type kgoRecord = kgo.Record

// consumeSASL is consume as a SCRAM-SHA-256/512 or PLAIN user: it tries
// each mechanism the cluster may have the user under.
func consumeSASL(t testing.TB, addrs []string, want int, user, pass string, topics ...string) []*kgo.Record {
	t.Helper()
	mechs := []sasl.Mechanism{scram.Auth{User: user, Pass: pass}.AsSha256Mechanism(), scram.Auth{User: user, Pass: pass}.AsSha512Mechanism(), plain.Auth{User: user, Pass: pass}.AsMechanism()}
	for _, m := range mechs {
		cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.SASL(m))
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		err = cl.Ping(ctx)
		cancel()
		cl.Close()
		if err == nil {
			return consumeWith(t, addrs, want, topics, kgo.SASL(m))
		}
	}
	t.Fatalf("no mechanism admits %s", user)
	return nil
}

// settled reports whether every record in flight has its outcome.
func (s *Sink) settled() bool {
	s.pmu.Lock()
	defer s.pmu.Unlock()
	for _, sl := range s.inflight {
		if !sl.done {
			return false
		}
	}
	return true
}
