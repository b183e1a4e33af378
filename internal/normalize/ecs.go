package normalize

import (
	"fmt"

	"github.com/auditrelay/auditrelay/internal/event"
)

// ECS appends r as one ECS document to dst.
func ECS(r event.Raw, dst []byte) ([]byte, error) {
	return dst, fmt.Errorf("normalize ecs: not yet")
}
