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

// sameAsLenient reports whether the one-pass decode of data, when it
// succeeds, gives exactly what the lenient decode gives.
func sameAsLenient(t testing.TB, data []byte) {
	t.Helper()
	var s strictActivity
	if json.Unmarshal(data, &s) != nil {
		return
	}
	var want activityJSON
	if err := json.Unmarshal(data, &want); err != nil {
		t.Fatalf("strict decode succeeded where the lenient one fails (%v): %s", err, data)
	}
	if got := s.lenient(); !reflect.DeepEqual(got, want) {
		t.Fatalf("strict and lenient decodes differ for %s:\n strict  %+v\n lenient %+v", data, got, want)
	}
}

func TestStrictDecodeMatchesLenient(t *testing.T) {
	gen := emulator.NewGenerator(21)
	for i := range 500 {
		a := gen.Activity("env", "https://api.pingone.eu", time.Date(2026, 11, 25, 0, 0, i, 0, time.UTC))
		sameAsLenient(t, a.JSON)
	}
	files, _ := filepath.Glob(filepath.Join("testdata", "normalize", "*.json"))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		sameAsLenient(t, b)
	}
}

func FuzzStrictDecode(f *testing.F) {
	f.Add([]byte(`{"id":"a","resources":[null,{"id":"r"}],"tags":[null,"x"],"actors":{"user":null}}`))
	f.Add([]byte(`{"ID":"a","id":"b","Actors":{"USER":{"Name":"n"}},"resources":[],"tags":null}`))
	f.Add([]byte(`{"result":{"status":"SUCCESS","description":"d"},"action":{"type":"T"}}`))
	f.Fuzz(func(t *testing.T, data []byte) { sameAsLenient(t, data) })
}
