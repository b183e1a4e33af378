package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/auditrelay/auditrelay/internal/sink/kafka"
)

const kafkaPassword = "e2e-kafka-scram-pa55"

// kafkaRecords consumes a topic from its start in the background and
// counts the records by their auditrelay-id header.
type kafkaRecords struct {
	mu     sync.Mutex
	ids    map[string]int
	bad    []string // records whose headers do not match their value
	cancel context.CancelFunc
	done   chan struct{}
}

func consumeKafka(t *testing.T, addrs []string, topic string) *kafkaRecords {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(200*time.Millisecond),
		kgo.SASL(scram.Auth{User: "admin", Pass: "admin-pw"}.AsSha512Mechanism()))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	k := &kafkaRecords{ids: map[string]int{}, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(k.done)
		defer cl.Close()
		for ctx.Err() == nil {
			fs := cl.PollFetches(ctx)
			k.mu.Lock()
			fs.EachRecord(func(r *kgo.Record) {
				h := map[string]string{}
				for _, x := range r.Headers {
					h[x.Key] = string(x.Value)
				}
				var v struct{ Source, Provider, ID string }
				if err := json.Unmarshal(r.Value, &v); err != nil || v.ID != h[kafka.HeaderID] ||
					v.Source != h[kafka.HeaderSource] || v.Provider != h[kafka.HeaderProvider] || string(r.Key) != v.ID {
					k.bad = append(k.bad, fmt.Sprintf("key %q headers %v value %.200s", r.Key, h, r.Value))
				}
				k.ids[h[kafka.HeaderID]]++
			})
			k.mu.Unlock()
		}
	}()
	t.Cleanup(k.stop)
	return k
}

func (k *kafkaRecords) stop() {
	k.cancel()
	<-k.done
}

func (k *kafkaRecords) snapshot() (map[string]int, []string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	ids := make(map[string]int, len(k.ids))
	for id, n := range k.ids {
		ids[id] = n
	}
	return ids, append([]string(nil), k.bad...)
}

// TestKafkaKillNineLoop: PingOne into a three-broker Kafka cluster (kfake,
// in this process, on loopback, SCRAM-SHA-512 and ACLs) through the real
// binary, killed with SIGKILL at random moments. Consuming the topic
// afterwards: no event is lost; repeats come only from batches in flight
// at a kill (at most one batch each), and each repeat carries the same
// auditrelay-id header as its original.
func TestKafkaKillNineLoop(t *testing.T) {
	bin := binary(t)
	dir := t.TempDir()
	const topic = "identity-audit"
	acl := func(op kmsg.ACLOperation) kfake.ACL {
		return kfake.ACL{Resource: kmsg.ACLResourceTypeTopic, Name: topic, Pattern: kmsg.ACLResourcePatternTypeLiteral, Operation: op, Allow: true}
	}
	cluster, err := kfake.NewCluster(kfake.NumBrokers(3), kfake.SeedTopics(6, topic),
		kfake.EnableSASL(), kfake.EnableACLs(), kfake.Superuser("SCRAM-SHA-512", "admin", "admin-pw"),
		kfake.User("SCRAM-SHA-512", "auditrelay", kafkaPassword, acl(kmsg.ACLOperationWrite), acl(kmsg.ACLOperationDescribe)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cluster.Close)
	// A slow cluster, so that kills land while batches are in flight:
	// every produce request is answered 100 to 300 ms late.
	var slowMu sync.Mutex
	slow := mrand.New(mrand.NewPCG(13, 14))
	cluster.ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
		cluster.KeepControl()
		slowMu.Lock()
		d := time.Duration(100+slow.IntN(200)) * time.Millisecond
		slowMu.Unlock()
		time.Sleep(d)
		return nil, nil, false
	})
	records := consumeKafka(t, cluster.ListenAddrs(), topic)

	w := newWorld(t, 2)
	now := time.Now()
	w.emu.Backlog(w.gen, w.envs[0].ID, w.srv.URL, 4000, now.Add(-time.Hour), now.Add(-10*time.Second))
	w.emu.Backlog(w.gen, w.envs[1].ID, w.srv.URL, 1500, now.Add(-30*time.Minute), now.Add(-10*time.Second))
	const batch = 300
	brokers, _ := json.Marshal(cluster.ListenAddrs())
	cfg := w.config(t, dir, fmt.Sprintf(`  - name: kafka
    kafka:
      brokers: %s
      topic: %s
      batch_size: %d
      tls: { enabled: false }
      sasl: { mechanism: SCRAM-SHA-512, username: auditrelay, password: "${env:KAFKA_PASSWORD}" }
`, brokers, topic, batch))
	environ := append(w.environ(), "KAFKA_PASSWORD="+kafkaPassword)
	logPath := filepath.Join(dir, "auditrelay.log")
	rng := mrand.New(mrand.NewPCG(11, 12))
	kills := 6
	for range kills {
		p := start(t, bin, cfg, environ, logPath)
		time.Sleep(time.Duration(800+rng.IntN(2200)) * time.Millisecond)
		p.kill(t)
	}
	p := start(t, bin, cfg, environ, logPath)
	want := map[string]bool{}
	for _, e := range w.envs {
		for _, a := range w.emu.Activities(e.ID) {
			want[a.ID] = true
		}
	}
	for deadline := time.Now().Add(90 * time.Second); time.Now().Before(deadline); time.Sleep(250 * time.Millisecond) {
		if ids, _ := records.snapshot(); covers(ids, want) {
			break
		}
	}
	p.stop(t)
	time.Sleep(500 * time.Millisecond) // the consumer reads what the stop flushed
	records.stop()
	ids, bad := records.snapshot()
	missing, dups, unknown := 0, 0, 0
	for id := range want {
		if ids[id] == 0 {
			missing++
		}
	}
	for id, n := range ids {
		dups += n - 1
		if !want[id] {
			unknown++
		}
	}
	if missing > 0 || dups > kills*batch || unknown > 0 {
		t.Errorf("kafka: %d of %d events missing, %d repeats (at most %d: one batch per kill), %d records of no event",
			missing, len(want), dups, kills*batch, unknown)
	}
	for _, b := range bad[:min(len(bad), 5)] {
		t.Errorf("record whose headers do not match its value: %s", b)
	}
	t.Logf("%d events, %d kills, %d repeats, each under the auditrelay-id of its original", len(want), kills, dups)
	b, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), kafkaPassword) {
		t.Error("the SASL password appears in the log")
	}
	assertNoSecrets(t, logPath, w)
	compare(t, "archive", w.want(), sinkIDs(t, filepath.Join(dir, "out", "a.ndjson")))
}
