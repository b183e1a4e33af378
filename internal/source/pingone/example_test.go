package pingone_test

import (
	"fmt"
	"time"

	"github.com/auditrelay/auditrelay/internal/event"
	"github.com/auditrelay/auditrelay/internal/source/pingone"
)

func ExampleNormalize() {
	raw := event.Raw{
		Source:   "pingone-eu",
		Provider: "pingone",
		Tenant:   "0d5a1c8e-7f0b-4c43-9a61-2f3b9e0c7a11",
		ID:       "7b3f9a52-1c2d-4e8f-9a0b-3c4d5e6f7a8b",
		Time:     time.Date(2026, 11, 25, 8, 30, 12, 345e6, time.UTC),
		Data: []byte(`{"id":"7b3f9a52-1c2d-4e8f-9a0b-3c4d5e6f7a8b","recordedAt":"2026-11-25T08:30:12.345Z",
			"actors":{"user":{"id":"u-17","name":"j.devries@example.org","type":"USER"},
			          "client":{"id":"adminui","name":"PingOne Admin Console","type":"CLIENT"}},
			"action":{"type":"ROLE_ASSIGNMENT.CREATED","description":"Role Assignment Created"},
			"resources":[{"type":"USER","id":"u-42","name":"a.kowalski@example.org"}],
			"result":{"status":"SUCCESS","description":"Assigned Environment Admin"},
			"tags":["adminIdentityEvent"]}`),
	}
	ev, err := pingone.Normalize(raw)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(ev.Time.Format(time.RFC3339Nano), ev.Action, ev.Outcome)
	fmt.Println("actor:", ev.Actor.Name, "via", ev.Client.Name)
	fmt.Println("target:", ev.Targets[0].Type, ev.Targets[0].Name)
	fmt.Println("tags:", ev.Tags)
	// Output:
	// 2026-11-25T08:30:12.345Z ROLE_ASSIGNMENT.CREATED success
	// actor: j.devries@example.org via PingOne Admin Console
	// target: USER a.kowalski@example.org
	// tags: [adminIdentityEvent]
}
