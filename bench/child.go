package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// buildBinary compiles ./cmd/auditrelay of the enclosing module into dir;
// with profiling, through an overlay that adds net/http/pprof.
func buildBinary(ctx context.Context, dir string, profiling bool) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", errors.New("go env GOMOD: not inside the auditrelay module; run bench from the repository")
	}
	modDir := filepath.Dir(gomod)
	bin := filepath.Join(dir, "auditrelay")
	args := []string{"build", "-o", bin}
	if profiling {
		overlay, err := overlayFile(dir, modDir)
		if err != nil {
			return "", err
		}
		args = append(args, "-overlay", overlay)
	}
	cmd := exec.CommandContext(ctx, "go", append(args, "./cmd/auditrelay")...)
	cmd.Dir = modDir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0") // measure the static binary the README documents
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/auditrelay: %w\n%s", err, out)
	}
	return bin, nil
}

// runEnv is what one run of a scenario works with.
type runEnv struct {
	run      int // the run's number, from 1; seeds the generators
	bin      string
	dir      string // the run's directory: config, store, sink file, log
	logLevel string
	notes    []string
	logPath  string // the child's log, once started
	// profileDir, when set, receives CPU, heap and allocs profiles of the
	// child (the binary must be a profiling build); profileSeconds is the
	// length of the CPU profile, from the child's start.
	profileDir     string
	profileSeconds int
	name           string   // scenario and run, e.g. "backlog-1"
	childEnv       []string // -child-env, added to the child's environment
	// store, when set, is the PostgreSQL server each child keeps its state
	// in, in a database of its own.
	store *pgStore
	// cleanups run when the run ends, last first.
	cleanups []func()
}

// cleanup runs the run's cleanups, last first.
func (e *runEnv) cleanup() {
	for i := len(e.cleanups) - 1; i >= 0; i-- {
		e.cleanups[i]()
	}
	e.cleanups = nil
}

// note records an observation about the run, reported with its figures.
func (e *runEnv) note(format string, args ...any) {
	e.notes = append(e.notes, fmt.Sprintf(format, args...))
}

// logTail returns the last lines of the child's log, for failure reports.
func (e *runEnv) logTail() string {
	if e.logPath == "" {
		return ""
	}
	b, err := os.ReadFile(e.logPath)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-15):], "\n")
}

// apiServer is the emulator served over HTTP on loopback.
type apiServer struct {
	url string
	srv *http.Server
	ln  net.Listener
}

// serveEmulator serves emu (an emulator) on 127.0.0.1 on a free port.
func serveEmulator(emu http.Handler) (*apiServer, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("listen for the emulator: %w", err)
	}
	s := &apiServer{url: "http://" + ln.Addr().String(), ln: ln,
		srv: &http.Server{Handler: emu, ReadHeaderTimeout: 10 * time.Second}}
	go func() { _ = s.srv.Serve(ln) }() // returns http.ErrServerClosed on Close
	return s, nil
}

// Close stops the server and closes its connections.
func (s *apiServer) Close() {
	_ = s.srv.Close()
}

// freeLoopbackAddr returns a 127.0.0.1 address with a port free right now,
// for metrics_listen.
func freeLoopbackAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("find a free port: %w", err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		return "", fmt.Errorf("find a free port: %w", err)
	}
	return addr, nil
}

// sourceSpec is one pingone source of a configuration; empty strings and
// zero numbers leave the key out, so the daemon's default applies.
type sourceSpec struct {
	name, envID, clientID, secretVar, authMethod string
	pollInterval, settleDelay, overlap, lookback string
	pageSize                                     int
	rateLimit                                    float64
	licence                                      string
}

// configSpec is a whole configuration with one file sink.
type configSpec struct {
	dataDir, metricsListen, logLevel string
	apiURL                           string
	sources                          []sourceSpec
	sinkPath                         string
	batchSize                        int
	maxSize                          string
	// fileFormat is the file sink's format; empty: raw.
	fileFormat string
	// extraSinks are sink entries appended after the file sink, as YAML
	// list items ("  - name: …").
	extraSinks []string
	// postgres keeps the state in PostgreSQL, at the DSN the child's
	// environment holds in childDSNVar, instead of bbolt in dataDir.
	postgres bool
}

// render returns the YAML text of the configuration. Secrets are
// ${env:NAME} references, set on the child's environment.
func (c configSpec) render() string {
	var b strings.Builder
	fmt.Fprintf(&b, "data_dir: %q\n", c.dataDir)
	if c.metricsListen != "" {
		fmt.Fprintf(&b, "metrics_listen: %q\n", c.metricsListen)
	}
	fmt.Fprintf(&b, "log: {level: %s}\n", c.logLevel)
	if c.postgres {
		fmt.Fprintf(&b, "store:\n  postgres:\n    dsn: \"${env:%s}\"\n", childDSNVar)
	}
	b.WriteString("sources:\n")
	for _, s := range c.sources {
		fmt.Fprintf(&b, "  - name: %q\n    pingone:\n", s.name)
		fmt.Fprintf(&b, "      environment_id: %q\n", s.envID)
		fmt.Fprintf(&b, "      client_id: %q\n", s.clientID)
		fmt.Fprintf(&b, "      client_secret: \"${env:%s}\"\n", s.secretVar)
		opt := func(key, v string) {
			if v != "" {
				fmt.Fprintf(&b, "      %s: %s\n", key, v)
			}
		}
		opt("token_auth_method", s.authMethod)
		opt("api_url", c.apiURL)
		opt("auth_url", c.apiURL)
		opt("poll_interval", s.pollInterval)
		opt("settle_delay", s.settleDelay)
		opt("overlap", s.overlap)
		opt("lookback", s.lookback)
		if s.pageSize > 0 {
			opt("page_size", fmt.Sprint(s.pageSize))
		}
		if s.rateLimit > 0 {
			opt("rate_limit", fmt.Sprint(s.rateLimit))
		}
		if s.licence != "" {
			opt("licence", fmt.Sprintf("%q", s.licence))
		}
	}
	b.WriteString("sinks:\n  - name: archive\n    file:\n")
	fmt.Fprintf(&b, "      path: %q\n", c.sinkPath)
	if c.batchSize > 0 {
		fmt.Fprintf(&b, "      batch_size: %d\n", c.batchSize)
	}
	if c.maxSize != "" {
		fmt.Fprintf(&b, "      max_size: %s\n", c.maxSize)
	}
	if c.fileFormat != "" {
		fmt.Fprintf(&b, "      format: %s\n", c.fileFormat)
	}
	for _, s := range c.extraSinks {
		b.WriteString(s)
	}
	return b.String()
}

// child is a running `auditrelay run`.
type child struct {
	cmd     *exec.Cmd
	started time.Time
	done    chan struct{} // closed when the process has been waited for
	err     error         // the Wait error, valid once done is closed
	log     *os.File
	once    sync.Once
	env     *runEnv
	prof    *profiler // nil unless profiling
}

// startChild writes cfg into the run's directory and starts the binary on
// it with env added to the environment. The caller must call kill (usually
// deferred) on every path.
func startChild(ctx context.Context, e *runEnv, cfg configSpec, env []string) (*child, error) {
	if e.store != nil {
		dsn, drop, err := e.store.newDatabase(ctx)
		if err != nil {
			return nil, err
		}
		e.cleanups = append(e.cleanups, drop)
		cfg.postgres = true
		env = append(env, childDSNVar+"="+dsn)
	}
	cfgPath := filepath.Join(e.dir, "auditrelay.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg.render()), 0o600); err != nil {
		return nil, fmt.Errorf("write the configuration: %w", err)
	}
	e.logPath = filepath.Join(e.dir, "auditrelay.log")
	lf, err := os.OpenFile(e.logPath, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open the child's log: %w", err)
	}
	var prof *profiler
	if e.profileDir != "" {
		addr, err := freeLoopbackAddr()
		if err != nil {
			lf.Close()
			return nil, err
		}
		prof = &profiler{addr: addr, dir: e.profileDir, prefix: e.name, seconds: e.profileSeconds}
		env = append(env, pprofEnv+"="+addr)
	}
	cmd := exec.Command(e.bin, "run", "--config", cfgPath)
	cmd.Env = append(append(os.Environ(), e.childEnv...), env...)
	cmd.Stdout, cmd.Stderr = lf, lf
	cmd.Dir = e.dir
	// Should bench die without running its deferred kill, the kernel
	// kills the child.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	c := &child{cmd: cmd, done: make(chan struct{}), log: lf, env: e, prof: prof}
	c.started = time.Now()
	if err := cmd.Start(); err != nil {
		lf.Close()
		return nil, fmt.Errorf("start %s: %w", e.bin, err)
	}
	go func() {
		c.err = cmd.Wait()
		lf.Close()
		close(c.done)
	}()
	if prof != nil {
		prof.startCPU(ctx)
	}
	return c, nil
}

// pid returns the child's process id.
func (c *child) pid() int { return c.cmd.Process.Pid }

// alive returns an error if the child has exited.
func (c *child) alive() error {
	select {
	case <-c.done:
		return fmt.Errorf("auditrelay exited early: %v", c.err)
	default:
		return nil
	}
}

// stop sends SIGTERM and waits for a clean exit, killing the child after
// timeout. It returns an error unless the child exited 0 in time. When
// profiling, it first collects the profiles.
func (c *child) stop(ctx context.Context, timeout time.Duration) error {
	if err := c.alive(); err != nil {
		return err
	}
	if c.prof != nil {
		if err := c.prof.finish(ctx); err != nil {
			c.env.note("profiling: %v", err)
		} else {
			c.env.note("profiles written to %s", filepath.Join(c.prof.dir, c.prof.prefix+"-{cpu,heap,allocs}.pprof"))
		}
	}
	if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return fmt.Errorf("send SIGTERM to auditrelay: %w", err)
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-c.done:
		if c.err != nil {
			return fmt.Errorf("auditrelay did not exit cleanly on SIGTERM: %w", c.err)
		}
		return nil
	case <-t.C:
		c.kill()
		return fmt.Errorf("auditrelay did not exit within %v of SIGTERM", timeout)
	}
}

// kill kills the child if it still runs and waits for it. It is safe to
// call on every exit path, any number of times.
func (c *child) kill() {
	c.once.Do(func() {
		select {
		case <-c.done:
			return
		default:
		}
		_ = c.cmd.Process.Kill()
		<-c.done
	})
}

// waitReady polls the daemon's /readyz until it answers 200.
func waitReady(ctx context.Context, c *child, addr string) error {
	client := &http.Client{Timeout: time.Second}
	url := "http://" + addr + "/readyz"
	for {
		if err := c.alive(); err != nil {
			return err
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return fmt.Errorf("readyz request: %w", err)
		}
		if resp, err := client.Do(req); err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if err := sleepCtx(ctx, 20*time.Millisecond); err != nil {
			return fmt.Errorf("wait for /readyz: %w", err)
		}
	}
}

// sleepCtx sleeps for d or until ctx is done.
func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
