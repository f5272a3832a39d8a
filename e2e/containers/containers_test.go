package containers

import (
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"
)

// TestDocker runs the container checks with a private Docker engine and docker-compose.
// It runs in parallel with TestPodman: their state is separate, and the two overlap
// mostly on I/O (imports, container starts).
func TestDocker(t *testing.T) {
	t.Parallel()
	containerSuite(t, startDocker(t))
}

// TestPodman runs the container checks with Podman and podman-compose.
func TestPodman(t *testing.T) {
	t.Parallel()
	containerSuite(t, setupPodman(t))
}

// standinClients are the clients kai-standin.py runs; every one must succeed.
var standinClients = []string{"aiohttp", "curl", "httpx", "requests", "urllib"}

const (
	kaiStandin = "/opt/kai-standin/kai-standin.py"
	bundlePath = "/tmp/kai-entrypoint/ca-bundle.pem" // kai-entrypoint's default KAI_CA_BUNDLE
	// openShiftUser is an arbitrary UID with GID 0, as OpenShift runs containers.
	openShiftUser = "1000770000:0"
)

func randomSuffix() string {
	b := make([]byte, 4)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func containerSuite(t *testing.T, e *engine) {
	start := time.Now()
	e.importImages(t)
	t.Logf("%s: base images ready after %s", e.Name, time.Since(start).Round(time.Second))
	root := repoRoot(t)
	version := "ct-" + randomSuffix()
	image := "localhost/kai-entrypoint-test:" + e.Name

	// 1. The repository's Dockerfile, unchanged; only the base images are overridden.
	if !t.Run("build", func(t *testing.T) {
		e.must(t, "build", "-t", image, "--build-arg", "GO_IMAGE="+e.Images["GO_IMAGE"], "--build-arg", "KAI_IMAGE="+e.Images["KAI_IMAGE"],
			"--build-arg", "VERSION="+version, root)
		got := strings.TrimSpace(e.must(t, "image", "inspect", "--format",
			"{{json .Config.Entrypoint}} {{json .Config.Cmd}} {{.Config.User}}", image).Stdout)
		// The user comes from KAI_IMAGE (the real solution server runs as a non-root user).
		want := `["/usr/local/bin/kai-entrypoint"] ["/usr/local/bin/kai-server"] 1001`
		if got != want {
			t.Errorf("image config: got %s, want %s", got, want)
		}
	}) {
		return
	}
	t.Logf("%s: image built after %s", e.Name, time.Since(start).Round(time.Second))

	// An extra CA under the default KAI_CERT_DIRS, so that the shim writes a bundle.
	pki := newUpstreamPKI(t, filepath.Join(t.TempDir(), "server"), filepath.Join(t.TempDir(), "ca"), "upstream")
	caPEM, err := os.ReadFile(filepath.Join(pki.CADir, "ca.pem"))
	if err != nil {
		t.Fatal(err)
	}
	mountOpts := "ro"
	if e.Name == "podman" {
		mountOpts = "ro,Z" // as docs/containers.md's Podman section shows (a no-op without SELinux)
	}
	extraCA := []string{"-v", pki.CADir + ":/etc/kai/certs/test:" + mountOpts}

	// 2. The shim execs the server, `--check` and `--version` work as container commands.
	t.Run("run", func(t *testing.T) {
		if out := e.must(t, "run", "--rm", image, "--version").Stdout; !strings.Contains(out, version) {
			t.Errorf("--version printed %q, want the stamped %q", out, version)
		}
		r := e.must(t, append(append([]string{"run", "--rm"}, extraCA...), image, "--check")...)
		if !strings.Contains(r.Stdout, bundlePath) || !strings.Contains(r.Stdout, "/etc/kai/certs/test/ca.pem") {
			t.Errorf("--check summary names neither the bundle %s nor the extra CA:\n%s", bundlePath, r)
		}
		r = execute(t, e.cmd("run", "--rm", "-e", "KAI_WAIT=soon", image, "--check"))
		if r.Code != 78 || !strings.Contains(r.Stderr, "kai-entrypoint: ") || !strings.Contains(r.Stderr, "KAI_WAIT") {
			t.Errorf("--check with KAI_WAIT=soon: want exit 78 and a prefixed error naming KAI_WAIT\n%s", r)
		}

		// Without an init, the server is the container's only process: the shim and the
		// /bin/sh of kai-server exec'd into it.
		name := runServer(t, e, "run-noinit-"+randomSuffix(), image)
		ps := e.top(t, name)
		if len(ps) != 1 || !isServer(ps[0]) {
			t.Errorf("without --init: want only the Kai server process, got %+v", ps)
		}
		// It kept the shim's PID: inside the container it is PID 1.
		pid1 := strings.TrimSpace(strings.ReplaceAll(e.must(t, "exec", name, "cat", "/proc/1/cmdline").Stdout, "\x00", " "))
		if !isServer(proc{Args: pid1}) {
			t.Errorf("without --init: PID 1 is %q, want the Kai server", pid1)
		}
		// With --init, the server is the init's only child.
		name = runServer(t, e, "run-init-"+randomSuffix(), image, "--init")
		ps = e.top(t, name)
		if len(ps) != 2 || !isServer(ps[1]) || ps[1].PPID != ps[0].PID || !strings.Contains(ps[0].Args, "init") {
			t.Errorf("with --init: want an init and the Kai server as its child, got %+v", ps)
		}
		if logs := e.logs(t, name); !strings.Contains(logs, "kai-entrypoint: ") || !strings.Contains(logs, "kai-standin: listening") {
			t.Errorf("logs lack the shim's or the server's lines:\n%s", logs)
		}
	})

	// KAI_CMD replaces the server command (docs/containers.md: the earlier Kai image needs it).
	t.Run("kai-cmd", func(t *testing.T) {
		custom := image + "-kaicmd"
		t.Cleanup(func() { execute(t, e.cmd("rmi", custom)) })
		e.must(t, "build", "-t", custom, "--build-arg", "GO_IMAGE="+e.Images["GO_IMAGE"], "--build-arg", "KAI_IMAGE="+e.Images["KAI_IMAGE"],
			"--build-arg", "VERSION="+version, "--build-arg", "KAI_CMD=python3 "+kaiStandin+" serve --host 0.0.0.0 --port 8000", root)
		name := runServer(t, e, "run-kaicmd-"+randomSuffix(), custom, "--init")
		ps := e.top(t, name)
		if len(ps) != 2 || ps[1].Args != "python3 "+kaiStandin+" serve --host 0.0.0.0 --port 8000" {
			t.Errorf("with KAI_CMD: want an init and the given command, got %+v", ps)
		}
	})

	// 4. OpenShift's defaults: an arbitrary UID with GID 0, read-only root, tmpfs /tmp.
	t.Run("openshift-user", func(t *testing.T) {
		flags := append([]string{"--user", openShiftUser, "--read-only", "--tmpfs", "/tmp"}, extraCA...)
		e.must(t, append(append([]string{"run", "--rm"}, flags...), image, "--check")...)
		name := runServer(t, e, "run-ro-"+randomSuffix(), image, append([]string{"--init"}, flags...)...)
		ids := strings.TrimSpace(e.must(t, "exec", name, "sh", "-c", `echo "$(id -u):$(id -g)"`).Stdout)
		bundle := e.must(t, "exec", name, "cat", bundlePath).Stdout
		if n := strings.Count(bundle, "BEGIN CERTIFICATE"); n < 2 || !strings.Contains(bundle, strings.TrimSpace(string(caPEM))) {
			t.Errorf("bundle %s: %d certificates, want the system roots plus the extra CA", bundlePath, n)
		}
		if ids != openShiftUser {
			t.Errorf("exec id -u -g: got %v, want %s", ids, openShiftUser)
		}
	})

	// 3 and 5. The compose stack with the sidecar and an HTTPS upstream, see composeSuite.
	for _, tool := range e.Composes {
		t.Run(tool.Name, func(t *testing.T) { composeSuite(t, e, tool, root, version) })
	}
	// The Kubernetes and OpenShift manifests in deploy/, with `podman kube play`.
	if e.Name == "podman" {
		t.Run("kube", func(t *testing.T) { kubeSuite(t, e, root, image) })
	}
	t.Logf("%s: done after %s", e.Name, time.Since(start).Round(time.Second))
}

// isServer reports whether p is the Kai stand-in started by the image's default command,
// with ${MOUNT_PATH:-/} expanded at run time (the Dockerfile keeps it from build time).
func isServer(p proc) bool {
	return strings.HasPrefix(p.Args, "python3.12 -m kai_mcp_solution_server --transport streamable-http") &&
		strings.HasSuffix(p.Args, " --mount-path=/")
}

// runServer starts the image's default command detached, waits for /health inside the
// container and removes the container when the test ends.
func runServer(t *testing.T, e *engine, name, image string, flags ...string) string {
	t.Helper()
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("logs of %s:\n%s", name, e.logs(t, name))
		}
		execute(t, e.cmd("rm", "-f", name))
	})
	e.must(t, append(append([]string{"run", "-d", "--name", name}, flags...), image)...)
	err := waitFor(30*time.Second, func() error {
		return execute(t, e.cmd("exec", name, "curl", "-fsS", "http://127.0.0.1:8000/health")).Err
	})
	if err != nil {
		t.Fatalf("%s: /health: %v\n%s", name, err, e.logs(t, name))
	}
	return name
}

// standinReport is kai-standin.py's JSON output (clients mode and /probe).
type standinReport struct {
	OK      bool              `json:"ok"`
	Env     map[string]string `json:"env"`
	Results []struct {
		Client    string  `json:"client"`
		URL       string  `json:"url"`
		OK        bool    `json:"ok"`
		Status    *int    `json:"status"`
		XViaMitm  *string `json:"x_via_mitm"`
		Error     *string `json:"error"`
		ErrorType *string `json:"error_class"`
	} `json:"results"`
}

func parseReport(t *testing.T, what, text string) standinReport {
	t.Helper()
	var rep standinReport
	if err := json.Unmarshal([]byte(text), &rep); err != nil {
		t.Fatalf("%s: not kai-standin JSON: %v\n%s", what, err, tail(text, 4000))
	}
	return rep
}

// checkAllThroughSidecar asserts that every client got a 2xx answer stamped by mitmproxy.
func checkAllThroughSidecar(t *testing.T, what string, rep standinReport) {
	t.Helper()
	var seen []string
	for _, r := range rep.Results {
		seen = append(seen, r.Client)
		if !r.OK || r.XViaMitm == nil || *r.XViaMitm != "1" {
			t.Errorf("%s: client %s: ok=%v status=%v x_via_mitm=%v error=%v", what, r.Client, r.OK, deref(r.Status), deref(r.XViaMitm), deref(r.Error))
		}
	}
	sort.Strings(seen)
	if !slices.Equal(seen, standinClients) || !rep.OK {
		t.Errorf("%s: ok=%v, clients %v, want every one of %v", what, rep.OK, seen, standinClients)
	}
}

func deref[T any](p *T) any {
	if p == nil {
		return nil
	}
	return *p
}

// composeSuite brings up docker-compose.yml plus a test override (an HTTPS upstream whose
// CA only the sidecar trusts) on a fresh volume, and checks steps 3, 4 and 5.
func composeSuite(t *testing.T, e *engine, tool composeTool, root, version string) {
	project := "kaict" + e.Name + randomSuffix()
	dir := t.TempDir()
	pki := newUpstreamPKI(t, filepath.Join(dir, "upstream"), filepath.Join(dir, "upstream-ca"), "upstream")
	compose, err := os.ReadFile(filepath.Join(root, "docker-compose.yml"))
	if err != nil {
		t.Fatal(err)
	}
	// A copy in a fresh folder, so that a developer's .env next to the original is not read.
	if err := os.WriteFile(filepath.Join(dir, "docker-compose.yml"), compose, 0o644); err != nil {
		t.Fatal(err)
	}
	override := fmt.Sprintf(composeOverride, root, pki.ServerDir, pki.CADir)
	if err := os.WriteFile(filepath.Join(dir, "docker-compose.test.yml"), []byte(override), 0o644); err != nil {
		t.Fatal(err)
	}
	port := freePort(t)
	kaiEntrypointImage := "localhost/kai-entrypoint-compose:" + tool.Name
	env := append(slices.Concat(e.Env, tool.Env), "KAI_ENTRYPOINT_IMAGE="+kaiEntrypointImage, "VERSION="+version,
		fmt.Sprintf("KAI_PORT=%d", port), "KAI_WAIT=60s")
	for name, image := range e.Images {
		env = append(env, name+"="+image)
	}
	composeCmd := func(args ...string) command {
		return command{Dir: dir, Env: env, Args: append(slices.Concat(tool.Args, []string{"-p", project,
			"-f", filepath.Join(dir, "docker-compose.yml"), "-f", filepath.Join(dir, "docker-compose.test.yml")}), args...)}
	}
	container := func(service string) string { return strings.Join([]string{project, service, "1"}, tool.Sep) }
	t.Cleanup(func() {
		if t.Failed() {
			for _, s := range []string{"kai", "mitmproxy", "upstream"} {
				t.Logf("logs of %s:\n%s", container(s), tail(e.logs(t, container(s)), 8000))
			}
		}
		if t.Failed() {
			t.Logf("containers:\n%s", execute(t, e.cmd("ps", "-a")).Stdout)
		}
		execute(t, composeCmd("down", "-v"))
		// podman-compose 1.0.3 leaves the project network behind.
		execute(t, e.cmd("network", "rm", project+"_default"))
		execute(t, e.cmd("rmi", kaiEntrypointImage))
	})

	// As docs/containers.md: `up -d --build`. podman-compose 1.0.3 exits 0 even when the build or a
	// `podman run` fails: check the image and the containers, not the exit status alone.
	r := must(t, composeCmd("up", "-d", "--build"))
	if execute(t, e.cmd("image", "inspect", kaiEntrypointImage)).Err != nil {
		t.Fatalf("compose up --build made no %s:\n%s", kaiEntrypointImage, r)
	}
	for _, s := range []string{"mitmproxy", "upstream", "kai"} {
		if st := execute(t, e.cmd("inspect", "--format", "{{.State.Status}}", container(s))); strings.TrimSpace(st.Stdout) != "running" {
			t.Fatalf("compose up: %s is %q, not running\n%s", container(s), strings.TrimSpace(st.Stdout), r)
		}
	}
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	if err := waitFor(90*time.Second, func() error { _, err := httpGet(base + "/health"); return err }); err != nil {
		t.Fatalf("kai service /health on %s: %v", base, err)
	}

	// 3. Every client in the Kai stand-in reaches the upstream through the sidecar.
	upstreamURL := "https://upstream:8443/v1/models"
	waitDNS(t, e, container("mitmproxy"), "upstream")
	var rep standinReport
	for attempt := 1; ; attempt++ {
		body, err := httpGet(base + "/probe?url=" + upstreamURL)
		rep = parseReport(t, "/probe", body)
		if err == nil || attempt == 3 || !dnsHiccup(rep) {
			break
		}
		t.Logf("/probe attempt %d: a name lookup failed or stalled; retrying: %v", attempt, err)
		time.Sleep(2 * time.Second)
	}
	checkAllThroughSidecar(t, "compose kai service", rep)
	if rep.Env["HTTPS_PROXY"] != "http://mitmproxy:8080" || rep.Env["SSL_CERT_FILE"] != bundlePath || rep.Env["REQUESTS_CA_BUNDLE"] != bundlePath {
		t.Errorf("the server's environment lacks the derived variables: %v", rep.Env)
	}
	kaiLogs := e.logs(t, container("kai"))
	// `logs` keeps stdout (the server's) and stderr (the shim's) apart, so only the
	// shim's lines can be checked for order.
	iWait, iReady := strings.Index(kaiLogs, "waiting"), strings.Index(kaiLogs, "ready after")
	if iWait < 0 || iReady < iWait || !strings.Contains(kaiLogs, "kai-standin: listening") {
		t.Errorf("kai log should show the shim waiting, then ready, and the server listening:\n%s", kaiLogs)
	}
	if strings.Contains(kaiLogs, "level=WARN") {
		t.Errorf("a healthy start logs no warning:\n%s", kaiLogs)
	}
	// docs/containers.md: see the flows with `compose logs mitmproxy`.
	if r := must(t, composeCmd("logs", "mitmproxy")); !strings.Contains(r.Stdout+r.Stderr, "upstream:8443/v1/models") {
		t.Errorf("compose logs mitmproxy shows no flow to the upstream:\n%s", r)
	}
	// docs/containers.md: copy the sidecar's CA out (docker-compose exec -T; podman-compose echoes its
	// own commands on stdout, so there docs/containers.md uses podman exec).
	caCmd := composeCmd("exec", "-T", "mitmproxy", "cat", "/home/mitmproxy/.mitmproxy/mitmproxy-ca-cert.pem")
	if e.Name == "podman" {
		caCmd = e.cmd("exec", container("mitmproxy"), "cat", "/home/mitmproxy/.mitmproxy/mitmproxy-ca-cert.pem")
	}
	out := must(t, caCmd).Stdout
	if block, rest := pem.Decode([]byte(out)); block == nil || !strings.HasPrefix(out, "-----BEGIN CERTIFICATE-----") || strings.TrimSpace(string(rest)) != "" {
		t.Errorf("the sidecar's CA, as docs/containers.md copies it, is not exactly one PEM certificate:\n%s", tail(out, 2000))
	} else if ca, err := x509.ParseCertificate(block.Bytes); err != nil {
		t.Errorf("the sidecar's CA: %v", err)
	} else if !ca.IsCA || !strings.Contains(ca.Subject.String(), "mitmproxy") {
		t.Errorf("the sidecar's CA: IsCA=%v, subject %q; want mitmproxy's CA", ca.IsCA, ca.Subject)
	}
	// 4. The same image as OpenShift runs it, with the sidecar's CA. The one-off containers
	// share the kai container's network namespace: joining the compose network afresh
	// would make Podman's DNS reload (see dnsHiccup).
	oneOff := []string{"run", "--rm", "--network", "container:" + container("kai"), "--user", openShiftUser, "--read-only", "--tmpfs", "/tmp",
		"-v", project + "_mitmproxy-ca:/etc/kai/mitmproxy:ro",
		"-e", "KAI_PROXY_HTTPS=http://mitmproxy:8080", "-e", "KAI_CERT_DIRS=/etc/kai/mitmproxy/mitmproxy-ca-cert.pem", "-e", "KAI_WAIT=30s"}
	// A long per-call timeout: aardvark-dns 1.4 (Podman's DNS) can stall lookups for
	// several seconds while containers join or leave the network. A real failure (no CA,
	// no proxy) still ends at once with an error.
	clients := []string{"python3", kaiStandin, "clients", "--timeout", "60", "--url", upstreamURL}
	for attempt := 1; ; attempt++ {
		r = execute(t, e.cmd(append(append(oneOff, kaiEntrypointImage), clients...)...))
		rep = parseReport(t, "clients", r.Stdout)
		if r.Err == nil || attempt == 3 || !dnsHiccup(rep) {
			break
		}
		t.Logf("read-only one-off, attempt %d: a name lookup failed or stalled; retrying", attempt)
	}
	checkAllThroughSidecar(t, "read-only one-off container", rep)

	// The negative: with the upstream excluded from the proxy, the clients go direct and
	// fail on the unknown CA, so the successes above needed the sidecar and its CA.
	var neg standinReport
	for attempt := 1; ; attempt++ {
		r = execute(t, e.cmd(append(append(oneOff, "-e", "KAI_PROXY_NO=upstream", kaiEntrypointImage), clients...)...))
		neg = parseReport(t, "clients with KAI_PROXY_NO=upstream", r.Stdout)
		if attempt == 3 || !dnsHiccup(neg) {
			break
		}
		t.Logf("KAI_PROXY_NO=upstream, attempt %d: a name lookup failed or stalled; retrying", attempt)
	}
	if r.Code != 1 || neg.OK || len(neg.Results) != len(standinClients) {
		t.Errorf("KAI_PROXY_NO=upstream: want exit 1 and every client failing\n%s", r)
	}
	for _, res := range neg.Results {
		if res.OK || res.Error == nil || !strings.Contains(strings.ToLower(*res.Error), "certificate") {
			t.Errorf("KAI_PROXY_NO=upstream: client %s: want a certificate error, got ok=%v error=%v", res.Client, res.OK, deref(res.Error))
		}
	}

	// docs/containers.md: check Kai's view with a one-off `compose run` (through the entrypoint).
	// (--retry: see dnsHiccup.)
	r = must(t, composeCmd("run", "--rm", "-T", "kai", "curl", "-sS", "--retry", "10", "--retry-all-errors", "--retry-delay", "2",
		"-o", "/dev/null", "-w", "status=%{http_code}\n", upstreamURL))
	if !strings.Contains(r.Stdout, "status=200") {
		t.Errorf("compose run kai curl %s: want status=200\n%s", upstreamURL, r)
	}

	// 5. Stopping the kai service ends the server by SIGTERM (init: true
	// forwards it; the stand-in then exits 0), not by the SIGKILL after the
	// grace period (137). The grace period is long, and the bound on the
	// time a third of it, so that a loaded machine is not mistaken for a
	// server that ignores SIGTERM.
	r = e.must(t, "stop", "-t", "60", container("kai"))
	code := strings.TrimSpace(e.must(t, "inspect", "--format", "{{.State.ExitCode}}", container("kai")).Stdout)
	if code == "137" || r.Elapsed > 20*time.Second {
		t.Errorf("%s stop %s: the server exited %s after %s, want it ended by SIGTERM (not 137) well within the 60 s grace", e.Name, container("kai"), code, r.Elapsed)
	}
}

// dnsHiccup reports whether a client failed on a name lookup (directly, or as the
// sidecar's 502 or a stall). Podman's aardvark-dns 1.4 reloads whenever a container joins
// the network, and lookups made meanwhile can fail or hang: seen here in about one run in
// three, right after a one-off container started. Such runs are retried; every other
// failure counts at once.
func dnsHiccup(rep standinReport) bool {
	for _, r := range rep.Results {
		if r.OK || r.Error == nil {
			continue
		}
		msg := strings.ToLower(*r.Error)
		for _, s := range []string{"name or service not known", "temporary failure in name resolution",
			"could not resolve", "502", "timed out", "timeout"} {
			if strings.Contains(msg, s) {
				return true
			}
		}
	}
	return false
}

// waitDNS waits until name resolves quickly inside the container twice in a row: after a
// container joins a Podman network, aardvark-dns may answer late or not at all for a while.
func waitDNS(t *testing.T, e *engine, container, name string) {
	t.Helper()
	fast := 0
	err := waitFor(60*time.Second, func() error {
		r := execute(t, e.cmd("exec", container, "getent", "hosts", name))
		if r.Err != nil || r.Elapsed > time.Second {
			fast = 0
			return fmt.Errorf("getent hosts %s in %s: %v after %s", name, container, r.Err, r.Elapsed)
		}
		if fast++; fast < 2 {
			return errors.New("once")
		}
		return nil
	})
	if err != nil {
		t.Logf("name lookups still unsettled: %v", err)
	}
}

// composeOverride adds what only the test needs: the HTTPS upstream, upstream trust and a
// flow stamp for the sidecar, and the build context (the compose file is a copy).
// Arguments: repository root, upstream cert folder, upstream CA folder.
const composeOverride = `services:
  upstream:
    image: ${KAI_IMAGE}
    command: ["python3", "/opt/upstream/upstream.py", "/upstream/upstream.pem", "/upstream/upstream.key", "8443"]
    volumes:
      - %[2]s:/upstream:ro
  mitmproxy:
    # The base command plus: trust the upstream's CA, stamp every request forwarded.
    command: mitmdump --listen-port 8080 --set confdir=/home/mitmproxy/.mitmproxy --set ssl_verify_upstream_trusted_ca=/upstream-ca/ca.pem --modify-headers /~q/X-Via-Mitm/1
    volumes:
      - %[3]s:/upstream-ca:ro
  kai:
    build:
      context: %[1]s
    depends_on:
      - upstream
`

func httpGet(url string) (string, error) {
	c := http.Client{Timeout: 60 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return string(b), fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return string(b), nil
}
