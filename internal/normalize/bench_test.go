package normalize

import (
	"syscall"
	"testing"
	"time"

	"github.com/auditrelay/auditrelay/internal/event"
)

// benchNormalizer measures one normalizer over a mix of emulated events;
// events/s is reported beside ns/op (one op is one event).
func benchNormalizer(b *testing.B, provider string, f func(event.Raw, []byte) ([]byte, error)) {
	evs := emulated(b, provider, 1000, 3)
	var bytes int64
	for _, e := range evs {
		bytes += int64(len(e.Data))
	}
	b.SetBytes(bytes / int64(len(evs)))
	b.ReportAllocs()
	var out []byte
	i := 0
	cpu0 := processCPU()
	for b.Loop() {
		var err error
		if out, err = f(evs[i%len(evs)], out[:0]); err != nil {
			b.Fatal(err)
		}
		i++
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
	// On a shared machine wall time overstates the cost; the process's
	// CPU time (user and system) per event is the figure to compare with
	// one dedicated core.
	if cpu := processCPU() - cpu0; cpu > 0 {
		b.ReportMetric(float64(b.N)/cpu.Seconds(), "events/cpu-s")
	}
}

// processCPU returns the CPU time the process has used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func BenchmarkOCSF(b *testing.B) {
	for _, p := range Providers() {
		b.Run(p, func(b *testing.B) { benchNormalizer(b, p, OCSF) })
	}
}

func BenchmarkECS(b *testing.B) {
	for _, p := range Providers() {
		b.Run(p, func(b *testing.B) { benchNormalizer(b, p, ECS) })
	}
}

func BenchmarkASIM(b *testing.B) {
	for _, p := range Providers() {
		b.Run(p, func(b *testing.B) { benchNormalizer(b, p, ASIM) })
	}
}
