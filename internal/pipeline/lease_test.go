package pipeline

import (
	"fmt"
	"testing"

	"github.com/auditrelay/auditrelay/internal/store"
)

func works(sources, sinks int) []Work {
	var w []Work
	for i := range sources {
		w = append(w, Work{Kind: store.LeaseSource, Name: fmt.Sprintf("tenant-%03d", i)})
	}
	for i := range sinks {
		w = append(w, Work{Kind: store.LeaseSink, Name: fmt.Sprintf("sink-%d", i)})
	}
	return w
}

func counts(owner map[workKey]string, kind string) map[string]int {
	n := map[string]int{}
	for k, r := range owner {
		if k.kind == kind {
			n[r]++
		}
	}
	return n
}

// TestAssignBalances: every replica gets ⌊N/R⌋ or ⌈N/R⌉ sources and
// sinks, every replica computes the same assignment whatever the order it
// lists the replicas in, and a replica leaving moves only its own share.
func TestAssignBalances(t *testing.T) {
	w := works(300, 4)
	three := assign([]string{"r2", "r1", "r3"}, w)
	if len(three) != len(w) {
		t.Fatalf("assigned %d of %d", len(three), len(w))
	}
	for _, kind := range []string{store.LeaseSource, store.LeaseSink} {
		for r, n := range counts(three, kind) {
			want := map[string][2]int{store.LeaseSource: {100, 100}, store.LeaseSink: {1, 2}}[kind]
			if n < want[0] || n > want[1] {
				t.Errorf("%s: %s owns %d, want %d to %d", kind, r, n, want[0], want[1])
			}
		}
	}
	again := assign([]string{"r3", "r1", "r2", "r1"}, w)
	for k, r := range three {
		if again[k] != r {
			t.Fatalf("%v assigned to %s and %s for the same live replicas", k, r, again[k])
		}
	}
	two := assign([]string{"r1", "r3"}, w)
	if c := counts(two, store.LeaseSource); c["r1"] != 150 || c["r3"] != 150 {
		t.Fatalf("after r2 left: %v", c)
	}
	moved := 0
	for k, r := range three {
		if r != "r2" && two[k] != r {
			moved++
		}
	}
	// r1 and r3 each take 50 of r2's 100 sources; a few of their own may
	// trade places, never most.
	if moved > 30 {
		t.Fatalf("%d runners of the remaining replicas moved when r2 left", moved)
	}
	t.Logf("300 sources over 3 replicas: %v; after one left: %v; %d of the others' runners moved", counts(three, store.LeaseSource), counts(two, store.LeaseSource), moved)
	if got := assign(nil, w); len(got) != 0 {
		t.Fatalf("no replica: %v", got)
	}
}
