package pingone

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func readFixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDecodePage(t *testing.T) {
	type act struct {
		ID   string
		Time time.Time
	}
	for _, tt := range []struct {
		file    string
		want    []act
		next    string
		wantErr string
	}{
		{file: "two_with_next.json",
			want: []act{{"act-2", ms("2026-11-24T10:00:01Z")}, {"act-1", ms("2026-11-24T10:00:00.25Z")}},
			next: "https://api.pingone.eu/v1/environments/env-1/activities?limit=2&cursor=QUJDREVG"},
		{file: "last.json", want: []act{{"only", ms("2026-11-24T10:00:00Z")}}},
		{file: "empty.json", want: []act{}},
		{file: "numeric_id.json", want: []act{{"12345", ms("2026-11-24T10:00:00Z")}}},
		{file: "no_embedded.json", wantErr: "malformed page: no _embedded"},
		{file: "null_activities.json", wantErr: "no _embedded.activities"},
		{file: "truncated.json", wantErr: "malformed page: unexpected end of JSON input"},
		{file: "no_id.json", wantErr: "activity 1: activity has no id"},
		{file: "empty_id.json", wantErr: "activity 0: activity has an empty id"},
		{file: "bad_time.json", wantErr: `activity "a": recordedAt: "yesterday" is not an RFC 3339 timestamp`},
		{file: "no_time.json", wantErr: `activity "a" has no recordedAt`},
		{file: "null_activity.json", wantErr: "activity 0: activity is null"},
		{file: "next_without_href.json", wantErr: "_links.next has no href"},
		{file: "not_json.html", wantErr: "malformed page: invalid character"},
	} {
		t.Run(tt.file, func(t *testing.T) {
			p, err := decodePage(readFixture(t, filepath.Join("pages", tt.file)))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("decodePage error = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := []act{}
			for _, a := range p.Activities {
				got = append(got, act{a.ID, a.RecordedAt})
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("activities (-want +got):\n%s", diff)
			}
			if p.Next != tt.next {
				t.Errorf("next = %q, want %q", p.Next, tt.next)
			}
		})
	}
}

// TestDecodePageKeepsBytes checks that each activity's Data is exactly the
// bytes the page served, spacing and key order included.
func TestDecodePageKeepsBytes(t *testing.T) {
	body := readFixture(t, "pages/two_with_next.json")
	p, err := decodePage(body)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`{"id": "act-2", "recordedAt": "2026-11-24T10:00:01.000Z", "action": {"type": "USER.CREATED"}}`,
		`{"id":"act-1","recordedAt":"2026-11-24T10:00:00.250Z","action":{"type":"USER.DELETED"},"_embedded":{}}`,
	} {
		if !bytes.Contains(body, []byte(want)) {
			t.Fatalf("fixture does not contain %s", want)
		}
	}
	if got, want := string(p.Activities[0].Data), `{"id": "act-2", "recordedAt": "2026-11-24T10:00:01.000Z", "action": {"type": "USER.CREATED"}}`; got != want {
		t.Errorf("Data[0] = %s\nwant      %s", got, want)
	}
	if got, want := string(p.Activities[1].Data), `{"id":"act-1","recordedAt":"2026-11-24T10:00:00.250Z","action":{"type":"USER.DELETED"},"_embedded":{}}`; got != want {
		t.Errorf("Data[1] = %s\nwant      %s", got, want)
	}
}

func FuzzDecodePage(f *testing.F) {
	entries, err := os.ReadDir(filepath.Join("testdata", "pages"))
	if err != nil {
		f.Fatal(err)
	}
	for _, e := range entries {
		f.Add(readFixture(f, filepath.Join("pages", e.Name())))
	}
	f.Add([]byte(`{"_embedded":{"activities":[{"id":"x","recordedAt":"2026-11-24T10:00:00Z"},{"id":"x","recordedAt":"2026-11-24T10:00:00Z"}]}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		p, err := decodePage(body)
		if err != nil {
			return
		}
		if !json.Valid(body) {
			t.Fatalf("accepted invalid JSON")
		}
		for _, a := range p.Activities {
			if strings.TrimSpace(a.ID) == "" {
				t.Fatalf("accepted an activity without id: %s", a.Data)
			}
			if a.RecordedAt.IsZero() && !strings.Contains(string(a.Data), "0001-01-01") {
				t.Fatalf("accepted an activity without time: %s", a.Data)
			}
			if a.RecordedAt.Location() != time.UTC {
				t.Fatalf("recordedAt not in UTC: %v", a.RecordedAt)
			}
			if !json.Valid(a.Data) || !bytes.Contains(body, a.Data) {
				t.Fatalf("activity data is not a verbatim slice of the page: %s", a.Data)
			}
		}
	})
}
