package deploy_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

const unitBinary = "/usr/local/bin/auditrelay"

// unitCopy builds auditrelay into a temporary directory and writes a copy
// of the unit whose ExecStart runs it: systemd-analyze verify wants the
// binary to exist.
func unitCopy(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("systemd/auditrelay.service")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), "ExecStart="+unitBinary+" run ") {
		t.Fatalf("the unit's ExecStart does not run %s", unitBinary)
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "auditrelay")
	build := exec.Command("go", "build", "-o", bin, "github.com/auditrelay/auditrelay/cmd/auditrelay")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	unit := filepath.Join(dir, "auditrelay.service")
	if err := os.WriteFile(unit, []byte(strings.ReplaceAll(string(b), unitBinary, bin)), 0o644); err != nil {
		t.Fatal(err)
	}
	return unit
}

func TestSystemdUnit(t *testing.T) {
	sa := needTool(t, "systemd-analyze", "apt-get install systemd")
	unit := unitCopy(t)

	// verify exits 0 on unknown keys and bad values, which it only prints:
	// any output is a failure.
	out, err := exec.Command(sa, "verify", unit).CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}

	if help, _ := exec.Command(sa, "security", "--help").CombinedOutput(); !strings.Contains(string(help), "--offline") {
		if os.Getenv("CI") == "true" {
			t.Fatal("systemd-analyze security has no --offline and CI=true: systemd 250 or later is needed")
		}
		t.Skip("systemd-analyze security has no --offline (systemd 250 or later); the exposure score is not checked")
	}
	out, err = exec.Command(sa, "security", "--offline=true", unit).CombinedOutput()
	if err != nil {
		t.Fatalf("systemd-analyze security: %v\n%s", err, out)
	}
	m := regexp.MustCompile(`Overall exposure level for \S+: ([0-9.]+)`).FindStringSubmatch(string(out))
	if m == nil {
		t.Fatalf("no exposure level in the output:\n%s", out)
	}
	score, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("systemd-analyze security: exposure %.1f", score)
	if score > 2.0 {
		t.Errorf("exposure %.1f, want at most 2.0:\n%s", score, out)
	}
}

// TestSystemdUnitSettings keeps the settings the daemon relies on: where
// it reads its configuration and secrets, where it keeps its state, and how
// it is stopped.
func TestSystemdUnitSettings(t *testing.T) {
	b, err := os.ReadFile("systemd/auditrelay.service")
	if err != nil {
		t.Fatal(err)
	}
	lines := map[string]bool{}
	for _, l := range strings.Split(string(b), "\n") {
		lines[strings.TrimSpace(l)] = true
	}
	for _, want := range []string{
		"[Unit]", "[Service]", "[Install]", "WantedBy=multi-user.target",
		"ExecStart=/usr/local/bin/auditrelay run --config /etc/auditrelay/auditrelay.yaml",
		"EnvironmentFile=-/etc/auditrelay/secrets.env", "DynamicUser=yes", "StateDirectory=auditrelay",
		"ReadWritePaths=/var/lib/auditrelay", "Restart=always", "KillSignal=SIGTERM",
		"ProtectSystem=strict", "NoNewPrivileges=yes", "CapabilityBoundingSet=", "UMask=0077",
		"RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX", "SystemCallFilter=@system-service",
		"SystemCallArchitectures=native", "MemoryDenyWriteExecute=yes",
	} {
		if !lines[want] {
			t.Errorf("systemd/auditrelay.service lacks %q", want)
		}
	}
}
