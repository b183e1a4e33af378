package pingone

import (
	"github.com/auditrelay/auditrelay/internal/event"
	"github.com/auditrelay/auditrelay/internal/normalize"
)

// Provider is the provider name of PingOne events.
const Provider = "pingone"

// Normalize maps a PingOne activity to the canonical event. It is pure: the
// same Raw always gives the same Event, and r.Data is kept as Event.Raw,
// untouched. Missing parts (no actors, an empty population, no source) leave
// the matching fields empty; only JSON that is not an object is an error.
// The mapping lives with the other normalizers (one pass over the JSON, no
// allocation but the strings it returns); it is the one the OCSF and ECS
// formats read.
func Normalize(r event.Raw) (event.Event, error) { return normalize.PingOneEvent(r) }
