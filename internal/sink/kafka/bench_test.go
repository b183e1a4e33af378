package kafka

import (
	"context"
	"fmt"
	"testing"
)

// BenchmarkSend produces batches of 1000 PingOne-sized events (zstd,
// acks=all, idempotent) into an in-process kfake cluster and reports
// events/s. Run it on one core: go test -bench Send -cpu 1.
func BenchmarkSend(b *testing.B) {
	for _, codec := range []string{CompressionZstd, CompressionNone} {
		b.Run(codec, func(b *testing.B) {
			c := newCluster(b, 1)
			h := newSink(b, c.ListenAddrs(), func(cfg *Config) { cfg.Compression = codec })
			const size = 1000
			batch := events("pingone-eu", "bench", size)
			var bytes int64
			for _, ev := range batch {
				bytes += int64(len(ev.Data))
			}
			ctx := context.Background()
			if err := h.sink.Send(ctx, batch); err != nil { // connect, producer id
				b.Fatal(err)
			}
			b.SetBytes(bytes)
			b.ResetTimer()
			n := 0
			for b.Loop() {
				for i := range batch {
					batch[i].ID = fmt.Sprintf("b%d-%d", n, i)
				}
				if err := h.sink.Send(ctx, batch); err != nil {
					b.Fatal(err)
				}
				n++
			}
			b.ReportMetric(float64(n*size)/b.Elapsed().Seconds(), "events/s")
			b.ReportMetric(0, "ns/op")
		})
	}
}
