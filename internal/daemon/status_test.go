package daemon

import (
	"context"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/auditrelay/auditrelay/internal/config"
)

// runEmpty runs a daemon with no source and no sink on dataDir until the
// test ends, logging into the returned buffer once its store is open.
func runEmpty(t *testing.T, dataDir string) (*Daemon, *syncBuffer) {
	t.Helper()
	logs := &syncBuffer{}
	d, err := New(&config.Config{DataDir: dataDir, SpoolMaxBytes: 1 << 30}, Options{Logger: slog.New(slog.NewTextHandler(logs, nil)), Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run = %v", err)
		}
	})
	eventually(t, "the daemon to run", func() bool { return strings.Contains(logs.String(), "auditrelay running") })
	return d, logs
}

// TestStatusSocketMode: the status socket is a file in data_dir that only
// the daemon's user can use, and a daemon answers for its data_dir only.
func TestStatusSocketMode(t *testing.T) {
	dataDir := filepath.Join(t.TempDir(), "data")
	runEmpty(t, dataDir)
	path := filepath.Join(dataDir, StatusSocketName)
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatalf("no status socket in data_dir: %v", err)
	}
	if fi.Mode().Type() != fs.ModeSocket || fi.Mode().Perm() != 0o600 {
		t.Errorf("status socket mode %v, want a socket with mode 0600", fi.Mode())
	}
	st, err := ReadStatus(context.Background(), dataDir)
	if err != nil || !st.Running || st.Version != "test" {
		t.Errorf("ReadStatus of the daemon's data_dir = %+v, %v; want running version test", st, err)
	}
	other := filepath.Join(t.TempDir(), "data")
	if st, err := ReadStatus(context.Background(), other); err != nil || st.Running {
		t.Errorf("ReadStatus of another data_dir = %+v, %v; want not running", st, err)
	}
}

// TestStatusSocketStale: a socket file left by a daemon killed with -9 is
// replaced by the next daemon, which holds the store's lock; a clean stop
// removes it.
func TestStatusSocketStale(t *testing.T) {
	dataDir := filepath.Join(t.TempDir(), "data")
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dataDir, StatusSocketName)
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	ln.SetUnlinkOnClose(false)
	ln.Close()
	if _, err := os.Lstat(path); err != nil {
		t.Fatalf("no stale socket to test with: %v", err)
	}
	t.Run("replaced", func(t *testing.T) {
		_, logs := runEmpty(t, dataDir)
		if st, err := ReadStatus(context.Background(), dataDir); err != nil || !st.Running {
			t.Errorf("ReadStatus over a replaced stale socket = %+v, %v; want running", st, err)
		}
		if !strings.Contains(logs.String(), "removed the status socket a stopped daemon left") {
			t.Errorf("the log does not say the stale socket was removed:\n%s", logs)
		}
	})
	if _, err := os.Lstat(path); !os.IsNotExist(err) {
		t.Errorf("status socket still there after a clean stop: %v", err)
	}
}

// TestStatusSocketNotASocket: a regular file where the socket goes is
// never removed.
func TestStatusSocketNotASocket(t *testing.T) {
	dataDir := filepath.Join(t.TempDir(), "data")
	os.MkdirAll(dataDir, 0o700)
	path := filepath.Join(dataDir, StatusSocketName)
	if err := os.WriteFile(path, []byte("keep me"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, logs := runEmpty(t, dataDir)
	if b, err := os.ReadFile(path); err != nil || string(b) != "keep me" {
		t.Errorf("the file in the socket's place = %q, %v; want it untouched", b, err)
	}
	if !strings.Contains(logs.String(), "a file that is not a socket is in the way") {
		t.Errorf("the log does not say why there is no status socket:\n%s", logs)
	}
}

// TestStatusSocketPathTooLong: a data_dir too long for a socket path runs
// without a status socket, says so in its log, and status says what to do.
func TestStatusSocketPathTooLong(t *testing.T) {
	dataDir := filepath.Join(t.TempDir(), strings.Repeat("d", 100))
	_, logs := runEmpty(t, dataDir)
	if !strings.Contains(logs.String(), "choose a shorter data_dir") {
		t.Errorf("the log does not say the socket path is too long:\n%s", logs)
	}
	_, err := ReadStatus(context.Background(), dataDir)
	if err == nil || !strings.Contains(err.Error(), "choose a shorter data_dir") {
		t.Errorf("ReadStatus = %v; want an error asking for a shorter data_dir", err)
	}
}
