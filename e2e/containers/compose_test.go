package containers

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// composeVersion is the current Docker Compose, the `docker compose` users run. Debian 12
// packages only Compose v1, so it is built from the Go module proxy, once: the binary is
// kept in cacheDir.
const composeVersion = "v5.6.0"

// composeBinary returns the cached Compose binary, built now when it is missing (about
// 2 minutes on two cores). The build needs a wrapper module: `go install` refuses
// Compose's module for its exclude directives.
func composeBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(cacheDir, "compose-"+composeVersion, "docker-compose")
	if _, err := os.Stat(bin); err == nil {
		return bin
	}
	if err := os.MkdirAll(filepath.Dir(bin), 0o755); err != nil {
		t.Fatal(err)
	}
	work, err := os.MkdirTemp(filepath.Dir(bin), "build-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(work)
	start := time.Now()
	for _, args := range [][]string{
		{"go", "mod", "init", "compose-build"},
		{"go", "get", "github.com/docker/compose/v5/cmd@" + composeVersion},
		// As Compose's Makefile builds it; the -X sets what `docker compose version` prints.
		{"go", "build", "-trimpath", "-ldflags", "-w -X github.com/docker/compose/v5/internal.Version=" + composeVersion,
			"-o", filepath.Join(work, "docker-compose"), "github.com/docker/compose/v5/cmd"},
	} {
		must(t, command{Dir: work, Args: args, Timeout: 30 * time.Minute})
	}
	if err := os.Rename(filepath.Join(work, "docker-compose"), bin); err != nil {
		t.Fatal(err)
	}
	t.Logf("built Docker Compose %s in %s: %s", composeVersion, time.Since(start).Round(time.Second), bin)
	return bin
}

// composePlugin installs the Compose binary as the `docker compose` plugin of cli in a
// Docker configuration folder of the test's own (use it as DOCKER_CONFIG), and checks
// that the CLI runs it.
func composePlugin(t *testing.T, cli string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "cli-plugins"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(composeBinary(t), filepath.Join(dir, "cli-plugins", "docker-compose")); err != nil {
		t.Fatal(err)
	}
	r := must(t, command{Args: []string{cli, "compose", "version"}, Env: envWith("DOCKER_CONFIG=" + dir)})
	if !strings.Contains(r.Stdout, composeVersion) {
		t.Fatalf("%s compose version: want %s\n%s", cli, composeVersion, r)
	}
	return dir
}
