package pingone

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/auditrelay/auditrelay/internal/emulator"
)

// sameAsLenient checks that the one-pass decode of data, when it succeeds,
// gives exactly what the lenient decode gives. It reports whether the
// one-pass decode succeeded, that is whether anything was compared.
func sameAsLenient(t testing.TB, data []byte) bool {
	t.Helper()
	var s strictActivity
	if json.Unmarshal(data, &s) != nil {
		return false
	}
	var want activityJSON
	if err := json.Unmarshal(data, &want); err != nil {
		t.Fatalf("strict decode succeeded where the lenient one fails (%v): %s", err, data)
	}
	if got := s.lenient(); !reflect.DeepEqual(got, want) {
		t.Fatalf("strict and lenient decodes differ for %s:\n strict  %+v\n lenient %+v", data, got, want)
	}
	return true
}

// TestStrictDecodeMatchesLenient requires the one-pass decode to take every
// activity of the shape PingOne serves (the generator's, and the fixtures
// without odd types), and to agree with the lenient decode on each.
func TestStrictDecodeMatchesLenient(t *testing.T) {
	gen := emulator.NewGenerator(21)
	for i := range 500 {
		a := gen.Activity("env", "https://api.pingone.eu", time.Date(2026, 11, 25, 0, 0, i, 0, time.UTC))
		if !sameAsLenient(t, a.JSON) {
			t.Fatalf("the one-pass decode refuses a generated activity: %s", a.JSON)
		}
	}
	// These fixtures hold values of unexpected types: only the lenient
	// decode takes them.
	odd := map[string]bool{"failed_odd_types.json": true, "unknown_status.json": true}
	files, err := filepath.Glob(filepath.Join("testdata", "normalize", "*.json"))
	if err != nil || len(files) <= len(odd) {
		t.Fatalf("fixtures %q: %v", files, err)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if compared := sameAsLenient(t, b); compared == odd[filepath.Base(f)] {
			t.Errorf("%s: one-pass decode succeeded = %v, want %v", f, compared, !odd[filepath.Base(f)])
		}
	}
}

func FuzzStrictDecode(f *testing.F) {
	f.Add([]byte(`{"id":"a","resources":[null,{"id":"r"}],"tags":[null,"x"],"actors":{"user":null}}`))
	f.Add([]byte(`{"ID":"a","id":"b","Actors":{"USER":{"Name":"n"}},"resources":[],"tags":null}`))
	f.Add([]byte(`{"result":{"status":"SUCCESS","description":"d"},"action":{"type":"T"}}`))
	f.Fuzz(func(t *testing.T, data []byte) { sameAsLenient(t, data) })
}
