package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// clockTicks is USER_HZ, the unit of utime and stime in /proc/PID/stat. It
// is 100 on every Linux architecture Go supports.
const clockTicks = 100

// machine describes where the figures were measured.
type machine struct {
	NumCPU    int    `json:"nproc"`
	CPUModel  string `json:"cpuModel"`
	GoVersion string `json:"goVersion"`
	Kernel    string `json:"kernel"`
	Memory    string `json:"memory"`
	// Commit is the repository's HEAD, with "+dirty" when cmd/ or internal/
	// have uncommitted changes (the binary is built from the working tree).
	Commit string `json:"commit"`
}

// describeMachine reads the CPU count and model, the Go toolchain that builds
// the binary, the kernel release and the memory size. Unknown parts read
// "unknown".
func describeMachine(ctx context.Context) machine {
	m := machine{NumCPU: runtime.NumCPU(), CPUModel: "unknown", GoVersion: runtime.Version(), Kernel: "unknown", Memory: "unknown"}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.SplitSeq(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPUModel = strings.TrimSpace(v)
				break
			}
		}
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "go", "version").Output(); err == nil {
		m.GoVersion = strings.TrimSpace(string(out))
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	if kb, err := readKB("/proc/meminfo", "MemTotal"); err == nil {
		m.Memory = fmt.Sprintf("%.1f GiB", float64(kb)/(1<<20))
	}
	m.Commit = commit(ctx)
	return m
}

// commit describes the source the binary is built from: HEAD's short hash,
// and "+dirty" when cmd/ or internal/ differ from it.
func commit(ctx context.Context) string {
	out, err := exec.CommandContext(ctx, "git", "rev-parse", "--short", "HEAD").Output()
	if err != nil {
		return "unknown"
	}
	c := strings.TrimSpace(string(out))
	status, err := exec.CommandContext(ctx, "git", "status", "--porcelain", "--", "cmd", "internal", "go.mod", "go.sum").Output()
	if err != nil || len(bytes.TrimSpace(status)) > 0 {
		c += "+dirty"
	}
	return c
}

// loadAverage returns the 1, 5 and 15 minute load averages, or "unknown".
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

// readKB returns the value in kB of a "Key:  123 kB" line of a /proc file
// such as /proc/PID/status (VmRSS, VmHWM) or /proc/meminfo.
func readKB(path, key string) (int64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, fmt.Errorf("read %s: %w", path, err)
	}
	return parseKB(b, key)
}

// parseKB finds key in the content of a /proc status-style file.
func parseKB(b []byte, key string) (int64, error) {
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok || k != key {
			continue
		}
		fields := strings.Fields(v)
		if len(fields) == 0 {
			return 0, fmt.Errorf("%s: no value", key)
		}
		n, err := strconv.ParseInt(fields[0], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%s: %w", key, err)
		}
		return n, nil
	}
	return 0, fmt.Errorf("%s: not found", key)
}

// processMiB returns a memory figure of a process (VmRSS, VmHWM) in MiB.
func processMiB(pid int, key string) (float64, error) {
	kb, err := readKB(fmt.Sprintf("/proc/%d/status", pid), key)
	if err != nil {
		return 0, err
	}
	return float64(kb) / 1024, nil
}

// memPeaks tracks the largest anonymous and file-backed resident sizes of
// a process seen by sample. VmHWM has no such breakdown; sampling it shows
// how much of a peak is the Go heap and stacks (anonymous) and how much is
// the store's memory-mapped file.
type memPeaks struct {
	anonMiB, fileMiB float64
}

// sample reads /proc/PID/status once and updates the peaks.
func (m *memPeaks) sample(pid int) error {
	path := fmt.Sprintf("/proc/%d/status", pid)
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("read %s: %w", path, err)
	}
	anon, err := parseKB(b, "RssAnon")
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	file, err := parseKB(b, "RssFile")
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	m.anonMiB = max(m.anonMiB, float64(anon)/1024)
	m.fileMiB = max(m.fileMiB, float64(file)/1024)
	return nil
}

// cpuSeconds returns the CPU time a process has used so far, user plus
// system, in seconds.
func cpuSeconds(pid int) (float64, error) {
	path := fmt.Sprintf("/proc/%d/stat", pid)
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, fmt.Errorf("read %s: %w", path, err)
	}
	ticks, err := parseStatCPU(b)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", path, err)
	}
	return float64(ticks) / clockTicks, nil
}

// parseStatCPU returns utime+stime, in clock ticks, from /proc/PID/stat. The
// command name (field 2) is in parentheses and may hold spaces and
// parentheses itself, so fields are counted from the last ')'.
func parseStatCPU(b []byte) (int64, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("no command name in %q", b)
	}
	// After ")": state(3) ppid(4) … utime(14) stime(15).
	f := strings.Fields(string(b[i+1:]))
	const utime, stime = 14 - 3, 15 - 3
	if len(f) <= stime {
		return 0, fmt.Errorf("only %d fields after the command name", len(f))
	}
	u, err := strconv.ParseInt(f[utime], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("utime: %w", err)
	}
	s, err := strconv.ParseInt(f[stime], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("stime: %w", err)
	}
	return u + s, nil
}
