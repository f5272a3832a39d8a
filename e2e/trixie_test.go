package e2e

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// The Debian 13 (trixie) root file system the SDK suite (sdk_test.go) runs
// Kai's client stack in: the SDKs Kai calls LLMs through, as Debian 13
// packages them. It is built once with debootstrap and kept in rootfsCache,
// keyed by everything that goes into it; each test runs on an overlay of it.
var trixie = struct {
	suite, mirror string
	packages      []string
}{
	suite:  "trixie",
	mirror: "http://deb.debian.org/debian",
	packages: []string{"ca-certificates", "curl", "git", "python3", "python3-pip",
		"python3-requests", "python3-httpx", "python3-aiohttp", "python3-openai", "python3-ollama",
		"python3-boto3", "python3-botocore", "python3-grpcio", "python3-google-auth",
		"python3-httplib2", "python3-socksio",
		// debootstrap does not resolve virtual packages: python3-cryptography needs
		// python3-cffi-backend-api-min/-max, python3-grpcio libre2-11-absl20240722,
		// which only these packages provide.
		"python3-cffi-backend", "libre2-11"},
}

// rootfsCache is shared with e2e/containers (its bookworm tar lives there too).
// Everything in it is rebuilt when missing, so deleting it is always safe.
const rootfsCache = "/var/cache/kai-entrypoint-test"

var trixieOnce struct {
	sync.Once
	dir string
	err error
}

// trixieRootfs returns the cached root file system, made now if missing
// (about 2.5 min with a nearby mirror).
func trixieRootfs(t *testing.T) string {
	t.Helper()
	trixieOnce.Do(func() {
		start := time.Now()
		if trixieOnce.dir, trixieOnce.err = makeTrixieRootfs(); trixieOnce.err == nil {
			t.Logf("trixie root file system %s ready after %s", trixieOnce.dir, time.Since(start).Round(time.Millisecond))
		}
	})
	if trixieOnce.err != nil {
		t.Fatalf("debootstrap %s root file system: %v", trixie.suite, trixieOnce.err)
	}
	return trixieOnce.dir
}

func makeTrixieRootfs() (string, error) {
	key := strings.Join(append([]string{trixie.suite, trixie.mirror, "minbase"}, trixie.packages...), "\n")
	sum := sha256.Sum256([]byte(key))
	dir := filepath.Join(rootfsCache, fmt.Sprintf("rootfs-%s-%s", trixie.suite, hex.EncodeToString(sum[:6])))
	if _, err := os.Stat(filepath.Join(dir, "usr", "bin", "python3")); err == nil {
		return dir, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return "", err
	}
	if _, err := exec.LookPath("debootstrap"); err != nil {
		return "", fmt.Errorf("%v (Debian package: debootstrap)", err)
	}
	if err := os.MkdirAll(rootfsCache, 0o755); err != nil {
		return "", err
	}
	// Built beside its final place and renamed into it: a cached folder is
	// always a whole one.
	work, err := os.MkdirTemp(rootfsCache, "debootstrap-"+trixie.suite+"-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(work)
	cmd := exec.Command("debootstrap", "--variant=minbase", "--include="+strings.Join(trixie.packages, ","),
		trixie.suite, work, trixie.mirror)
	cmd.Env = vars{"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"}.list()
	if out, err := cmd.CombinedOutput(); err != nil {
		log, _ := os.ReadFile(filepath.Join(work, "debootstrap", "debootstrap.log"))
		return "", fmt.Errorf("%q: %v\n%s\n--- debootstrap.log (end)\n%s", cmd.Args, err, tail(string(out), 3000), tail(string(log), 6000))
	}
	// debootstrap keeps the packages it installed: 100 MB nobody reads.
	debs, _ := filepath.Glob(filepath.Join(work, "var", "cache", "apt", "archives", "*.deb"))
	for _, f := range debs {
		os.Remove(f)
	}
	if err := os.Rename(work, dir); err != nil {
		return "", err
	}
	return dir, nil
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "..." + s[len(s)-n:]
}

// chroot is one test's view of the trixie root file system: an overlay
// whose writes (the shim, the stand-ins, the system bundle with
// direct.test's CA added) stay in the test's temporary folder, with /proc
// mounted. Everything is unmounted when the test ends; the mounts are in
// the suite's private mount namespace anyway.
type chroot struct{ root string }

// newChroot mounts the overlay and copies in kai-entrypoint (as
// /usr/local/bin/kai-entrypoint), the stand-ins (in /opt/kai-e2e/), the
// suite's /etc/hosts, and appends sysCA to the system bundle.
func newChroot(t *testing.T, sysCA []byte) *chroot {
	t.Helper()
	lower := trixieRootfs(t)
	dir := t.TempDir()
	c := &chroot{root: filepath.Join(dir, "root")}
	upper, work := filepath.Join(dir, "upper"), filepath.Join(dir, "work")
	for _, d := range []string{c.root, upper, work} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	mount := func(argv ...string) {
		if out, err := exec.Command("mount", argv...).CombinedOutput(); err != nil {
			t.Fatalf("mount %q: %v\n%s", argv, err, out)
		}
	}
	mount("-t", "overlay", "overlay", "-o", fmt.Sprintf("lowerdir=%s,upperdir=%s,workdir=%s", lower, upper, work), c.root)
	t.Cleanup(func() { umount(t, c.root) })
	mount("-t", "proc", "proc", filepath.Join(c.root, "proc"))
	t.Cleanup(func() { umount(t, filepath.Join(c.root, "proc")) })

	standins, err := filepath.Abs("testdata")
	if err != nil {
		t.Fatal(err)
	}
	copyFile(t, S.entrypoint, c.path("/usr/local/bin/kai-entrypoint"), 0o755)
	for _, f := range []string{"kai-standin.py", "sdk-standin.py"} {
		copyFile(t, filepath.Join(standins, f), c.path("/opt/kai-e2e/"+f), 0o755)
	}
	if err := os.WriteFile(c.path("/etc/hosts"), []byte(hostsFile), 0o644); err != nil {
		t.Fatal(err)
	}
	sys, err := os.OpenFile(c.path(systemBundle), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer sys.Close()
	if _, err := sys.Write(sysCA); err != nil {
		t.Fatal(err)
	}
	return c
}

// path is p inside the chroot, as seen from the host.
func (c *chroot) path(p string) string { return filepath.Join(c.root, p) }

func umount(t *testing.T, dir string) {
	if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
		t.Errorf("umount %s: %v\n%s", dir, err, out)
	}
}

func copyFile(t *testing.T, src, dst string, mode os.FileMode) {
	t.Helper()
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, data, mode); err != nil {
		t.Fatal(err)
	}
}
