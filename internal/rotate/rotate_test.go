package rotate

import (
	"os"
	"path/filepath"
	"testing"
)

func TestShift(t *testing.T) {
	p := filepath.Join(t.TempDir(), "f")
	for i, name := range []string{"a", "b", "c", "d"} {
		if err := os.WriteFile(p, []byte(name), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := Shift(p, 2); err != nil {
			t.Fatalf("shift %d: %v", i, err)
		}
	}
	for suffix, want := range map[string]string{".1": "d", ".2": "c"} {
		b, err := os.ReadFile(p + suffix)
		if err != nil || string(b) != want {
			t.Errorf("%s = %q, %v; want %q", suffix, b, err, want)
		}
	}
	for _, gone := range []string{"", ".3"} {
		if _, err := os.Stat(p + gone); !os.IsNotExist(err) {
			t.Errorf("%s exists after the shift", p+gone)
		}
	}
	if err := Shift(p, 2); err == nil {
		t.Error("shift without the file itself succeeded")
	}
}

func TestDue(t *testing.T) {
	for _, tc := range []struct {
		size, n, max int64
		want         bool
	}{{0, 10, 5, false}, {1, 4, 5, false}, {1, 5, 5, true}, {5, 0, 5, false}, {6, 0, 5, true}} {
		if got := Due(tc.size, tc.n, tc.max); got != tc.want {
			t.Errorf("Due(%d, %d, %d) = %v", tc.size, tc.n, tc.max, got)
		}
	}
}

// TestFiles: the files Shift left, oldest first, then the current one;
// nothing for a path that was never written.
func TestFiles(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "out.ndjson")
	if got := Files(p); len(got) != 0 {
		t.Fatalf("Files of nothing = %q", got)
	}
	for i := range 3 {
		if err := os.WriteFile(p, []byte{byte('a' + i)}, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := Shift(p, 5); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(p, []byte("d"), 0o600); err != nil {
		t.Fatal(err)
	}
	var got string
	for _, f := range Files(p) {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		got += string(b)
	}
	if got != "abcd" {
		t.Errorf("Files read in order give %q, want abcd (oldest first)", got)
	}
}
