package daemon

import "testing"

// TestLimitersShareABudget: sources spending one API budget get one
// limiter, made at the first source's rate; other budgets get their own.
func TestLimitersShareABudget(t *testing.T) {
	l := limiters{}
	a := l.get("okta|https://example.okta.com", 0.3)
	if b := l.get("okta|https://example.okta.com", 5); b != a {
		t.Fatal("two sources of one org got two limiters")
	}
	if a.Limit() != 0.3 || a.Burst() != 1 {
		t.Fatalf("limiter at %v burst %d, want the first source's 0.3 and burst 1", a.Limit(), a.Burst())
	}
	if c := l.get("okta|https://other.okta.com", 0.3); c == a {
		t.Fatal("two orgs share a limiter")
	}
}
