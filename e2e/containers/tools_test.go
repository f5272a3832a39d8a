// Package containers tests the repository's Dockerfile and docker-compose.yml for real,
// with the Docker engine (plus Debian's docker-compose v1 and, as `docker compose`, the
// current Compose built from source: compose_test.go) and with Podman (plus
// podman-compose): it builds the image, runs it, brings up the compose stack with the
// mitmproxy sidecar and an HTTPS upstream, and checks what README.md and docs/containers.md promise; with
// Podman it also runs the manifests in deploy/ with `podman kube play` (kube_test.go).
//
// No registry is reachable on the project's machines, so the base images (a Go
// toolchain, a Kai stand-in, mitmproxy) are made locally by deploy/local-images from a
// debootstrap root file system, which is cached under /var/cache/kai-entrypoint-test
// between runs. The tests
// need root. With CI=true a missing tool is a failure; otherwise the tests skip.
package containers

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// inCI reports whether missing prerequisites must fail the tests instead of skipping.
func inCI() bool { return os.Getenv("CI") == "true" }

// unavailable skips the test, or fails it in CI, because a prerequisite is missing.
func unavailable(t *testing.T, format string, args ...any) {
	t.Helper()
	msg := "e2e/containers: " + fmt.Sprintf(format, args...)
	if inCI() {
		t.Fatal(msg + " (CI=true: a missing prerequisite is a failure)")
	}
	t.Skip(msg)
}

// requireTools looks up every tool on PATH (or as an absolute path) and returns their paths.
func requireTools(t *testing.T, names ...string) map[string]string {
	t.Helper()
	if os.Geteuid() != 0 {
		unavailable(t, "needs root (dockerd, podman and debootstrap run as root here)")
	}
	paths := map[string]string{}
	var missing []string
	for _, n := range names {
		p, err := exec.LookPath(n)
		if err != nil {
			missing = append(missing, n)
			continue
		}
		paths[n] = p
	}
	if len(missing) > 0 {
		unavailable(t, "missing tools: %s", strings.Join(missing, ", "))
	}
	return paths
}

// repoRoot is the repository's top folder (this package lives in e2e/containers).
func repoRoot(t *testing.T) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("cannot locate the test source")
	}
	root, err := filepath.Abs(filepath.Join(filepath.Dir(file), "..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "Dockerfile")); err != nil {
		t.Fatalf("repository root %s: %v", root, err)
	}
	return root
}

// result is the outcome of one command.
type result struct {
	Stdout, Stderr string
	Code           int
	Elapsed        time.Duration
	Err            error // nil when the command ran and exited 0
}

func (r result) String() string {
	return fmt.Sprintf("exit %d after %s\n--- stdout\n%s\n--- stderr\n%s", r.Code, r.Elapsed.Round(time.Millisecond),
		tail(r.Stdout, 4000), tail(r.Stderr, 4000))
}

// tail keeps the last n bytes of s.
func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "[...]" + s[len(s)-n:]
}

// command describes one process to run.
type command struct {
	Args    []string
	Env     []string // full environment; nil means os.Environ()
	Dir     string
	Timeout time.Duration
}

// execute runs c and returns its result; it never fails the test itself.
func execute(t *testing.T, c command) result {
	t.Helper()
	timeout := c.Timeout
	if timeout == 0 {
		timeout = 15 * time.Minute // only a hung command: builds take minutes on a loaded machine
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, c.Args[0], c.Args[1:]...)
	cmd.Env = c.Env
	cmd.Dir = c.Dir
	cmd.WaitDelay = 5 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	r := result{Stdout: stdout.String(), Stderr: stderr.String(), Elapsed: time.Since(start), Err: err}
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		r.Code = ee.ExitCode()
	case err != nil:
		r.Code = -1
	}
	if ctx.Err() != nil {
		r.Err = fmt.Errorf("timed out after %s: %w", timeout, err)
	}
	t.Logf("$ %s  [exit %d, %s]", strings.Join(c.Args, " "), r.Code, r.Elapsed.Round(time.Millisecond))
	return r
}

// must runs c and fails the test unless it exits 0.
func must(t *testing.T, c command) result {
	t.Helper()
	r := execute(t, c)
	if r.Err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(c.Args, " "), r.Err, r)
	}
	return r
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// envWith returns os.Environ() with the given NAME=value entries replacing or adding.
func envWith(extra ...string) []string {
	drop := map[string]bool{}
	for _, kv := range extra {
		drop[strings.SplitN(kv, "=", 2)[0]] = true
	}
	var env []string
	for _, kv := range os.Environ() {
		if !drop[strings.SplitN(kv, "=", 2)[0]] {
			env = append(env, kv)
		}
	}
	return append(env, extra...)
}

// waitFor polls check until it returns nil or the budget is spent; it returns the last error.
func waitFor(budget time.Duration, check func() error) error {
	deadline := time.Now().Add(budget)
	for {
		err := check()
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(250 * time.Millisecond)
	}
}
