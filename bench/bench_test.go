package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/time/rate"

	"github.com/auditrelay/auditrelay/internal/config"
	"github.com/auditrelay/auditrelay/internal/emulator"
	"github.com/auditrelay/auditrelay/internal/secret"
	"github.com/auditrelay/auditrelay/internal/source/pingone"
	"github.com/auditrelay/auditrelay/internal/units"
)

func TestParseStatCPU(t *testing.T) {
	// A command name with spaces and parentheses; utime 1234, stime 56.
	stat := "4242 (audit relay) (x)) S 1 4242 4242 0 -1 4194560 1000 0 0 0 1234 56 0 0 20 0 12 0 100 1000000 2000 18446744073709551615\n"
	got, err := parseStatCPU([]byte(stat))
	if err != nil || got != 1290 {
		t.Fatalf("parseStatCPU = %d, %v; want 1290", got, err)
	}
	if _, err := parseStatCPU([]byte("4242 (x) S 1 2")); err == nil {
		t.Error("a short stat line parsed")
	}
}

func TestParseKB(t *testing.T) {
	status := "Name:\tauditrelay\nVmPeak:\t  900000 kB\nVmHWM:\t   51200 kB\nVmRSS:\t   40960 kB\n"
	for key, want := range map[string]int64{"VmHWM": 51200, "VmRSS": 40960} {
		if got, err := parseKB([]byte(status), key); err != nil || got != want {
			t.Errorf("parseKB(%s) = %d, %v; want %d", key, got, err, want)
		}
	}
	if _, err := parseKB([]byte(status), "VmSwap"); err == nil {
		t.Error("a missing key was found")
	}
}

func TestOwnProcess(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no /proc")
	}
	if _, err := cpuSeconds(os.Getpid()); err != nil {
		t.Error(err)
	}
	if mib, err := processMiB(os.Getpid(), "VmHWM"); err != nil || mib <= 0 {
		t.Errorf("VmHWM = %v MiB, %v", mib, err)
	}
}

func TestTailer(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f.ndjson")
	counter, reader := newTailer(path), newTailer(path)
	defer counter.Close()
	defer reader.Close()
	var ids []string
	collect := func(l []byte) {
		id, err := lineID(l)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	if n, err := counter.poll(nil); n != 0 || err != nil {
		t.Fatalf("missing file: %d, %v", n, err)
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	write := func(s string) {
		if _, err := f.WriteString(s); err != nil {
			t.Fatal(err)
		}
	}
	write(`{"id":"a","raw":{"id":"a"}}` + "\n" + `{"id":"b","ra`)
	if n, _ := counter.poll(nil); n != 1 {
		t.Errorf("counted %d lines, want 1", n)
	}
	if n, _ := reader.poll(collect); n != 1 {
		t.Errorf("read %d lines, want 1", n)
	}
	write(`w":{}}` + "\n" + `{"id":"c"}` + "\n")
	if n, _ := counter.poll(nil); n != 3 {
		t.Errorf("counted %d lines, want 3", n)
	}
	if n, _ := reader.poll(collect); n != 3 {
		t.Errorf("read %d lines, want 3", n)
	}
	if got := strings.Join(ids, ","); got != "a,b,c" {
		t.Errorf("ids %s, want a,b,c", got)
	}
}

func TestStatistics(t *testing.T) {
	v := make([]float64, 200)
	for i := range v {
		v[i] = float64(i + 1)
	}
	if got := percentile(v, 99); got != 198 {
		t.Errorf("p99 = %v, want 198", got)
	}
	if got := median(v); got != 100.5 {
		t.Errorf("median = %v, want 100.5", got)
	}
	if got := median([]float64{1, 2, 9}); got != 2 {
		t.Errorf("median = %v, want 2", got)
	}
	fr := aggregate([]figure{{key: "x", target: "≤ 2", met: func(v float64) bool { return v <= 2 }}},
		[]runReport{{Values: map[string]float64{"x": 3}}, {Values: map[string]float64{"x": 1}}, {Values: map[string]float64{"x": 2}}, {Error: "failed"}})
	if f := fr[0]; f.N != 3 || f.Min != 1 || f.Median != 2 || f.Max != 3 || f.Met == nil || *f.Met != 2 {
		t.Errorf("aggregate = %+v", f)
	}
}

func TestConfigRender(t *testing.T) {
	cfg := configSpec{dataDir: "/d", metricsListen: "127.0.0.1:1", logLevel: "info", apiURL: "http://127.0.0.1:2",
		sources:  []sourceSpec{{name: "s", envID: "e", clientID: "c", secretVar: "S", lookback: "2h", pageSize: 1000, rateLimit: 10, licence: "l"}},
		sinkPath: "/o/f.ndjson", batchSize: 1000}
	got := cfg.render()
	lines := map[string]bool{}
	for _, l := range strings.Split(got, "\n") {
		lines[strings.TrimSpace(l)] = true
	}
	// Whole lines: "rate_limit: 10" must not pass for "rate_limit: 100".
	for _, want := range []string{`client_secret: "${env:S}"`, "api_url: http://127.0.0.1:2", "page_size: 1000", "rate_limit: 10", `licence: "l"`, "batch_size: 1000"} {
		if !lines[want] {
			t.Errorf("config lacks the line %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "settle_delay") {
		t.Errorf("an unset key is written:\n%s", got)
	}
}

// BenchmarkTailCount measures the harness's cost of counting the lines of
// the backlog file, to show it stays small next to the daemon's.
func BenchmarkTailCount(b *testing.B) {
	path := filepath.Join(b.TempDir(), "f.ndjson")
	line := fmt.Sprintf(`{"id":"x","raw":%q}`+"\n", strings.Repeat("y", 1400))
	data := bytes.Repeat([]byte(line), 10_000)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		tl := newTailer(path)
		if n, err := tl.poll(nil); err != nil || n != 10_000 {
			b.Fatalf("%d lines, %v", n, err)
		}
		tl.Close()
	}
}

// BenchmarkSourcePoll measures one poll of the PingOne source as the daemon
// makes it: a 1,000-activity page fetched over loopback HTTP from the
// emulator (no rate limit) and decoded. The emulator's share is
// BenchmarkPage in internal/emulator; the rest is the client's.
func BenchmarkSourcePoll(b *testing.B) {
	emu := emulator.NewPingOne(emulator.PingOneOptions{RateLimit: -1})
	srv := httptest.NewServer(emu)
	defer srv.Close()
	env := environment(1, "")
	emu.AddEnvironment(env)
	now := time.Now()
	emu.Backlog(emulator.NewGenerator(1), env.ID, srv.URL, 10_000, now.Add(-time.Hour), now.Add(-5*time.Minute))
	cfg := pingone.Config{
		EnvironmentID: env.ID, ClientID: env.ClientID, ClientSecret: secret.New(env.ClientSecret),
		APIURL: srv.URL, AuthURL: srv.URL, Lookback: units.Duration(2 * time.Hour), PageSize: 1000, RateLimit: 10,
	}
	cfg.SetDefaults()
	src, err := pingone.New("bench", cfg, pingone.Options{Limiter: rate.NewLimiter(rate.Inf, 1)})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		p, err := src.Poll(ctx, nil) // the first page of the window, again and again
		if err != nil {
			b.Fatal(err)
		}
		if len(p.Events) != 1000 {
			b.Fatalf("%d events, want 1000", len(p.Events))
		}
	}
	b.ReportMetric(b.Elapsed().Seconds()*1e6/float64(b.N)/1000, "µs/activity")
}

// TestConfigRenderPostgres checks that -store postgres writes a store
// block the daemon accepts, with the DSN taken from the child's
// environment and never written into the file.
func TestConfigRenderPostgres(t *testing.T) {
	const dsn = "host=/tmp/pg user=bench password=s3cr3t-pw dbname=auditrelay_bench_1 sslmode=disable"
	cfg := configSpec{dataDir: "/d", logLevel: "info", apiURL: "http://127.0.0.1:2", postgres: true,
		sources:  []sourceSpec{{name: "s", envID: "e", clientID: "c", secretVar: "S"}},
		sinkPath: "/o/f.ndjson"}
	text := cfg.render()
	if strings.Contains(text, "s3cr3t-pw") || strings.Contains(text, "/tmp/pg") {
		t.Fatalf("the configuration holds the DSN:\n%s", text)
	}
	env := map[string]string{"S": "secret", childDSNVar: dsn}
	c, err := config.Parse([]byte(text), func(k string) (string, bool) { v, ok := env[k]; return v, ok }, os.ReadFile)
	if err != nil {
		t.Fatalf("the daemon refuses the configuration: %v\n%s", err, text)
	}
	if c.Store.Postgres == nil || c.Store.Postgres.DSN.Reveal() != dsn {
		t.Fatalf("store block = %+v, want postgres with the DSN from %s", c.Store, childDSNVar)
	}
	if c := (configSpec{dataDir: "/d", logLevel: "info", sinkPath: "/o/f"}).render(); strings.Contains(c, "store:") {
		t.Errorf("a bolt configuration has a store block:\n%s", c)
	}
}

// TestStoreDescription checks that the report names the store without a
// DSN.
func TestStoreDescription(t *testing.T) {
	t.Setenv(envBenchDSN, "postgres://bench:s3cr3t-pw@127.0.0.1/db")
	st, err := openStore("postgres")
	if err != nil {
		t.Fatal(err)
	}
	defer st.close()
	if d := st.describe(); strings.Contains(d, "s3cr3t-pw") || strings.Contains(d, "127.0.0.1") || !strings.Contains(d, envBenchDSN) {
		t.Errorf("description %q", d)
	}
	if d := (*pgStore)(nil).describe(); !strings.HasPrefix(d, "bolt") {
		t.Errorf("bolt description %q", d)
	}
	if _, err := openStore("sqlite"); err == nil {
		t.Error("-store sqlite accepted")
	}
}

func TestLineKey(t *testing.T) {
	line := []byte(`{"source":"s","provider":"pingone","tenant":"t","id":"a-1","time":"2026-01-01T00:00:00Z","raw":{"id":"inner"}}`)
	if src, id, err := lineKey(line); err != nil || src != "s" || id != "a-1" {
		t.Errorf("lineKey of a raw line = %q, %q, %v; want s, a-1", src, id, err)
	}
	ocsf := []byte(`{"metadata":{"log_source":"s2","uid":"u-1"},"raw_data":"{\"x\":1}"}`)
	if src, id, err := lineKey(ocsf); err != nil || src != "s2" || id != "u-1" {
		t.Errorf("lineKey of an OCSF line = %q, %q, %v; want s2, u-1", src, id, err)
	}
	if _, _, err := lineKey([]byte(`{"x":1}`)); err == nil {
		t.Error("a line with no id has a key")
	}
	ecs := []byte(`{"source":{"ip":"10.0.0.1"},"event":{"id":"e-1"},"labels":{"auditrelay_source":"s3"}}`)
	for _, c := range []struct {
		line []byte
		want string
	}{{line, "s"}, {ocsf, "s2"}, {ecs, "s3"}} {
		if src, ok := lineSource(c.line); !ok || src != c.want {
			t.Errorf("lineSource(%s) = %q, %v; want %q", c.line, src, ok, c.want)
		}
	}
	if src, ok := lineSource([]byte(`{"x":"source"}`)); ok {
		t.Errorf("a line with no source has source %q", src)
	}
}
