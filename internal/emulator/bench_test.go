package emulator

import (
	"net/url"
	"testing"
	"time"
)

func BenchmarkGeneratorActivity(b *testing.B) {
	g := NewGenerator(1)
	for b.Loop() {
		g.Activity(genEnv, genBase, t0)
	}
}

// BenchmarkPage serves 1,000-activity pages out of 100,000, without a network.
func BenchmarkPage(b *testing.B) {
	p := NewPingOne(PingOneOptions{RateLimit: -1})
	p.AddEnvironment(testEnv)
	p.Backlog(NewGenerator(1), testEnv.ID, genBase, 100_000, t0.Add(-24*time.Hour), t0)
	tok := issueToken(b, p, testEnv)
	target := "/v1/environments/env-a/activities?limit=1000&filter=" + url.QueryEscape(window(t0.Add(-12*time.Hour), t0))
	for b.Loop() {
		if rec := serve(p, "GET", target, tok, ""); rec.Code != 200 {
			b.Fatalf("HTTP %d", rec.Code)
		}
	}
}
