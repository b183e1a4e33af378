package daemon

import (
	"bytes"
	"context"
	"log/slog"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/auditrelay/auditrelay/internal/config"
	"github.com/auditrelay/auditrelay/internal/emulator"
	"github.com/auditrelay/auditrelay/internal/secret"
	"github.com/auditrelay/auditrelay/internal/sink/kafka"
	"github.com/auditrelay/auditrelay/internal/source/cyberark"
	"github.com/auditrelay/auditrelay/internal/units"
)

// TestCyberArkToKafka runs the daemon in-process from a CyberArk emulator
// into an in-process Kafka cluster: the sink's check passes, every event
// is one record with its id header, and the kafka metrics count them.
func TestCyberArkToKafka(t *testing.T) {
	ca := emulator.NewCyberArk(emulator.CyberArkOptions{})
	csrv := httptest.NewServer(ca)
	defer csrv.Close()
	tenant := ca.StartDemo(context.Background(), 3, 300, time.Hour, 0, 0)
	cluster, err := kfake.NewCluster(kfake.NumBrokers(2), kfake.SeedTopics(3, "audit.cyberark"))
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()

	dir := t.TempDir()
	addr := freeAddr(t)
	cfg := &config.Config{DataDir: filepath.Join(dir, "data"), MetricsListen: addr, SpoolMaxBytes: 1 << 30}
	cc := &cyberark.Config{IdentityURL: csrv.URL, AppID: tenant.AppID, ClientID: tenant.ClientID, ClientSecret: secret.New(tenant.ClientSecret),
		AuditURL: csrv.URL, APIKey: secret.New(tenant.APIKey), SettleDelay: units.Duration(time.Second),
		PollInterval: units.Duration(200 * time.Millisecond), Overlap: units.Duration(5 * time.Second), Lookback: units.Duration(2 * time.Hour), RateLimit: 20}
	cc.SetDefaults()
	cfg.Sources = []config.Source{{Name: "ca", CyberArk: cc}}
	off := false
	kc := &kafka.Config{Brokers: cluster.ListenAddrs(), Topic: "audit.{provider}", TLS: kafka.TLS{Enabled: &off}}
	kc.SetDefaults()
	cfg.Sinks = []config.Sink{{Name: "kafka", Sources: []string{"ca"}, Kafka: kc}}

	sinks, err := BuildSinks(cfg, slog.New(slog.DiscardHandler), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := sinks[0].Check(context.Background()); err != nil {
		t.Fatalf("sink check: %v", err)
	}
	sinks[0].Sink.Close(context.Background())
	var logs bytes.Buffer
	d, err := New(cfg, Options{Logger: slog.New(slog.NewTextHandler(&logs, nil)), Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	var metrics string
	eventually(t, "300 records acknowledged", func() bool {
		_, metrics = get(t, "http://"+addr+"/metrics")
		v, _ := metricValue(metrics, `auditrelay_kafka_events_total{sink="kafka"}`)
		return v == "300"
	})
	checkMetrics(t, metrics, map[string]string{
		`auditrelay_kafka_parked_total{sink="kafka"}`: "0",
		`auditrelay_kafka_errors_total{sink="kafka"}`: "0",
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	cl, err := kgo.NewClient(kgo.SeedBrokers(cluster.ListenAddrs()...), kgo.ConsumeTopics("audit.cyberark"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	want := map[string]bool{}
	for _, e := range ca.Events(tenant.ID) {
		want[e.UUID] = true
	}
	seen := map[string]int{}
	pctx, pcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer pcancel()
	for n := 0; n < len(want) && pctx.Err() == nil; {
		fs := cl.PollFetches(pctx)
		fs.EachRecord(func(r *kgo.Record) {
			for _, h := range r.Headers {
				if h.Key == kafka.HeaderID { // tenant/uuid
					_, uuid, _ := strings.Cut(string(h.Value), "/")
					seen[uuid]++
				}
			}
			n++
		})
	}
	for id := range want {
		if seen[id] != 1 {
			t.Errorf("event %s: %d records", id, seen[id])
		}
	}
	if len(seen) != len(want) {
		t.Errorf("%d distinct records, %d events", len(seen), len(want))
	}
	if strings.Contains(logs.String(), "level=ERROR") {
		t.Errorf("errors logged:\n%s", logs.String())
	}
}
