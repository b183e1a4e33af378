package kafka

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/auditrelay/auditrelay/internal/delivery"
	"github.com/auditrelay/auditrelay/internal/event"
	"github.com/auditrelay/auditrelay/internal/park"
)

// TestSendDelivers: a batch reaches the topic once, each record with the
// file sink's line as its value, the id as its key and the four headers.
func TestSendDelivers(t *testing.T) {
	c := newCluster(t, 3)
	h := newSink(t, c.ListenAddrs(), nil)
	batch := events("pingone-eu", "ev", 700)
	if err := h.sink.Send(context.Background(), batch); err != nil {
		t.Fatal(err)
	}
	recs := consume(t, c.ListenAddrs(), len(batch), testTopic)
	exactlyOnce(t, batch, recs)
	byID := map[string]*event.Raw{}
	for i := range batch {
		byID[batch[i].ID] = &batch[i]
	}
	for _, r := range recs {
		ev := byID[string(r.Key)]
		if ev == nil {
			t.Fatalf("record key %q is no event id", r.Key)
		}
		line, _ := event.AppendLine(nil, ev)
		if diff := cmp.Diff(strings.TrimSuffix(string(line), "\n"), string(r.Value)); diff != "" {
			t.Fatalf("value (-want +got):\n%s", diff)
		}
		got := map[string]string{}
		for _, hd := range r.Headers {
			got[hd.Key] = string(hd.Value)
		}
		want := map[string]string{HeaderID: ev.ID, HeaderSource: ev.Source, HeaderProvider: ev.Provider, HeaderTenant: ev.Tenant}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Fatalf("headers (-want +got):\n%s", diff)
		}
		if r.Topic != testTopic {
			t.Fatalf("topic %q", r.Topic)
		}
	}
	if st := h.sink.Stats(); st.Sent != int64(len(batch)) || st.Parked != 0 || st.Errors != 0 {
		t.Errorf("stats %+v", st)
	}
	// the next batch is new: nothing of the last one is skipped
	next := events("pingone-eu", "nx", 10)
	if err := h.sink.Send(context.Background(), next); err != nil {
		t.Fatal(err)
	}
	if got := h.sink.Stats().Sent; got != int64(len(batch)+len(next)) {
		t.Errorf("sent %d", got)
	}
}

// TestSendAfterClose: a closed sink connects again on its next Send, as a
// replica does when it takes the sink back.
func TestSendAfterClose(t *testing.T) {
	c := newCluster(t, 1)
	h := newSink(t, c.ListenAddrs(), nil)
	first, second := events("pingone-eu", "a", 5), events("pingone-eu", "b", 5)
	if err := h.sink.Send(context.Background(), first); err != nil {
		t.Fatal(err)
	}
	if err := h.sink.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := h.sink.Send(context.Background(), second); err != nil {
		t.Fatalf("Send after Close: %v", err)
	}
	exactlyOnce(t, append(first, second...), consume(t, c.ListenAddrs(), 10, testTopic))
}

// TestNormalizedFormats: formats ocsf and ecs write the normalized event
// as the record value, with the same headers.
func TestNormalizedFormats(t *testing.T) {
	for _, tc := range []struct{ format, field string }{{FormatOCSF, `"class_uid":`}, {FormatECS, `"ecs":{"version":`}} {
		c := newCluster(t, 1)
		h := newSink(t, c.ListenAddrs(), func(cfg *Config) { cfg.Format = tc.format })
		batch := events("pingone-eu", tc.format, 3)
		if err := h.sink.Send(context.Background(), batch); err != nil {
			t.Fatal(err)
		}
		recs := consume(t, c.ListenAddrs(), len(batch), testTopic)
		exactlyOnce(t, batch, recs)
		for _, r := range recs {
			if !json.Valid(r.Value) || !strings.Contains(string(r.Value), tc.field) || strings.Contains(string(r.Value), `"raw":{`) {
				t.Errorf("%s: record value %s", tc.format, r.Value)
			}
		}
	}
}

// TestKeys: the key setting picks what the record key holds.
func TestKeys(t *testing.T) {
	c := newCluster(t, 1, kfake.SeedTopics(3, "keys-id", "keys-tenant", "keys-source"))
	for _, k := range []string{KeyID, KeyTenant, KeySource} {
		t.Run(k, func(t *testing.T) {
			topic := "keys-" + k
			h := newSink(t, c.ListenAddrs(), func(cfg *Config) { cfg.Key, cfg.Topic = k, topic })
			batch := events("okta-prod", k, 20)
			if err := h.sink.Send(context.Background(), batch); err != nil {
				t.Fatal(err)
			}
			for _, r := range consume(t, c.ListenAddrs(), len(batch), topic) {
				want := map[string]string{KeyID: header(r, HeaderID), KeyTenant: header(r, HeaderTenant), KeySource: header(r, HeaderSource)}[k]
				if string(r.Key) != want || want == "" {
					t.Fatalf("key %q, want %q", r.Key, want)
				}
			}
		})
	}
}

// TestTopicTemplate: each event goes to the topic its provider and source
// name, with characters Kafka refuses replaced.
func TestTopicTemplate(t *testing.T) {
	c := newCluster(t, 2, kfake.SeedTopics(1, "audit.pingone.pingone-eu", "audit.entra_sign_ins.entra-contoso_sign_ins"))
	h := newSink(t, c.ListenAddrs(), func(cfg *Config) { cfg.Topic = "audit.{provider}.{source}" })
	batch := events("pingone-eu", "p", 30)
	for i, ev := range events("entra-contoso/sign_ins", "e", 20) {
		ev.Provider = "entra_sign_ins"
		batch = append(batch, ev)
		_ = i
	}
	if err := h.sink.Send(context.Background(), batch); err != nil {
		t.Fatal(err)
	}
	recs := consume(t, c.ListenAddrs(), len(batch), "audit.pingone.pingone-eu", "audit.entra_sign_ins.entra-contoso_sign_ins")
	exactlyOnce(t, batch, recs)
	for _, r := range recs {
		want := "audit.pingone.pingone-eu"
		if strings.HasPrefix(header(r, HeaderID), "e-") {
			want = "audit.entra_sign_ins.entra-contoso_sign_ins"
		}
		if r.Topic != want {
			t.Fatalf("%s went to %s, want %s", header(r, HeaderID), r.Topic, want)
		}
	}
}

// TestCompression: every codec reaches the broker as that codec.
func TestCompression(t *testing.T) {
	c := newCluster(t, 1, kfake.SeedTopics(1, "z-none", "z-gzip", "z-snappy", "z-lz4", "z-zstd"))
	codes := map[string]uint8{CompressionNone: 0, CompressionGzip: 1, CompressionSnappy: 2, CompressionLZ4: 3, CompressionZstd: 4}
	for name, code := range codes {
		t.Run(name, func(t *testing.T) {
			topic := "z-" + name
			h := newSink(t, c.ListenAddrs(), func(cfg *Config) { cfg.Compression, cfg.Topic = name, topic })
			batch := events("pingone-eu", name, 200)
			if err := h.sink.Send(context.Background(), batch); err != nil {
				t.Fatal(err)
			}
			recs := consume(t, c.ListenAddrs(), len(batch), topic)
			exactlyOnce(t, batch, recs)
			for _, r := range recs {
				if got := r.Attrs.CompressionType(); got != code {
					t.Fatalf("compression %d, want %d (%s)", got, code, name)
				}
			}
		})
	}
}

// TestLeaderChangeMidBatch: every partition's leader moves while the
// first produce request of a batch is being answered. The producer
// follows the new leaders; each record is written once.
func TestLeaderChangeMidBatch(t *testing.T) {
	c := newCluster(t, 3)
	var moved atomic.Bool
	c.ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
		if moved.Swap(true) {
			return nil, nil, false
		}
		c.SleepControl(func() {
			for p := range int32(3) {
				to := (c.LeaderFor(testTopic, p) + 1) % 3
				if err := c.MoveTopicPartition(testTopic, p, to); err != nil {
					t.Error(err)
				}
			}
		})
		return nil, nil, false // answered by the old leader: NOT_LEADER_FOR_PARTITION
	})
	before := leaders(c)
	h := newSink(t, c.ListenAddrs(), nil)
	batch := events("pingone-eu", "lc", 3000)
	if err := h.sink.Send(context.Background(), batch); err != nil {
		t.Fatal(err)
	}
	if !moved.Load() {
		t.Fatal("no produce request was seen")
	}
	if after := leaders(c); cmp.Equal(before, after) {
		t.Fatalf("leaders did not move: %v", after)
	}
	exactlyOnce(t, batch, consume(t, c.ListenAddrs(), len(batch), testTopic))
}

func leaders(c *kfake.Cluster) []int32 {
	var out []int32
	for p := range int32(3) {
		out = append(out, c.LeaderFor(testTopic, p))
	}
	return out
}

// TestBrokerOutageMidBatch: the cluster goes down while a batch is in
// flight. The send reports a transient failure after delivery_timeout;
// the cluster comes back on the same ports with its data, and the retried
// send delivers the batch: nothing is lost, and what was in flight is
// waited for, not produced twice.
func TestBrokerOutageMidBatch(t *testing.T) {
	t.Run("retried at once", func(t *testing.T) { outage(t, false) })
	t.Run("retried after the records in flight are done", func(t *testing.T) { outage(t, true) })
}

func outage(t *testing.T, wait bool) {
	dir := t.TempDir()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, testTopic), kfake.DataDir(dir), kfake.SyncWrites())
	if err != nil {
		t.Fatal(err)
	}
	addrs := c.ListenAddrs()
	var ports []int
	for _, a := range addrs {
		var p int
		if _, err := fmtSscanPort(a, &p); err != nil {
			t.Fatal(err)
		}
		ports = append(ports, p)
	}
	down := make(chan struct{})
	var first atomic.Bool
	c.ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
		if first.Swap(true) {
			return nil, nil, false
		}
		close(down)
		return nil, errors.New("broker going down"), true // closes the connection, nothing written
	})
	h := newSink(t, addrs, func(cfg *Config) { cfg.DeliveryTimeout, cfg.RequestTimeout = 5e9, 1e9 })
	batch := events("pingone-eu", "out", 2000)
	go func() { <-down; c.Close() }()
	err = h.sink.Send(context.Background(), batch)
	if class, _ := delivery.ClassOf(err); err == nil || class != delivery.Transient {
		t.Fatalf("Send during the outage = %v, want a transient error", err)
	}
	t.Logf("during the outage: %v", err)
	c2, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.Ports(ports...), kfake.DataDir(dir), kfake.SyncWrites())
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	if wait {
		// the records in flight are acknowledged before the next send
		for deadline := time.Now().Add(20 * time.Second); !h.sink.settled(); time.Sleep(20 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatal("the records in flight were never acknowledged")
			}
		}
	}
	for attempt := 1; ; attempt++ {
		err := h.sink.Send(context.Background(), batch)
		if err == nil {
			break
		}
		if attempt == 5 {
			t.Fatalf("after the outage: %v", err)
		}
		t.Logf("attempt %d: %v", attempt, err)
	}
	exactlyOnce(t, batch, consume(t, c2.ListenAddrs(), len(batch), testTopic))
	if st := h.sink.Stats(); st.Sent != int64(len(batch)) || st.Retried == 0 || st.Errors == 0 {
		t.Errorf("stats %+v", st)
	}
}

// TestTooLargeParked: a record over max_record_bytes is parked before it
// is sent, one over the broker's message.max.bytes when the broker
// refuses it; the rest of the batch is delivered once.
func TestTooLargeParked(t *testing.T) {
	c := newCluster(t, 1, kfake.BrokerConfigs(map[string]string{"message.max.bytes": "20000"}))
	h := newSink(t, c.ListenAddrs(), func(cfg *Config) { cfg.Compression, cfg.MaxRecordBytes = CompressionNone, 50_000 })
	batch := events("pingone-eu", "tl", 60)
	big := func(i, n int) {
		batch[i].Data = []byte(`{"id":"` + batch[i].ID + `","blob":"` + strings.Repeat("x", n) + `"}`)
	}
	big(10, 30_000) // over the broker's limit, under ours
	big(40, 60_000) // over ours
	if err := h.sink.Send(context.Background(), batch); err != nil {
		t.Fatal(err)
	}
	var want []event.Raw
	for i, ev := range batch {
		if i != 10 && i != 40 {
			want = append(want, ev)
		}
	}
	exactlyOnce(t, want, consume(t, c.ListenAddrs(), len(want), testTopic))
	lines := parked(t, h.park)
	if len(lines) != 2 {
		t.Fatalf("parked %d events, want 2: %v", len(lines), lines)
	}
	for _, l := range lines {
		switch {
		case strings.Contains(l, `"id":"tl-00010"`) && strings.Contains(l, "MESSAGE_TOO_LARGE"):
		case strings.Contains(l, `"id":"tl-00040"`) && strings.Contains(l, "over max_record_bytes"):
		default:
			t.Errorf("parked line %.300s", l)
		}
	}
	if st := h.sink.Stats(); st.Sent != int64(len(want)) || st.Parked != 2 {
		t.Errorf("stats %+v", st)
	}
}

func parked(t *testing.T, p park.Keeper) []string {
	b, err := os.ReadFile(p.Where())
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSpace(string(b)), "\n")
}

// TestUnknownTopicHalts: a topic that does not exist stops the sink with
// the command that creates it; auditrelay never creates it.
func TestUnknownTopicHalts(t *testing.T) {
	c := newCluster(t, 1)
	h := newSink(t, c.ListenAddrs(), func(cfg *Config) { cfg.Topic, cfg.DeliveryTimeout = "missing-topic", 5e9 })
	err := h.sink.Send(context.Background(), events("pingone-eu", "u", 5))
	var de *delivery.Error
	if !errors.As(err, &de) || de.Class != delivery.Permanent || !strings.Contains(de.Fix, "create topic missing-topic") {
		t.Fatalf("Send = %v, want permanent with the fix to create the topic", err)
	}
	if !errors.Is(err, kerr.UnknownTopicOrPartition) {
		t.Errorf("the cause is lost: %v", err)
	}
	if err := h.sink.Check(context.Background()); !delivery.IsPermanent(err) || !strings.Contains(err.Error(), "create topic missing-topic") {
		t.Errorf("Check = %v", err)
	}
}

// TestGracefulStop: a send whose context ends mid-batch still finishes
// within ShutdownGrace, so the batch is acknowledged, not sent again.
func TestGracefulStop(t *testing.T) {
	c := newCluster(t, 1)
	h := newSink(t, c.ListenAddrs(), nil)
	ctx, cancel := context.WithCancel(context.Background())
	c.ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
		cancel() // the daemon is stopping while the batch is on the wire
		return nil, nil, false
	})
	batch := events("pingone-eu", "g", 100)
	if err := h.sink.Send(ctx, batch); err != nil {
		t.Fatalf("Send = %v", err)
	}
	exactlyOnce(t, batch, consume(t, c.ListenAddrs(), len(batch), testTopic))
	if err := h.sink.Send(ctx, batch); err == nil {
		t.Error("a send started after the stop was accepted")
	}
}

// TestEventTwiceInBatch: one event twice in a batch is produced once.
func TestEventTwiceInBatch(t *testing.T) {
	c := newCluster(t, 1)
	h := newSink(t, c.ListenAddrs(), nil)
	batch := events("pingone-eu", "d", 5)
	batch = append(batch, batch[2])
	if err := h.sink.Send(context.Background(), batch); err != nil {
		t.Fatal(err)
	}
	exactlyOnce(t, batch[:5], consume(t, c.ListenAddrs(), 5, testTopic))
}

// TestCheck: a reachable cluster with the topic passes.
func TestCheck(t *testing.T) {
	c := newCluster(t, 3)
	h := newSink(t, c.ListenAddrs(), nil)
	if err := h.sink.Check(context.Background()); err != nil {
		t.Fatal(err)
	}
	tmpl := newSink(t, c.ListenAddrs(), func(cfg *Config) { cfg.Topic = "audit.{provider}" })
	if err := tmpl.sink.Check(context.Background()); err != nil {
		t.Fatal(err)
	}
	down := newSink(t, []string{"127.0.0.1:1"}, func(cfg *Config) { cfg.RequestTimeout = 1e9 })
	if err := down.sink.Check(context.Background()); err == nil || delivery.IsPermanent(err) {
		t.Errorf("Check against nothing = %v, want a transient error", err)
	}
	_ = time.Second
}

// TestParkFailureRetried: when the park file cannot be written the batch
// fails as a whole, nothing of it produced; once the disk is fixed the
// retried send delivers the rest once and parks the event.
func TestParkFailureRetried(t *testing.T) {
	c := newCluster(t, 1)
	dir := t.TempDir()
	blocker := filepath.Join(dir, "parked")
	if err := os.WriteFile(blocker, nil, 0o600); err != nil { // a file where the directory should be
		t.Fatal(err)
	}
	h := newSink(t, c.ListenAddrs(), func(cfg *Config) { cfg.MaxRecordBytes = 4096 })
	h.sink.keeper = park.New(filepath.Join(blocker, "kafka.ndjson"))
	batch := events("pingone-eu", "pf", 20)
	batch[5].Data = []byte(`{"id":"pf-00005","blob":"` + strings.Repeat("y", 5000) + `"}`)
	err := h.sink.Send(context.Background(), batch)
	if class, _ := delivery.ClassOf(err); err == nil || class != delivery.Transient || !strings.Contains(err.Error(), "free disk space") {
		t.Fatalf("Send with an unwritable park file = %v", err)
	}
	if err := os.Remove(blocker); err != nil {
		t.Fatal(err)
	}
	if err := h.sink.Send(context.Background(), batch); err != nil {
		t.Fatalf("Send after the fix: %v", err)
	}
	want := append(append([]event.Raw(nil), batch[:5]...), batch[6:]...)
	exactlyOnce(t, want, consume(t, c.ListenAddrs(), len(want), testTopic))
	if lines := parked(t, h.sink.keeper); len(lines) != 1 || !strings.Contains(lines[0], `"id":"pf-00005"`) {
		t.Errorf("parked %v", lines)
	}
}
