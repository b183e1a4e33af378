package deploy_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// maxImageBytes bounds the container image's size.
const maxImageBytes = 25_000_000

// TestContainerImage builds the image with deploy/container/build.sh into
// a throwaway podman storage (the vfs driver, under a temporary directory),
// checks its configuration, and runs the binary it holds from the image's
// mounted root filesystem: containers cannot run on the CI machines, but
// images can be built and mounted.
func TestContainerImage(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the image's binary runs on Linux only")
	}
	podman := needTool(t, "podman", "apt-get install podman buildah")
	dir := t.TempDir()
	storage := filepath.Join(dir, "storage.conf")
	containers := filepath.Join(dir, "containers.conf")
	for path, text := range map[string]string{
		storage: "[storage]\ndriver = \"vfs\"\ngraphroot = \"" + filepath.Join(dir, "root") +
			"\"\nrunroot = \"" + filepath.Join(dir, "run") + "\"\n",
		containers: "[engine]\ntmp_dir = \"" + filepath.Join(dir, "tmp") + "\"\nevents_logger = \"none\"\n",
	} {
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	env := append(os.Environ(), "CONTAINERS_STORAGE_CONF="+storage, "CONTAINERS_CONF="+containers, "ARCH="+runtime.GOARCH)
	podmanOut := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(podman, args...)
		cmd.Env = env
		out, err := cmd.Output()
		if err != nil {
			var stderr []byte
			if ee, ok := err.(*exec.ExitError); ok {
				stderr = ee.Stderr
			}
			t.Fatalf("podman %s: %v\n%s%s", strings.Join(args, " "), err, out, stderr)
		}
		return string(out)
	}

	const image = "localhost/auditrelay:test"
	build := exec.Command("bash", "container/build.sh", image)
	build.Env = env
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("container/build.sh: %v\n%s", err, out)
	}

	var inspect []struct {
		Size         int64
		Architecture string
		Os           string
		Config       struct {
			User       string
			Entrypoint []string
			Cmd        []string
			Volumes    map[string]struct{}
			WorkingDir string
			Labels     map[string]string
		}
	}
	if err := json.Unmarshal([]byte(podmanOut("image", "inspect", image)), &inspect); err != nil || len(inspect) != 1 {
		t.Fatalf("podman image inspect: %v (%d images)", err, len(inspect))
	}
	img := inspect[0]
	t.Logf("image %s: %d bytes, user %s, %s/%s", image, img.Size, img.Config.User, img.Os, img.Architecture)
	if img.Size > maxImageBytes {
		t.Errorf("image size %d bytes, want at most %d", img.Size, maxImageBytes)
	}
	if u, _, _ := strings.Cut(img.Config.User, ":"); u == "" || u == "0" || u == "root" {
		t.Errorf("image user %q: want a non-root numeric user", img.Config.User)
	}
	if img.Os != "linux" || img.Architecture != runtime.GOARCH {
		t.Errorf("image platform %s/%s, want linux/%s", img.Os, img.Architecture, runtime.GOARCH)
	}
	if diff := cmp.Diff([]string{"/auditrelay"}, img.Config.Entrypoint); diff != "" {
		t.Errorf("entrypoint (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"run", "--config", "/etc/auditrelay/auditrelay.yaml"}, img.Config.Cmd); diff != "" {
		t.Errorf("cmd (-want +got):\n%s", diff)
	}
	if _, ok := img.Config.Volumes["/data"]; !ok {
		t.Errorf("volumes %v, want /data", img.Config.Volumes)
	}
	for _, k := range []string{"title", "description", "licenses", "source", "version", "revision", "created"} {
		if img.Config.Labels["org.opencontainers.image."+k] == "" {
			t.Errorf("label org.opencontainers.image.%s is missing: %v", k, img.Config.Labels)
		}
	}
	if l := img.Config.Labels["org.opencontainers.image.licenses"]; l != "Apache-2.0" {
		t.Errorf("licenses label %q", l)
	}
	if gitDir, err := os.Stat("../.git"); err == nil && gitDir.IsDir() {
		// Only a clone stamps the commit: the go command sees none in a worktree.
		head := strings.TrimSpace(run(t, "..", "git", "rev-parse", "HEAD"))
		if r := img.Config.Labels["org.opencontainers.image.revision"]; r != head {
			t.Errorf("revision label %q, want HEAD %s", r, head)
		}
	}

	root := strings.TrimSpace(podmanOut("image", "mount", image))
	t.Cleanup(func() {
		cmd := exec.Command(podman, "image", "unmount", image)
		cmd.Env = env
		cmd.Run()
	})
	fi, err := os.Stat(filepath.Join(root, "data"))
	if err != nil || !fi.IsDir() {
		t.Errorf("the image has no /data directory: %v", err)
	} else if st, ok := fi.Sys().(*syscall.Stat_t); !ok || strconv.Itoa(int(st.Uid)) != strings.Split(img.Config.User, ":")[0] {
		t.Errorf("/data is owned by %+v, not by the image's user %s", fi.Sys(), img.Config.User)
	}
	for _, f := range []string{"etc/ssl/certs/ca-certificates.crt", "etc/passwd", "etc/group"} {
		if fi, err := os.Stat(filepath.Join(root, f)); err != nil || fi.Size() == 0 {
			t.Errorf("the image lacks /%s: %v", f, err)
		}
	}
	bin := filepath.Join(root, "auditrelay")
	version := run(t, dir, bin, "version")
	if f := strings.Fields(version); len(f) < 2 || f[0] != "auditrelay" || f[1] != img.Config.Labels["org.opencontainers.image.version"] {
		t.Errorf("version prints %q, want auditrelay and the version label %q", version, img.Config.Labels["org.opencontainers.image.version"])
	}
	validate := exec.Command(bin, "validate", "--config", "../examples/container.yaml")
	validate.Env = append(os.Environ(), "PINGONE_CLIENT_SECRET=example-secret")
	if out, err := validate.CombinedOutput(); err != nil {
		t.Errorf("the image's auditrelay validate --config examples/container.yaml: %v\n%s", err, out)
	}
}
