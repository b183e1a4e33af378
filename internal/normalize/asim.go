package normalize

import (
	"fmt"

	"github.com/auditrelay/auditrelay/internal/event"
)

// ASIM appends r as one ASIM row to dst.
func ASIM(r event.Raw, dst []byte) ([]byte, error) {
	return dst, fmt.Errorf("normalize asim: not yet")
}
