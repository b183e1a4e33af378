package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/auditrelay/auditrelay/internal/config"
	"github.com/auditrelay/auditrelay/internal/pipeline"
	"github.com/auditrelay/auditrelay/internal/store"
	"github.com/auditrelay/auditrelay/internal/store/bolt"
	"github.com/auditrelay/auditrelay/internal/store/postgres"
)

// StatusSocketName is the status socket's file inside the data directory.
const StatusSocketName = "status.sock"

// maxSocketPath is the longest unix socket path bound or dialled: sun_path
// holds 104 bytes on macOS and the BSDs (108 on Linux), NUL included.
const maxSocketPath = 103

// StatusSocket returns the unix socket a daemon with this data directory
// serves its status on: status.sock inside it, as an absolute path.
func StatusSocket(dataDir string) string {
	abs, err := filepath.Abs(dataDir)
	if err != nil {
		abs = dataDir
	}
	return filepath.Join(abs, StatusSocketName)
}

// errSocketPath says why a data directory has no status socket.
func errSocketPath(path string) error {
	return fmt.Errorf("the status socket path %s is %d bytes, longer than a unix socket path can be (%d): choose a shorter data_dir so that `auditrelay status` can read a running daemon",
		path, len(path), maxSocketPath)
}

// Status is what `auditrelay status` shows.
type Status struct {
	Version string         `json:"version"`
	Running bool           `json:"running"`
	Store   store.Snapshot `json:"store"`
	// Halted maps each runner halted on a permanent error ("source/NAME",
	// "sink/NAME") to its error and fix; Halts holds the same, the fix
	// apart.
	Halted map[string]string `json:"halted,omitempty"`
	Halts  []pipeline.Halt   `json:"halts,omitempty"`
	// SpoolMaxBytes is the spool's bound, spool_max_bytes.
	SpoolMaxBytes int64 `json:"spool_max_bytes,omitempty"`
	// Sources and Sinks hold, by name, what only a running daemon knows.
	Sources map[string]SourceLive `json:"sources,omitempty"`
	Sinks   map[string]SinkLive   `json:"sinks,omitempty"`
}

// serveStatus serves /status on the data directory's socket, readable and
// writable by the daemon's user only (mode 0600). It must be called with
// the store open: the store's lock proves that a socket file already there
// was left by a daemon that died, so it is removed.
func (d *Daemon) serveStatus() (*http.Server, error) {
	path := StatusSocket(d.cfg.DataDir)
	if len(path) > maxSocketPath {
		return nil, errSocketPath(path)
	}
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode().Type() != fs.ModeSocket {
			return nil, fmt.Errorf("status socket %s: a file that is not a socket is in the way: move it out of data_dir", path)
		}
		// With a shared store nothing locks data_dir: a replica
		// answering there keeps its socket.
		if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
			c.Close()
			return nil, fmt.Errorf("status socket %s: another auditrelay serves its status there: give each replica its own data_dir", path)
		}
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("status socket %s: remove the one a stopped daemon left: %w (check data_dir's permissions)", path, err)
		}
		d.log.Info("removed the status socket a stopped daemon left", "path", path)
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("status socket %s: %w (check data_dir's permissions)", path, err)
	}
	// Nothing is accepted before the mode is the owner's only.
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("status socket %s: restrict it to this user: %w", path, err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/status", func(w http.ResponseWriter, r *http.Request) {
		st, err := d.status()
		if err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(st)
	})
	if d.cfg.Store.Postgres == nil {
		mux.HandleFunc("POST /backfill", d.serveBackfill)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	d.serve("status socket", srv, ln)
	return srv, nil
}

// ReadStatusOf is ReadStatus for the store cfg configures: with
// store.postgres, when no local daemon answers, it reads the shared store
// (which the running replicas keep using).
func ReadStatusOf(ctx context.Context, cfg *config.Config) (Status, error) {
	pg := cfg.Store.Postgres
	if pg == nil {
		return ReadStatus(ctx, cfg.DataDir)
	}
	if path := StatusSocket(cfg.DataDir); len(path) <= maxSocketPath {
		if st, ok, err := askDaemon(ctx, path); err != nil || ok {
			return st, err
		}
	}
	s, err := postgres.Open(ctx, *pg, postgres.Options{ReadOnly: true})
	if err != nil {
		return Status{}, err
	}
	defer s.Close()
	snap, err := s.Snapshot()
	if err != nil {
		return Status{}, err
	}
	return Status{Running: false, Store: snap}, nil
}

// ReadStatus asks a running daemon for its status on the data directory's
// socket, or reads the store when none answers.
func ReadStatus(ctx context.Context, dataDir string) (Status, error) {
	path := StatusSocket(dataDir)
	var noSocket error
	if len(path) > maxSocketPath {
		noSocket = errSocketPath(path)
	} else if st, ok, err := askDaemon(ctx, path); err != nil {
		return Status{}, err
	} else if ok {
		return st, nil
	}
	if _, err := os.Stat(filepath.Join(dataDir, bolt.FileName)); errors.Is(err, os.ErrNotExist) {
		return Status{Running: false}, nil // never ran: nothing to show yet
	}
	s, err := bolt.Open(dataDir, bolt.Options{ReadOnly: true})
	if err != nil {
		if errors.Is(err, bolt.ErrLocked) || strings.Contains(err.Error(), "timeout") {
			if noSocket != nil {
				return Status{}, fmt.Errorf("status: a daemon holds the store and has no status socket: %w", noSocket)
			}
			return Status{}, fmt.Errorf("status: a daemon holds the store but did not answer on its status socket %s (its log says why): %w", path, err)
		}
		return Status{}, err
	}
	defer s.Close()
	snap, err := s.Snapshot()
	if err != nil {
		return Status{}, err
	}
	return Status{Running: false, Store: snap}, nil
}

// askDaemon reads /status from the socket at path. ok is false when no
// daemon listens there; err is set when one answered but not with a
// status.
func askDaemon(ctx context.Context, path string) (st Status, ok bool, err error) {
	client := socketClient(path)
	defer client.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://auditrelay/status", nil)
	if err != nil {
		return Status{}, false, fmt.Errorf("status: %w", err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return Status{}, false, nil
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return Status{}, false, nil
	}
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return Status{}, false, fmt.Errorf("status: decode the daemon's answer on %s: %w", path, err)
	}
	return st, true, nil
}

// socketClient returns an HTTP client of the status socket at path.
func socketClient(path string) *http.Client {
	return &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var dl net.Dialer
			return dl.DialContext(ctx, "unix", path)
		},
	}, Timeout: 5 * time.Second}
}

// RequestBackfill asks the daemon running on dataDir to record and run a
// backfill. ok is false when no daemon answers on its status socket; err
// wraps ErrBackfill when the daemon refused the request, saying why.
func RequestBackfill(ctx context.Context, dataDir string, req BackfillRequest) (plan BackfillPlan, ok bool, err error) {
	path := StatusSocket(dataDir)
	if len(path) > maxSocketPath {
		return BackfillPlan{}, false, nil
	}
	client := socketClient(path)
	defer client.CloseIdleConnections()
	body, _ := json.Marshal(req)
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://auditrelay/backfill", strings.NewReader(string(body)))
	if err != nil {
		return BackfillPlan{}, false, fmt.Errorf("backfill: %w", err)
	}
	resp, err := client.Do(hr)
	if err != nil {
		return BackfillPlan{}, false, nil
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	switch resp.StatusCode {
	case http.StatusOK:
		if err := json.Unmarshal(b, &plan); err != nil {
			return BackfillPlan{}, true, fmt.Errorf("backfill: decode the daemon's answer: %w", err)
		}
		return plan, true, nil
	case http.StatusConflict:
		return BackfillPlan{}, true, errors.New(strings.TrimSpace(string(b)))
	case http.StatusNotFound, http.StatusMethodNotAllowed:
		return BackfillPlan{}, true, errors.New("backfill: the running daemon does not take backfills (an older auditrelay, or store.postgres)")
	}
	return BackfillPlan{}, true, fmt.Errorf("backfill: the daemon answered %s: %s", resp.Status, strings.TrimSpace(string(b)))
}
