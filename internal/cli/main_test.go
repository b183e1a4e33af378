package cli

import (
	"os"
	"testing"

	"github.com/auditrelay/auditrelay/internal/store/postgres/pgtest"
)

// TestMain gives the tests that need PostgreSQL a throwaway server (see
// pgtest).
func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }
