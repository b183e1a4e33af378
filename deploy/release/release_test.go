package main

import (
	"archive/tar"
	"archive/zip"
	"bufio"
	"compress/gzip"
	"context"
	"debug/buildinfo"
	"debug/elf"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

const root = "../.."

// TestBuild cross-compiles every release target, two at a time, and checks
// the archives, SHA256SUMS, the build settings stamped into each binary,
// and that the linux/amd64 binary is static and runs.
func TestBuild(t *testing.T) {
	out := t.TempDir()
	arts, err := Build(context.Background(), Options{Root: root, Out: out, Parallel: 2, Log: testLog{t}})
	if err != nil {
		t.Fatal(err)
	}
	if len(arts) != len(Targets()) {
		t.Fatalf("%d artifacts, want %d", len(arts), len(Targets()))
	}

	sums := readSums(t, filepath.Join(out, "SHA256SUMS"))
	var names []string
	for _, a := range arts {
		name := filepath.Base(a.Archive)
		names = append(names, name)
		if got, err := fileSHA256(a.Archive); err != nil || sums[name] != got {
			t.Errorf("SHA256SUMS has %q for %s, the file hashes to %q (%v)", sums[name], name, got, err)
		}
		checkSettings(t, a)
		checkArchive(t, a)
	}
	if len(sums) != len(arts) {
		t.Errorf("SHA256SUMS names %d files, want %d: %v", len(sums), len(arts), sums)
	}
	v := strings.TrimPrefix(arts[0].Version, "v")
	var want []string
	for _, p := range []string{"darwin_amd64.tar.gz", "darwin_arm64.tar.gz", "linux_amd64.tar.gz", "linux_arm64.tar.gz", "windows_amd64.zip"} {
		want = append(want, "auditrelay_"+v+"_"+p)
	}
	sort.Strings(names)
	if diff := cmp.Diff(want, names); diff != "" {
		t.Errorf("archives (-want +got):\n%s", diff)
	}

	linux := arts[0]
	if linux.Target != (Target{"linux", "amd64"}) {
		t.Fatalf("first artifact is %s, want linux/amd64", linux.Target)
	}
	checkStatic(t, linux.Binary)
	if runtime.GOOS == "linux" && runtime.GOARCH == "amd64" {
		line := runVersion(t, linux.Binary)
		if f := strings.Fields(line); len(f) < 2 || f[0] != "auditrelay" || f[1] != linux.Version {
			t.Errorf("version prints %q, want auditrelay %s first", line, linux.Version)
		}
		if !strings.Contains(line, runtime.Version()) || !strings.Contains(line, "linux/amd64") {
			t.Errorf("version prints %q, want the Go version %s and linux/amd64", line, runtime.Version())
		}
	}
}

// TestBuildStampsCommit builds linux/amd64 from a git checkout of HEAD and
// checks that `auditrelay version` names the commit. The Go command stamps
// no VCS information in a git worktree (whose .git is a file), so there
// the test builds in a temporary clone of HEAD.
func TestBuildStampsCommit(t *testing.T) {
	if runtime.GOOS != "linux" || runtime.GOARCH != "amd64" {
		t.Skip("runs the linux/amd64 binary")
	}
	git, err := exec.LookPath("git")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("git is not on PATH and CI=true: apt-get install git")
		}
		t.Skip("git is not on PATH; to run this test: apt-get install git")
	}
	head, err := exec.Command(git, "-C", root, "rev-parse", "HEAD").Output()
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("not a git checkout and CI=true: %v", err)
		}
		t.Skip("not built from a git checkout; to run this test, run it in one")
	}
	commit := strings.TrimSpace(string(head))
	src := root
	if fi, err := os.Stat(filepath.Join(root, ".git")); err != nil || !fi.IsDir() {
		common, err := exec.Command(git, "-C", root, "rev-parse", "--path-format=absolute", "--git-common-dir").Output()
		if err != nil {
			t.Fatalf("git rev-parse --git-common-dir: %v", err)
		}
		src = filepath.Join(t.TempDir(), "src")
		for _, args := range [][]string{
			{"clone", "--quiet", "--shared", "--no-checkout", strings.TrimSpace(string(common)), src},
			{"-C", src, "checkout", "--quiet", "--detach", commit},
		} {
			if out, err := exec.Command(git, args...).CombinedOutput(); err != nil {
				t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
			}
		}
		t.Logf("a worktree: built from a clone of %s", commit)
	}
	arts, err := Build(context.Background(), Options{Root: src, Out: t.TempDir(), Targets: []Target{{"linux", "amd64"}}, Log: testLog{t}})
	if err != nil {
		t.Fatal(err)
	}
	line := runVersion(t, arts[0].Binary)
	if !strings.Contains(line, "(commit "+commit) {
		t.Errorf("version prints %q, want the commit %s", line, commit)
	}
	if v := arts[0].Version; !strings.Contains(v, commit[:12]) && !strings.HasPrefix(v, "v") {
		t.Errorf("version %q is neither a tag nor a pseudo-version of %s", v, commit)
	}
	if !strings.Contains(filepath.Base(arts[0].Archive), strings.TrimPrefix(arts[0].Version, "v")) {
		t.Errorf("archive %s does not carry the version %s", arts[0].Archive, arts[0].Version)
	}
}

func TestParseTargets(t *testing.T) {
	got, err := parseTargets("linux/amd64, windows/amd64")
	if err != nil || !cmp.Equal(got, []Target{{"linux", "amd64"}, {"windows", "amd64"}}) {
		t.Errorf("parseTargets = %v, %v", got, err)
	}
	for _, bad := range []string{"linux", "/amd64", "linux/", "linux/amd64,"} {
		if _, err := parseTargets(bad); err == nil {
			t.Errorf("parseTargets(%q) accepted", bad)
		}
	}
}

type testLog struct{ t *testing.T }

func (l testLog) Write(p []byte) (int, error) {
	l.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

func readSums(t *testing.T, path string) map[string]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sums := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		sum, name, ok := strings.Cut(sc.Text(), "  ")
		if !ok || len(sum) != 64 {
			t.Errorf("SHA256SUMS line %q is not in sha256sum's format", sc.Text())
			continue
		}
		sums[name] = sum
	}
	return sums
}

// checkSettings reads the build settings stamped into a binary.
func checkSettings(t *testing.T, a Artifact) {
	t.Helper()
	bi, err := buildinfo.ReadFile(a.Binary)
	if err != nil {
		t.Errorf("%s: %v", a.Target, err)
		return
	}
	got := map[string]string{}
	for _, s := range bi.Settings {
		got[s.Key] = s.Value
	}
	for k, v := range map[string]string{"GOOS": a.Target.GOOS, "GOARCH": a.Target.GOARCH, "CGO_ENABLED": "0", "-trimpath": "true"} {
		if got[k] != v {
			t.Errorf("%s: build setting %s = %q, want %q", a.Target, k, got[k], v)
		}
	}
	if bi.Path != "github.com/auditrelay/auditrelay/cmd/auditrelay" {
		t.Errorf("%s: main package %q", a.Target, bi.Path)
	}
}

// checkArchive lists an archive: a top directory named like the archive,
// holding the binary (executable) and the documents.
func checkArchive(t *testing.T, a Artifact) {
	t.Helper()
	base := filepath.Base(a.Archive)
	dir := strings.TrimSuffix(strings.TrimSuffix(base, ".zip"), ".tar.gz")
	modes := map[string]os.FileMode{}
	if strings.HasSuffix(base, ".zip") {
		zr, err := zip.OpenReader(a.Archive)
		if err != nil {
			t.Fatal(err)
		}
		defer zr.Close()
		for _, f := range zr.File {
			modes[f.Name] = f.Mode().Perm()
		}
	} else {
		f, err := os.Open(a.Archive)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		gz, err := gzip.NewReader(f)
		if err != nil {
			t.Fatalf("%s: %v", base, err)
		}
		tr := tar.NewReader(gz)
		for {
			h, err := tr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("%s: %v", base, err)
			}
			modes[h.Name] = h.FileInfo().Mode().Perm()
		}
	}
	want := map[string]os.FileMode{dir + "/" + a.Target.exe(): 0o755, dir + "/LICENSE": 0o644,
		dir + "/README.md": 0o644, dir + "/CHANGELOG.md": 0o644}
	if diff := cmp.Diff(want, modes); diff != "" {
		t.Errorf("%s holds (-want +got):\n%s", base, diff)
	}
}

// checkStatic fails unless an ELF binary is statically linked: no program
// interpreter and no shared library.
func checkStatic(t *testing.T, path string) {
	t.Helper()
	f, err := elf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Errorf("%s has a PT_INTERP program header: not static", path)
		}
	}
	if libs, err := f.ImportedLibraries(); err != nil || len(libs) > 0 {
		t.Errorf("%s imports shared libraries %v (%v)", path, libs, err)
	}
}

func runVersion(t *testing.T, bin string) string {
	t.Helper()
	out, err := exec.Command(bin, "version").CombinedOutput()
	if err != nil {
		t.Fatalf("%s version: %v\n%s", bin, err, out)
	}
	return strings.TrimSpace(string(out))
}
