package e2e

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

const (
	// nsMarker is set in the environment of the test binary re-executed
	// inside the private mount and PID namespace.
	nsMarker = "KAI_E2E_IN_NAMESPACE"
	// goClientMarker makes the test binary act as the Go net/http client
	// (see goclient_test.go) instead of running tests.
	goClientMarker = "KAI_E2E_GO_CLIENT"
	// entrypointOverride names a prebuilt kai-entrypoint to test instead
	// of building one from the tree.
	entrypointOverride = "KAI_E2E_ENTRYPOINT"
	// tableOut names a file the "Verified with" markdown table is written to.
	tableOut = "KAI_E2E_TABLE_OUT"

	upstreamHost = "upstream.test" // proxied upstream, CA known only to mitmproxy
	upstreamIP   = "127.0.0.2"
	directHost   = "direct.test" // reached directly, CA only in the "system" bundle
	directIP     = "127.0.0.3"

	systemBundle = "/etc/ssl/certs/ca-certificates.crt"
	python       = "/usr/bin/python3"
)

// hostsFile is bind-mounted over /etc/hosts inside the namespace so that the
// test host names resolve to loopback addresses, for every client and for
// mitmdump, without any DNS query. Go's net/http never proxies loopback IPs,
// and NO_PROXY tests need names, so names are required.
var hostsFile = fmt.Sprintf("127.0.0.1 localhost\n::1 localhost\n%s %s\n%s %s\n",
	upstreamIP, upstreamHost, directIP, directHost)

// S is the state shared by all tests, set up by TestMain.
var S struct {
	dir        string // suite temp dir, removed at exit
	setupErr   error  // missing dependency: skip locally, fail in CI
	buildErr   error  // kai-entrypoint could not be built: always a failure
	entrypoint string // kai-entrypoint binary
	standin    string // absolute path of testdata/kai-standin.py
	self       string // this test binary (the Go client)

	upstream *tlsServer // https://upstream.test:P
	direct   *tlsServer // https://direct.test:P
	sysCerts string     // private copy of the system bundle + direct's CA
}

func TestMain(m *testing.M) {
	if os.Getenv(goClientMarker) == "1" {
		os.Exit(goClientMain(os.Args[1:]))
	}
	if os.Getenv(nsMarker) == "" {
		code, err := reexecInNamespace()
		if err == nil {
			os.Exit(code)
		}
		S.setupErr = err
	}
	os.Exit(runSuite(m))
}

// reexecInNamespace runs this test binary again, with the same arguments,
// inside new mount and PID namespaces where /etc/hosts is a private file.
// The real /etc/hosts is never touched. When the re-executed binary (PID 1
// of the new namespace) exits, the kernel kills every process left in the
// namespace, so no mitmdump or client outlives the suite even after a panic
// or a test timeout. It returns an error only when the namespace cannot be
// made; the caller then runs the tests, which skip or fail with that error.
func reexecInNamespace() (int, error) {
	if _, err := exec.LookPath("unshare"); err != nil {
		return 0, errors.New("unshare not found (Debian package: util-linux)")
	}
	// Everything the suite writes goes under dir (TMPDIR for the re-run
	// binary), removed here even if that binary panics or times out.
	dir, err := os.MkdirTemp("", "kai-e2e-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(dir)
	hosts := filepath.Join(dir, "hosts")
	if err := os.WriteFile(hosts, []byte(hostsFile), 0o644); err != nil {
		return 0, err
	}
	self, err := os.Executable()
	if err != nil {
		return 0, err
	}
	// unshare --propagation defaults to private, so the bind mount stays
	// in the new namespace.
	prefix := []string{"unshare", "--mount", "--pid", "--fork", "--kill-child", "--mount-proc",
		"sh", "-c", `mount --bind "$KAI_E2E_HOSTS" /etc/hosts && exec "$0" "$@"`}
	probe := exec.Command(prefix[0], append(prefix[1:], "getent", "hosts", upstreamHost)...)
	probe.Env = append(os.Environ(), "KAI_E2E_HOSTS="+hosts)
	out, err := probe.CombinedOutput()
	if err != nil || !strings.Contains(string(out), upstreamIP) {
		return 0, fmt.Errorf("cannot make a private mount+PID namespace with its own /etc/hosts "+
			"(needs root and util-linux's unshare): %v: %s", err, bytes.TrimSpace(out))
	}
	cmd := exec.Command(prefix[0], append(append(prefix[1:], self), os.Args[1:]...)...)
	cmd.Env = append(os.Environ(), "KAI_E2E_HOSTS="+hosts, nsMarker+"=1", "TMPDIR="+dir)
	// If this process is killed (go test's own timeout), unshare gets
	// SIGKILL and --kill-child takes the namespace down with it. The
	// parent-death signal belongs to the forking thread: keep it alive.
	runtime.LockOSThread()
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	err = cmd.Run()
	var exitErr *exec.ExitError
	if errors.As(err, &exitErr) {
		return exitErr.ExitCode(), nil
	}
	if err != nil {
		return 0, err
	}
	return 0, nil
}

func runSuite(m *testing.M) int {
	dir, err := os.MkdirTemp("", "kai-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	S.dir = dir
	defer os.RemoveAll(dir)

	S.setupErr = errors.Join(S.setupErr, checkDependencies())
	if S.setupErr == nil {
		if err := setupServers(); err != nil {
			fmt.Fprintln(os.Stderr, "e2e: setup:", err)
			return 1
		}
		defer S.upstream.Close()
		defer S.direct.Close()
		S.entrypoint, S.buildErr = buildEntrypoint(dir)
	}
	code := m.Run()
	stopSharedMitm()
	writeTable()
	return code
}

// requireSuite stops the test when the suite could not be set up: a failure
// in CI (CI=true, or any true value of strconv.ParseBool) or when
// kai-entrypoint does not build, a skip otherwise.
func requireSuite(t *testing.T) {
	t.Helper()
	if S.setupErr != nil {
		if ci, _ := strconv.ParseBool(os.Getenv("CI")); ci {
			t.Fatalf("end-to-end dependency missing (CI=true, so this is a failure): %v", S.setupErr)
		}
		t.Skipf("end-to-end dependency missing: %v", S.setupErr)
	}
	if S.buildErr != nil {
		t.Fatalf("building kai-entrypoint: %v", S.buildErr)
	}
}

// checkDependencies reports every missing tool or module at once, each with
// the Debian package that provides it.
func checkDependencies() error {
	var missing []string
	for _, d := range []struct{ bin, pkg string }{
		{bin: "mitmdump", pkg: "mitmproxy"},
		{bin: "curl", pkg: "curl"},
		{bin: "openssl", pkg: "openssl"},
		{bin: python, pkg: "python3"},
	} {
		if _, err := exec.LookPath(d.bin); err != nil {
			missing = append(missing, fmt.Sprintf("%s (Debian package: %s)", d.bin, d.pkg))
		}
	}
	if _, err := os.Stat(systemBundle); err != nil {
		missing = append(missing, systemBundle+" (Debian package: ca-certificates)")
	}
	for _, mod := range []struct{ name, pkg string }{
		{name: "requests", pkg: "python3-requests"},
		{name: "httpx", pkg: "python3-httpx"},
		{name: "aiohttp", pkg: "python3-aiohttp"},
		{name: "urllib3", pkg: "python3-urllib3"},
	} {
		if err := exec.Command(python, "-c", "import "+mod.name).Run(); err != nil {
			missing = append(missing, fmt.Sprintf("%s module %s (Debian package: %s)", python, mod.name, mod.pkg))
		}
	}
	if len(missing) > 0 {
		return errors.New(strings.Join(missing, "; "))
	}
	return nil
}

// buildEntrypoint builds kai-entrypoint from the module root, as the
// Dockerfile does, unless KAI_E2E_ENTRYPOINT names a prebuilt binary.
func buildEntrypoint(dir string) (string, error) {
	if p := os.Getenv(entrypointOverride); p != "" {
		return filepath.Abs(p)
	}
	gomod, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	root := filepath.Dir(strings.TrimSpace(string(gomod)))
	out := filepath.Join(dir, "bin", "kai-entrypoint")
	start := time.Now()
	cmd := exec.Command("go", "build", "-o", out, ".")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("CGO_ENABLED=0 go build -o %s . (in %s): %v\n%s", out, root, err, b)
	}
	fmt.Fprintf(os.Stderr, "e2e: built kai-entrypoint in %s\n", time.Since(start).Round(time.Millisecond))
	return out, nil
}

func setupServers() error {
	var err error
	if S.standin, err = filepath.Abs(filepath.Join("testdata", "kai-standin.py")); err != nil {
		return err
	}
	if S.self, err = os.Executable(); err != nil {
		return err
	}
	upCA, err := newCA("Throwaway Upstream Test CA (kai-entrypoint e2e)")
	if err != nil {
		return err
	}
	if S.upstream, err = startTLSServer(upCA, upstreamHost, upstreamIP, S.dir); err != nil {
		return err
	}
	dirCA, err := newCA("Throwaway System-Only Test CA (kai-entrypoint e2e)")
	if err != nil {
		return err
	}
	if S.direct, err = startTLSServer(dirCA, directHost, directIP, S.dir); err != nil {
		return err
	}
	// The "system" bundle the shim inherits through SSL_CERT_FILE: the
	// real one plus direct's CA, which is therefore trusted only if the
	// shim keeps the system roots in its combined bundle.
	sys, err := os.ReadFile(systemBundle)
	if err != nil {
		return err
	}
	if len(sys) > 0 && sys[len(sys)-1] != '\n' {
		sys = append(sys, '\n')
	}
	S.sysCerts = filepath.Join(S.dir, "system-ca-certificates.crt")
	return os.WriteFile(S.sysCerts, append(sys, dirCA.PEM...), 0o644)
}
