// Command release builds auditrelay's release archives: a static binary
// (CGO_ENABLED=0, -trimpath, VCS build info stamped) for each supported
// platform, packed with LICENSE, README.md and CHANGELOG.md into a .tar.gz
// (a .zip for Windows), and a SHA256SUMS file that `sha256sum -c` checks.
//
// Run it from a git checkout, at the commit or tag to release:
//
//	go run ./deploy/release -out dist
//
// The version in the archive names is the one the binary reports: the tag
// when HEAD is tagged (v1.4.0), a pseudo-version naming the commit
// otherwise.
package main

import (
	"archive/tar"
	"archive/zip"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"debug/buildinfo"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"
)

// Target is one platform to build for.
type Target struct {
	GOOS, GOARCH string
}

// String is GOOS/GOARCH.
func (t Target) String() string { return t.GOOS + "/" + t.GOARCH }

// exe is the binary's file name on the target.
func (t Target) exe() string {
	if t.GOOS == "windows" {
		return "auditrelay.exe"
	}
	return "auditrelay"
}

// Targets returns the platforms a release is built for.
func Targets() []Target {
	return []Target{
		{"linux", "amd64"}, {"linux", "arm64"},
		{"darwin", "amd64"}, {"darwin", "arm64"},
		{"windows", "amd64"},
	}
}

// Options say what to build and where.
type Options struct {
	// Root is the repository's root directory, the main module's.
	Root string
	// Out receives the archives, SHA256SUMS and, under bin/, the binaries.
	Out string
	// Targets to build; Targets() when empty.
	Targets []Target
	// Parallel is how many builds run at once (at least 1).
	Parallel int
	// Log receives one line per step.
	Log io.Writer
}

// Artifact is one built target.
type Artifact struct {
	Target  Target
	Binary  string // path of the binary under Out/bin/GOOS_GOARCH/
	Version string // the module version stamped into it
	Archive string // path of the archive in Out
}

// extraFiles are packed beside the binary in every archive.
func extraFiles() []string { return []string{"LICENSE", "README.md", "CHANGELOG.md"} }

// BuildFlags are the go build flags of a release binary, before -o.
func BuildFlags() []string {
	// -buildvcs=true overrides a GOFLAGS=-buildvcs=false in the environment:
	// the commit is part of what `auditrelay version` reports.
	return []string{"build", "-trimpath", "-buildvcs=true", "-ldflags=-s -w"}
}

// Build builds, packs and checksums every target. It stops at the first
// failure.
func Build(ctx context.Context, o Options) ([]Artifact, error) {
	if len(o.Targets) == 0 {
		o.Targets = Targets()
	}
	if o.Parallel < 1 {
		o.Parallel = 1
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	if err := os.MkdirAll(o.Out, 0o755); err != nil {
		return nil, fmt.Errorf("release: %w", err)
	}
	arts := make([]Artifact, len(o.Targets))
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	sem := make(chan struct{}, o.Parallel)
	var wg sync.WaitGroup
	var logMu sync.Mutex
	for i, t := range o.Targets {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			if ctx.Err() != nil {
				return
			}
			start := time.Now()
			a, err := buildOne(ctx, o, t)
			if err != nil {
				// The first failure stops the other builds and is the
				// one reported.
				cancel(fmt.Errorf("release %s: %w", t, err))
				return
			}
			arts[i] = a
			logMu.Lock()
			fmt.Fprintf(o.Log, "%s: %s (%s) in %s\n", t, filepath.Base(a.Archive), a.Version, time.Since(start).Round(100*time.Millisecond))
			logMu.Unlock()
		})
	}
	wg.Wait()
	if ctx.Err() != nil {
		return nil, context.Cause(ctx)
	}
	if err := writeSums(o.Out, arts); err != nil {
		return nil, err
	}
	return arts, nil
}

// buildOne builds one target's binary and archive.
func buildOne(ctx context.Context, o Options, t Target) (Artifact, error) {
	a := Artifact{Target: t, Binary: filepath.Join(o.Out, "bin", t.GOOS+"_"+t.GOARCH, t.exe())}
	args := append(BuildFlags(), "-o", a.Binary, "./cmd/auditrelay")
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = o.Root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS="+t.GOOS, "GOARCH="+t.GOARCH)
	if out, err := cmd.CombinedOutput(); err != nil {
		return a, fmt.Errorf("go %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	bi, err := buildinfo.ReadFile(a.Binary)
	if err != nil {
		return a, fmt.Errorf("reading the build info of %s: %w", a.Binary, err)
	}
	a.Version = bi.Main.Version
	if a.Version == "" || a.Version == "(devel)" {
		a.Version = "devel"
	}
	base := fmt.Sprintf("auditrelay_%s_%s_%s", strings.TrimPrefix(a.Version, "v"), t.GOOS, t.GOARCH)
	files := []string{a.Binary}
	for _, f := range extraFiles() {
		files = append(files, filepath.Join(o.Root, f))
	}
	if t.GOOS == "windows" {
		a.Archive = filepath.Join(o.Out, base+".zip")
		err = writeZip(a.Archive, base, files)
	} else {
		a.Archive = filepath.Join(o.Out, base+".tar.gz")
		err = writeTarGz(a.Archive, base, files)
	}
	return a, err
}

// writeTarGz packs files under dir/ in a gzipped tar, the binary (the
// first file) executable.
func writeTarGz(path, dir string, files []string) (err error) {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("creating %s: %w", path, err)
	}
	defer func() {
		if cerr := f.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("writing %s: %w", path, cerr)
		}
	}()
	gz := gzip.NewWriter(f)
	tw := tar.NewWriter(gz)
	for i, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			return fmt.Errorf("packing %s: %w", name, err)
		}
		mode := int64(0o644)
		if i == 0 {
			mode = 0o755
		}
		h := &tar.Header{Name: dir + "/" + filepath.Base(name), Mode: mode, Size: int64(len(b)),
			ModTime: time.Unix(0, 0), Typeflag: tar.TypeReg, Format: tar.FormatPAX}
		if err := tw.WriteHeader(h); err != nil {
			return fmt.Errorf("packing %s: %w", name, err)
		}
		if _, err := tw.Write(b); err != nil {
			return fmt.Errorf("packing %s: %w", name, err)
		}
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := gz.Close(); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}

// writeZip packs files under dir/ in a zip.
func writeZip(path, dir string, files []string) (err error) {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("creating %s: %w", path, err)
	}
	defer func() {
		if cerr := f.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("writing %s: %w", path, cerr)
		}
	}()
	zw := zip.NewWriter(f)
	for i, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			return fmt.Errorf("packing %s: %w", name, err)
		}
		h := &zip.FileHeader{Name: dir + "/" + filepath.Base(name), Method: zip.Deflate, Modified: time.Unix(0, 0).UTC()}
		mode := os.FileMode(0o644)
		if i == 0 {
			mode = 0o755
		}
		h.SetMode(mode)
		w, err := zw.CreateHeader(h)
		if err != nil {
			return fmt.Errorf("packing %s: %w", name, err)
		}
		if _, err := w.Write(b); err != nil {
			return fmt.Errorf("packing %s: %w", name, err)
		}
	}
	if err := zw.Close(); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}

// writeSums writes out/SHA256SUMS over the archives, in the format of
// sha256sum (two spaces, then the file name), sorted by name.
func writeSums(out string, arts []Artifact) error {
	var lines []string
	for _, a := range arts {
		sum, err := fileSHA256(a.Archive)
		if err != nil {
			return err
		}
		lines = append(lines, sum+"  "+filepath.Base(a.Archive)+"\n")
	}
	sort.Strings(lines)
	path := filepath.Join(out, "SHA256SUMS")
	if err := os.WriteFile(path, []byte(strings.Join(lines, "")), 0o644); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}

// fileSHA256 returns the hex SHA-256 of a file's contents.
func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("checksum: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("checksum of %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// parseTargets reads a comma-separated list of GOOS/GOARCH.
func parseTargets(s string) ([]Target, error) {
	if s == "" {
		return nil, nil
	}
	var ts []Target
	for _, p := range strings.Split(s, ",") {
		goos, goarch, ok := strings.Cut(strings.TrimSpace(p), "/")
		if !ok || goos == "" || goarch == "" {
			return nil, fmt.Errorf("target %q: want GOOS/GOARCH, such as linux/amd64", p)
		}
		ts = append(ts, Target{goos, goarch})
	}
	return ts, nil
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("release", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("out", "dist", "directory for the archives and SHA256SUMS")
	root := fs.String("root", ".", "the repository's root directory")
	targets := fs.String("targets", "", "comma-separated GOOS/GOARCH list (default: every release platform)")
	parallel := fs.Int("parallel", 2, "builds at once")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	ts, err := parseTargets(*targets)
	if err != nil {
		fmt.Fprintln(stderr, "release:", err)
		return 2
	}
	arts, err := Build(ctx, Options{Root: *root, Out: *out, Targets: ts, Parallel: *parallel, Log: stdout})
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	fmt.Fprintf(stdout, "%d archives and SHA256SUMS in %s\n", len(arts), *out)
	return 0
}
