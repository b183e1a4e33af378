package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"time"
)

// pprofEnv is the environment variable that tells a profiling build of the
// binary where to serve net/http/pprof.
const pprofEnv = "AUDITRELAY_BENCH_PPROF"

// pprofSource is added to package main of ./cmd/auditrelay, through a build
// overlay, by -profile: nothing in the repository changes, and the binary
// serves pprof on loopback only when pprofEnv is set.
const pprofSource = `package main

import (
	"net/http"
	_ "net/http/pprof"
	"os"
)

func init() {
	if addr := os.Getenv("` + pprofEnv + `"); addr != "" {
		go func() { _ = http.ListenAndServe(addr, nil) }()
	}
}
`

// overlayFile writes the pprof source and the overlay that adds it to
// ./cmd/auditrelay of the module in modDir, and returns the overlay's path.
func overlayFile(dir, modDir string) (string, error) {
	src := filepath.Join(dir, "bench_pprof.go")
	if err := os.WriteFile(src, []byte(pprofSource), 0o600); err != nil {
		return "", fmt.Errorf("write the pprof overlay source: %w", err)
	}
	overlay := struct {
		Replace map[string]string
	}{Replace: map[string]string{filepath.Join(modDir, "cmd", "auditrelay", "zz_bench_pprof.go"): src}}
	b, err := json.Marshal(overlay)
	if err != nil {
		return "", fmt.Errorf("encode the overlay: %w", err)
	}
	path := filepath.Join(dir, "overlay.json")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		return "", fmt.Errorf("write the overlay: %w", err)
	}
	return path, nil
}

// profiler collects the profiles of one child of a profiling build: a CPU
// profile from its start, then heap and allocs profiles before it stops.
type profiler struct {
	addr    string
	dir     string // where the profiles are written, named by prefix
	prefix  string
	seconds int
	cpuDone chan error
}

// startCPU begins a CPU profile of p.seconds as soon as the child serves
// pprof.
func (p *profiler) startCPU(ctx context.Context) {
	p.cpuDone = make(chan error, 1)
	go func() {
		deadline := time.Now().Add(10 * time.Second)
		for {
			err := fetch(ctx, fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", p.addr, p.seconds),
				filepath.Join(p.dir, p.prefix+"-cpu.pprof"), time.Duration(p.seconds+10)*time.Second)
			if err == nil || time.Now().After(deadline) || ctx.Err() != nil {
				p.cpuDone <- err
				return
			}
			time.Sleep(5 * time.Millisecond) // not listening yet
		}
	}()
}

// finish waits for the CPU profile and fetches the heap and allocs
// profiles. Errors are returned for the run's notes; the run goes on.
func (p *profiler) finish(ctx context.Context) error {
	if p.cpuDone != nil {
		if err := <-p.cpuDone; err != nil {
			return fmt.Errorf("CPU profile: %w", err)
		}
	}
	for _, kind := range []string{"heap", "allocs"} {
		if err := fetch(ctx, "http://"+p.addr+"/debug/pprof/"+kind, filepath.Join(p.dir, p.prefix+"-"+kind+".pprof"), 30*time.Second); err != nil {
			return fmt.Errorf("%s profile: %w", kind, err)
		}
	}
	return nil
}

// fetch GETs url into path.
func fetch(ctx context.Context, url, path string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("request %s: %w", url, err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("get %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("get %s: %s", url, resp.Status)
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("read %s: %w", url, err)
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
