package containers

import (
	"strings"
	"testing"
	"time"
)

// cacheDir keeps what deploy/local-images makes (a debootstrap root file system and a Go
// module cache) and the Compose binary compose_test.go builds, between runs. Everything
// in it is remade when missing, so deleting it is always safe.
const cacheDir = "/var/cache/kai-entrypoint-test"

// importImages makes the local stand-ins for the public base images with
// deploy/local-images, the program docs/containers.md gives users, and keeps the
// variables it prints (GO_IMAGE, KAI_IMAGE, MITMPROXY_IMAGE) in e.Images.
func (e *engine) importImages(t *testing.T) {
	t.Helper()
	r := must(t, command{Dir: repoRoot(t), Env: e.Env, Timeout: 30 * time.Minute,
		Args: []string{"go", "run", "./deploy/local-images", "-cache", cacheDir, e.Bin}})
	t.Logf("deploy/local-images:\n%s", r.Stderr)
	e.Images = map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(r.Stdout), "\n") {
		if name, value, ok := strings.Cut(line, "="); ok {
			e.Images[name] = value
		}
	}
	for _, name := range []string{"GO_IMAGE", "KAI_IMAGE", "MITMPROXY_IMAGE"} {
		if !strings.HasPrefix(e.Images[name], "localhost/") {
			t.Fatalf("deploy/local-images named no local %s:\n%s", name, r)
		}
	}
}
