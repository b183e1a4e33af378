package emulator

import (
	"math"
	"testing"
	"time"
)

func FuzzParseFilter(f *testing.F) {
	for _, s := range []string{
		`recordedAt ge "2025-03-01T12:00:00.000Z" and recordedAt lt "2025-03-01T12:10:00.000Z"`,
		`recordedat gt "2025-03-01T12:00:00Z" AND recordedat le "2025-03-01T12:10:00+02:00"`,
		`action.type eq "USER.CREATED" and recordedAt ge "2025-03-01T12:00:00.123456Z"`,
		`action.type eq "a\"b\\c\u00e9" and recordedAt lt "2025-03-01T12:00:00Z"`,
		`recordedAt ge "x`, `(`, `and`, ``, `"`, `recordedAt ge "2025-03-01T12:00:00Z" and and`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		flt, err := parseFilter(s)
		if err != nil {
			return
		}
		if flt.lo == math.MinInt64 && flt.hi == math.MaxInt64 {
			t.Fatalf("%q parsed without a recordedAt bound", s)
		}
		// Render and parse again: the same filter, when its bounds are
		// dates the format can write.
		inRange := func(ms int64) bool {
			y := time.UnixMilli(ms).UTC().Year()
			return ms == math.MinInt64 || ms == math.MaxInt64 || (y >= 0 && y <= 9999)
		}
		if !inRange(flt.lo) || !inRange(flt.hi) {
			return
		}
		again, err := parseFilter(flt.String())
		if err != nil {
			t.Fatalf("%q → %q: %v", s, flt.String(), err)
		}
		if again.lo != flt.lo || again.hi != flt.hi || len(again.actionTypes) != len(flt.actionTypes) {
			t.Fatalf("%q → %q → %+v, want %+v", s, flt.String(), again, flt)
		}
		for i := range flt.actionTypes {
			if again.actionTypes[i] != flt.actionTypes[i] {
				t.Fatalf("%q: action type %q became %q", s, flt.actionTypes[i], again.actionTypes[i])
			}
		}
	})
}
