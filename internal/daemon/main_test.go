package daemon

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests when a goroutine outlives them: every
// runner, server and sink the daemon starts must stop when Run returns.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
