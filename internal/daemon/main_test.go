package daemon

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/auditrelay/auditrelay/internal/store/postgres/pgtest"
)

// TestMain fails the package's tests when a goroutine outlives them: every
// runner, server and sink the daemon starts must stop when Run returns. The
// tests that need PostgreSQL get a throwaway server (see pgtest).
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(withPostgres{m})
}

// withPostgres runs the tests with a throwaway PostgreSQL server.
type withPostgres struct{ m *testing.M }

func (w withPostgres) Run() int { return pgtest.Main(w.m) }
