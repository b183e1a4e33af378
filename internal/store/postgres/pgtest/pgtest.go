// Package pgtest gives tests a real PostgreSQL: the server named by
// $AUDITRELAY_TEST_POSTGRES_DSN, or else a throwaway cluster it starts
// once per test binary from the PostgreSQL binaries it finds (initdb and
// postgres on PATH or in /usr/lib/postgresql/*/bin), listening only on a
// unix socket in a temporary directory. Each test gets a database of its
// own. Without either, the tests that need PostgreSQL skip with a line
// saying how to run them, and fail when CI=true.
//
// A package's TestMain calls Main (or MainWith, for a cluster that syncs
// to disk as a production server does); its tests call DSN. Programs that
// are not tests, such as the bench harness, call StartCluster.
package pgtest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// EnvDSN names the variable holding the DSN of a server for the tests. Its
// user must be allowed to create databases.
const EnvDSN = "AUDITRELAY_TEST_POSTGRES_DSN"

// Options tune a cluster started here.
type Options struct {
	// Durable runs the cluster with fsync and full_page_writes on, as a
	// production server runs: a commit waits for its WAL to reach the
	// disk. By default both are off, which makes the tests faster and
	// their figures meaningless for a real server. synchronous_commit is
	// on either way.
	Durable bool
}

// Server is a PostgreSQL the tests of one binary share.
type Server struct {
	// DSN connects to its maintenance database as a user that may create
	// databases.
	DSN string
	// dir holds the cluster started here ("" for a server from EnvDSN).
	dir, bin, sockDir string
	opts              Options
	cred              *credential
	proc              *exec.Cmd
	mu                sync.Mutex
	n                 atomic.Int64
}

// current is the server of this test binary, set by Main before any test
// runs; why says why there is none.
var current struct {
	srv *Server
	why string
}

// Main starts a server for the tests of m (unless $AUDITRELAY_TEST_POSTGRES_DSN
// names one), runs them, stops the server and returns m.Run's code.
func Main(m *testing.M) int {
	return MainWith(m, Options{})
}

// MainWith is Main with a cluster started with opts (a server from
// $AUDITRELAY_TEST_POSTGRES_DSN runs as it is configured).
func MainWith(m *testing.M, opts Options) int {
	srv, why := start(opts)
	current.srv, current.why = srv, why
	code := m.Run()
	if srv != nil {
		srv.Close()
	}
	return code
}

// Get returns the server of this test binary; without one it skips t (or,
// under CI=true, fails it) saying how to run the test.
func Get(t testing.TB) *Server {
	t.Helper()
	if current.srv == nil {
		why := current.why
		if why == "" {
			why = "pgtest.Main was not called from TestMain"
		}
		msg := "needs PostgreSQL: " + why + "; set " + EnvDSN + " to a server's DSN, or install PostgreSQL (Debian: apt-get install postgresql) so that initdb is found"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return current.srv
}

// DSN returns the DSN of a new, empty database for t, dropped after it.
func DSN(t testing.TB) string {
	t.Helper()
	return Get(t).NewDatabase(t)
}

// NewDatabase creates an empty database, dropped when t ends, and returns
// its DSN.
func (s *Server) NewDatabase(t testing.TB) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dsn, drop, err := s.CreateDatabase(ctx, "auditrelay_test")
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := drop(ctx); err != nil {
			t.Logf("pgtest: %v", err)
		}
	})
	return dsn
}

// CreateDatabase creates an empty database named prefix, this process's
// pid and a counter, and returns its DSN and the function that drops it
// (closing its connections). Its errors do not hold the server's DSN.
func (s *Server) CreateDatabase(ctx context.Context, prefix string) (dsn string, drop func(context.Context) error, err error) {
	name := fmt.Sprintf("%s_%d_%d", prefix, os.Getpid(), s.n.Add(1))
	if err := s.exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		return "", nil, fmt.Errorf("create database %s: %w", name, err)
	}
	drop = func(ctx context.Context) error {
		if err := s.exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
			return fmt.Errorf("drop database %s: %w", name, err)
		}
		return nil
	}
	return withDatabase(s.DSN, name), drop, nil
}

func (s *Server) exec(ctx context.Context, sql string) error {
	conn, err := pgx.Connect(ctx, s.DSN)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, sql)
	return err
}

// withDatabase returns dsn with its database set to db.
func withDatabase(dsn, db string) string {
	if strings.Contains(dsn, "://") {
		base, query, _ := strings.Cut(dsn, "?")
		i := strings.Index(base, "://") + 3
		if j := strings.Index(base[i:], "/"); j >= 0 {
			base = base[:i+j]
		}
		out := base + "/" + db
		if query != "" {
			out += "?" + query
		}
		return out
	}
	return dsn + " dbname=" + db
}

// Restart stops the cluster started here (fast shutdown: connections are
// cut, as in an outage) and starts it again after down. It is for tests of
// outages; it fails for a server from EnvDSN.
func (s *Server) Restart(down time.Duration) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.dir == "" {
		return errors.New("pgtest: cannot restart a server given by " + EnvDSN)
	}
	s.halt()
	time.Sleep(down)
	return s.run()
}

// Stop stops the cluster started here with a fast shutdown (pg_ctl stop
// -m fast: connections are cut), until Start.
func (s *Server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.halt()
}

// Crash stops the cluster started here at once, as pg_ctl stop -m
// immediate does (the server exits without a checkpoint and recovers from
// its WAL at the next start), until Start.
func (s *Server) Crash() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.signalAndWait(syscall.SIGQUIT)
}

// Start starts again a cluster stopped by Stop or Crash.
func (s *Server) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.run()
}

// Restartable reports whether the server was started here, so that
// Restart, Stop and Start work.
func (s *Server) Restartable() bool { return s.dir != "" }

// ServerFromEnv returns the server $AUDITRELAY_TEST_POSTGRES_DSN names, or
// nil when it is unset.
func ServerFromEnv() *Server {
	if dsn := os.Getenv(EnvDSN); dsn != "" {
		return &Server{DSN: dsn}
	}
	return nil
}

func start(opts Options) (*Server, string) {
	if s := ServerFromEnv(); s != nil {
		return s, ""
	}
	s, err := StartCluster(opts)
	if err != nil {
		return nil, err.Error()
	}
	return s, ""
}

// Own starts a cluster for t alone, closed when t ends: for a test that
// stops and restarts its server (Stop, Crash, Start, Restart) while the
// other tests of the binary keep using theirs. It needs the PostgreSQL
// binaries even when $AUDITRELAY_TEST_POSTGRES_DSN is set; without them
// it skips t, or fails it under CI=true.
func Own(t testing.TB) *Server {
	t.Helper()
	s, err := StartCluster(Options{})
	if err != nil {
		msg := "needs PostgreSQL binaries to start a server of its own: " + err.Error() + "; install PostgreSQL (Debian: apt-get install postgresql) so that initdb is found"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	t.Cleanup(s.Close)
	return s
}

// StartCluster creates a throwaway cluster in a temporary directory (as
// the unprivileged postgres or nobody user when running as root) and
// starts it, listening only on a unix socket there. The server is killed
// with this process; Close stops it and removes the directory.
func StartCluster(opts Options) (*Server, error) {
	bin, err := findBinaries()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "auditrelay-pg-")
	if err != nil {
		return nil, err
	}
	s := &Server{dir: dir, bin: bin, sockDir: dir, opts: opts}
	if os.Geteuid() == 0 {
		// PostgreSQL refuses to run as root.
		cred, err := unprivileged()
		if err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
		s.cred = cred
		if err := os.Chown(dir, int(cred.uid), int(cred.gid)); err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
	}
	init := exec.Command(filepath.Join(bin, "initdb"), "-D", filepath.Join(dir, "data"), "-A", "trust", "-U", "test",
		"--no-sync", "-E", "UTF8", "--locale=C")
	s.cred.apply(init)
	if out, err := init.CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("initdb failed: %v: %s", err, lastLine(out))
	}
	s.DSN = "host=" + dir + " port=5432 user=test dbname=postgres sslmode=disable"
	if err := s.run(); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	return s, nil
}

// run starts postgres on the cluster and waits until it accepts
// connections. The server is a child of the test binary, killed with it.
func (s *Server) run() error {
	sync := "off"
	if s.opts.Durable {
		sync = "on"
	}
	cmd := exec.Command(filepath.Join(s.bin, "postgres"), "-D", filepath.Join(s.dir, "data"),
		"-k", s.sockDir, "-c", "listen_addresses=", "-p", "5432",
		"-c", "fsync="+sync, "-c", "full_page_writes="+sync, "-c", "synchronous_commit=on",
		"-c", "max_connections=300", "-c", "shared_buffers=64MB")
	s.cred.apply(cmd)
	s.cred.dieWithParent(cmd)
	log, err := os.OpenFile(filepath.Join(s.dir, "postgres.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		log.Close()
		return fmt.Errorf("start postgres: %w", err)
	}
	log.Close()
	s.proc = cmd
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		conn, err := pgx.Connect(ctx, s.DSN)
		cancel()
		if err == nil {
			conn.Close(context.Background())
			return nil
		}
		if time.Now().After(deadline) {
			s.halt()
			b, _ := os.ReadFile(filepath.Join(s.dir, "postgres.log"))
			return fmt.Errorf("postgres did not start: %v: %s", err, lastLine(b))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// halt stops postgres with a fast shutdown and waits for it.
func (s *Server) halt() { s.signalAndWait(os.Interrupt) }

// signalAndWait sends sig to postgres and waits for it to exit, killing it
// after 20 s.
func (s *Server) signalAndWait(sig os.Signal) {
	if s.proc == nil {
		return
	}
	s.proc.Process.Signal(sig)
	done := make(chan struct{})
	go func() { s.proc.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		s.proc.Process.Kill()
		<-done
	}
	s.proc = nil
}

// Close stops the cluster started here and removes its directory; it
// does nothing for a server from $AUDITRELAY_TEST_POSTGRES_DSN.
func (s *Server) Close() {
	if s.dir == "" {
		return
	}
	s.mu.Lock()
	s.halt()
	s.mu.Unlock()
	os.RemoveAll(s.dir)
}

// findBinaries returns the directory of initdb and postgres: PATH first,
// then the newest /usr/lib/postgresql/<version>/bin (where Debian puts
// them, off PATH).
func findBinaries() (string, error) {
	if p, err := exec.LookPath("initdb"); err == nil {
		if dir := filepath.Dir(p); fileExists(filepath.Join(dir, "postgres")) {
			return dir, nil
		}
		if real, err := filepath.EvalSymlinks(p); err == nil && fileExists(filepath.Join(filepath.Dir(real), "postgres")) {
			return filepath.Dir(real), nil
		}
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return version(dirs[i]) > version(dirs[j]) })
	for _, d := range dirs {
		if fileExists(filepath.Join(d, "initdb")) && fileExists(filepath.Join(d, "postgres")) {
			return d, nil
		}
	}
	return "", errors.New("no initdb on PATH or in /usr/lib/postgresql/*/bin")
}

func version(binDir string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return n
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// unprivileged returns the user to run PostgreSQL as when the tests run as
// root: postgres (Debian's package creates it), else nobody.
func unprivileged() (*credential, error) {
	for _, name := range []string{"postgres", "nobody"} {
		u, err := user.Lookup(name)
		if err != nil {
			continue
		}
		uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
		gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
		if err1 == nil && err2 == nil {
			return &credential{uid: uint32(uid), gid: uint32(gid)}, nil
		}
	}
	return nil, errors.New("running as root and no unprivileged user (postgres or nobody) to run PostgreSQL as")
}

func lastLine(b []byte) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return lines[len(lines)-1]
}
