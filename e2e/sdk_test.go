package e2e

import (
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// The Debian 13 SDK suite: Kai's real client stack (the openai, ollama and
// boto3 SDKs, grpcio, google-auth, httplib2, git, pip and the plain HTTP
// clients, as Debian 13 packages them) run by sdk-standin.py under the
// shim inside a trixie root file system (trixie_test.go), against the
// upstreams of sdk_upstream_test.go on loopback, through a real mitmdump.
// The chroot shares the suite's network, /etc/hosts and PID namespace.

// sdkClients are the stand-in's HTTP clients, in its order; grpc has its
// own scenarios (mitmdump 8 does not intercept HTTP/2 prior knowledge).
var sdkClients = []string{"requests", "httpx", "aiohttp", "urllib", "curl",
	"openai", "openai-async", "ollama", "boto3", "google-auth", "httplib2", "git", "pip"}

// sdkReplies is the assistant text each chat client must get back.
var sdkReplies = map[string]string{
	"openai": completion, "openai-async": completion, "boto3": completion, "ollama": ollamaReply,
}

// sdkCertErrors is a fragment of each client's certificate-verification
// error (the stand-in reports the exception with its causes, or the
// command's output); OpenSSL's text for every other client.
var sdkCertErrors = map[string]string{
	"curl": "SSL certificate problem",
	"git":  "server verification failed: certificate signer not trusted", // git links libcurl-gnutls
	"grpc": "certificate verify failed",                                  // grpcio's BoringSSL
}

func sdkCertError(client string) string {
	if s, ok := sdkCertErrors[client]; ok {
		return s
	}
	return "CERTIFICATE_VERIFY_FAILED"
}

// S13 is the SDK suite's shared state, set up on first use.
var S13 struct {
	once     sync.Once
	err      error
	up       *sdkServer // upstream.test: trusted by mitmdump only
	direct   *sdkServer // direct.test: trusted through the chroot's system roots only
	local    *sdkServer // 127.0.0.1: a local model server, over plain HTTP
	confdir  string     // mitmdump's confdir, seeded with a CA made by the suite
	certs    string     // --certs value: mitmdump's leaf for upstream.test
	versions map[string]any
	runs     atomic.Int64
}

// sdkSetup checks the SDK suite's tools and, once, starts its upstreams.
func sdkSetup(t *testing.T) {
	t.Helper()
	requireSuite(t)
	var missing []string
	for _, d := range []struct{ bin, pkg string }{
		{bin: "debootstrap", pkg: "debootstrap"}, {bin: "git", pkg: "git"}, {bin: "chroot", pkg: "coreutils"}, {bin: "mount", pkg: "mount"},
	} {
		if _, err := exec.LookPath(d.bin); err != nil {
			missing = append(missing, fmt.Sprintf("%s (Debian package: %s)", d.bin, d.pkg))
		}
	}
	if len(missing) > 0 {
		if ci, _ := strconv.ParseBool(os.Getenv("CI")); ci {
			t.Fatalf("SDK suite dependency missing (CI=true, so this is a failure): %s", strings.Join(missing, "; "))
		}
		t.Skipf("SDK suite dependency missing: %s", strings.Join(missing, "; "))
	}
	S13.once.Do(func() { S13.err = startSDKUpstreams() })
	if S13.err != nil {
		t.Fatalf("SDK suite setup: %v", S13.err)
	}
}

// startSDKUpstreams starts the upstreams and seeds a mitmproxy confdir.
// mitmproxy 8.1.1 issues leaves without an Authority Key Identifier, which
// Python 3.13's strict verification rejects whatever the bundle holds; so
// the confdir gets a CA made here and mitmdump serves a leaf that CA
// signed (crypto/x509 adds the identifiers) for upstream.test.
func startSDKUpstreams() error {
	dir := filepath.Join(S.dir, "sdk")
	content, err := newSDKContent(dir)
	if err != nil {
		return err
	}
	if S13.up, err = startSDKServer(S.upstream.ca, upstreamHost, upstreamIP, content); err != nil {
		return err
	}
	if S13.direct, err = startSDKServer(S.direct.ca, directHost, directIP, content); err != nil {
		return err
	}
	if S13.local, err = startSDKServer(S.upstream.ca, "127.0.0.1", "127.0.0.1", content); err != nil {
		return err
	}
	ca, err := newCA("Throwaway mitmproxy CA (kai-entrypoint SDK e2e)")
	if err != nil {
		return err
	}
	leaf, err := ca.Server(upstreamHost)
	if err != nil {
		return err
	}
	leafKey, err := x509.MarshalPKCS8PrivateKey(leaf.PrivateKey)
	if err != nil {
		return err
	}
	S13.confdir = filepath.Join(dir, "mitmproxy-conf")
	S13.certs = upstreamHost + "=" + filepath.Join(dir, "mitmproxy-leaf.pem")
	for name, data := range map[string][]byte{
		filepath.Join(S13.confdir, "mitmproxy-ca.pem"):      append(ca.KeyPEM(), ca.PEM...),
		filepath.Join(S13.confdir, "mitmproxy-ca-cert.pem"): ca.PEM,
		filepath.Join(dir, "mitmproxy-leaf.pem"): append(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: leafKey}),
			pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leaf.Certificate[0]})...),
	} {
		if err := os.MkdirAll(filepath.Dir(name), 0o700); err != nil {
			return err
		}
		if err := os.WriteFile(name, data, 0o600); err != nil {
			return err
		}
	}
	return nil
}

// sdkRun is one shim + sdk-standin.py process in the chroot.
type sdkRun struct {
	run      string // the prefix the upstreams record requests under
	argv     []string
	env      vars
	exitCode int
	stdout   string
	stderr   string
	doc      struct {
		Versions map[string]any `json:"versions"`
		Results  []sdkResult    `json:"results"`
	}
}

// sdkResult is one call as sdk-standin.py reports it.
type sdkResult struct {
	Client string  `json:"client"`
	URL    string  `json:"url"`
	OK     bool    `json:"ok"`
	Reply  *string `json:"reply"`
	Error  string  `json:"error"`
}

// sdkEnv is the shim's environment inside the chroot: no CA or proxy
// variable, the system bundle found where Debian keeps it.
func sdkEnv(kv vars) vars {
	return vars{
		"PATH":                          "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"HOME":                          "/root",
		"LANG":                          "C.UTF-8",
		"PIP_DISABLE_PIP_VERSION_CHECK": "1",
		"GIT_TERMINAL_PROMPT":           "0",
	}.with(kv)
}

// runStandin runs the shim with env in c, exec'ing sdk-standin.py with args.
func (c *chroot) runStandin(t *testing.T, env vars, args ...string) *sdkRun {
	t.Helper()
	r := &sdkRun{run: fmt.Sprintf("run%d", S13.runs.Add(1)), env: env}
	r.argv = append([]string{"chroot", c.root, "/usr/local/bin/kai-entrypoint", "--",
		"/usr/bin/python3", "/opt/kai-e2e/sdk-standin.py", "--run", r.run}, args...)
	p := startT(t, "", env, r.argv...)
	if !p.wait(3 * time.Minute) {
		p.stop()
		t.Fatalf("%q still running after 3 min; stopped it\n%s", r.argv, p.stderr.String())
	}
	r.exitCode, r.stdout, r.stderr = p.exitCode, p.stdout.String(), p.stderr.String()
	if err := json.Unmarshal([]byte(r.stdout), &r.doc); err != nil {
		t.Fatalf("stdout is not sdk-standin's report: %v\n%s", err, r)
	}
	if S13.versions == nil {
		S13.versions = r.doc.Versions
		t.Logf("Debian 13 client versions: %v", r.doc.Versions)
	}
	return r
}

func (r *sdkRun) String() string {
	return fmt.Sprintf("exit %d\nenv: %q\nargv: %q\n--- stderr ---\n%s--- stdout ---\n%s", r.exitCode, r.env.list(), r.argv, r.stderr, r.stdout)
}

// sdkExpect is what one client must show for one URL of a run.
type sdkExpect struct {
	scenario string
	client   string
	url      string     // as given to the stand-in
	server   *sdkServer // where the client's requests are recorded
	stamp    string     // X-Via-Mitm every recorded request carries: "1" through mitmdump, "" direct
	certErr  bool       // the client must fail certificate verification instead
}

// check checks e and records the outcome for the Debian 13 table.
func (r *sdkRun) check(t *testing.T, e sdkExpect) {
	t.Helper()
	ok := r.checkOne(t, e)
	record(sdkKey(e.client), e.scenario, ok)
}

func (r *sdkRun) checkOne(t *testing.T, e sdkExpect) bool {
	t.Helper()
	i := slices.IndexFunc(r.doc.Results, func(x sdkResult) bool { return x.Client == e.client && x.URL == e.url })
	if i < 0 {
		t.Errorf("%s, %s: no result\n%s", e.client, e.url, r)
		return false
	}
	res := r.doc.Results[i]
	if e.certErr {
		if want := sdkCertError(e.client); res.OK || !strings.Contains(res.Error, want) {
			t.Errorf("%s, %s: want a certificate-verification error containing %q, got ok=%v %s", e.client, e.url, want, res.OK, res.Error)
			return false
		}
		return true
	}
	if !res.OK {
		t.Errorf("%s, %s: failed: %s", e.client, e.url, res.Error)
		return false
	}
	if want, ok := sdkReplies[e.client]; ok && (res.Reply == nil || *res.Reply != want) {
		t.Errorf("%s, %s: reply %v, want %q", e.client, e.url, res.Reply, want)
		return false
	}
	stamps := e.server.stamps(r.run, e.client)
	if len(stamps) == 0 || slices.ContainsFunc(stamps, func(s string) bool { return s != e.stamp }) {
		t.Errorf("%s, %s: the upstream saw X-Via-Mitm %q, want %q on every request (%s)", e.client, e.url, stamps, e.stamp, via(e.stamp))
		return false
	}
	return true
}

// noFlows fails the test, and the scenario for every client, when m
// logged a flow to hostPort after offset.
func noFlows(t *testing.T, m *mitm, offset int, hostPort, scenario string, clients []string) {
	t.Helper()
	if flows := flowsFor(m.log()[offset:], hostPort); len(flows) > 0 {
		t.Errorf("%s should be reached directly, yet mitmdump logged:\n%s", hostPort, strings.Join(flows, "\n"))
		for _, c := range clients {
			record(sdkKey(c), scenario, false)
		}
	}
}

// someFlows fails the test, and the scenario for every client, when m
// logged no flow to hostPort after offset.
func someFlows(t *testing.T, m *mitm, offset int, hostPort, scenario string, clients []string) {
	t.Helper()
	if len(waitFlows(m, offset, hostPort, 2*time.Second)) == 0 {
		t.Errorf("mitmdump logged no flow to %s:\n%s", hostPort, m.log()[offset:])
		for _, c := range clients {
			record(sdkKey(c), scenario, false)
		}
	}
}

// sdkMitm starts the intercepting mitmdump and copies its confdir (private
// key included, as a mounted sidecar volume) into the chroot's /mnt/mitmproxy.
func sdkMitm(t *testing.T, c *chroot) *mitm {
	t.Helper()
	m := startMitmT(t, mitmOpts{confdir: S13.confdir, args: []string{"--certs", S13.certs}})
	files, err := os.ReadDir(m.confdir)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		copyFile(t, filepath.Join(m.confdir, f.Name()), c.path("/mnt/mitmproxy/"+f.Name()), 0o600)
	}
	return m
}

// Every client through mitmdump with only mitmproxy's CA given: verified
// success, mitmproxy's stamp on every request, flows in its log; and in
// the same run direct.test (KAI_PROXY_NO), trusted only through a root the
// chroot's system bundle holds: reached directly and verified.
func TestSDKProxiedAndDirect(t *testing.T) {
	sdkSetup(t)
	c := newChroot(t, S.direct.ca.PEM)
	m := sdkMitm(t, c)
	offset := len(m.log())
	r := c.runStandin(t, sdkEnv(vars{
		"KAI_PROXY_HTTP":  m.proxyURL(nil),
		"KAI_PROXY_HTTPS": m.proxyURL(nil),
		"KAI_PROXY_NO":    directHost,
		"KAI_CERT_DIRS":   "/mnt/mitmproxy",
	}), "--base", S13.up.URL(), "--base", S13.direct.URL())
	for _, client := range sdkClients {
		r.check(t, sdkExpect{scenario: "proxied", client: client, url: S13.up.URL(), server: S13.up, stamp: "1"})
		r.check(t, sdkExpect{scenario: "NO_PROXY host direct, system root", client: client, url: S13.direct.URL(), server: S13.direct})
	}
	someFlows(t, m, offset, S13.up.HostPort(), "proxied", sdkClients)
	noFlows(t, m, offset, S13.direct.HostPort(), "NO_PROXY host direct, system root", sdkClients)
	if r.exitCode != 0 {
		t.Errorf("exit %d, want 0", r.exitCode)
	}
	if t.Failed() {
		t.Logf("%s", r)
	}
}

// The same without the CA: every client fails certificate verification
// (it uses the bundle and does not skip verification). In the same run,
// with no KAI_PROXY_NO at all, the ollama client reaches a model server
// on 127.0.0.1 over plain HTTP directly (the loopback entries the shim
// adds), while the same client's plain-HTTP call to upstream.test goes
// through mitmdump (the proxy variables do reach it).
func TestSDKNoCAFailsVerification(t *testing.T) {
	sdkSetup(t)
	c := newChroot(t, S.direct.ca.PEM)
	m := sdkMitm(t, c)
	offset := len(m.log())
	r := c.runStandin(t, sdkEnv(vars{
		"KAI_PROXY_HTTP":  m.proxyURL(nil),
		"KAI_PROXY_HTTPS": m.proxyURL(nil),
	}), "--base", S13.up.URL(), "--ollama", S13.local.PlainURL(), "--ollama", S13.up.PlainURL())
	for _, client := range sdkClients {
		r.check(t, sdkExpect{scenario: "no-CA error", client: client, url: S13.up.URL(), certErr: true})
	}
	r.check(t, sdkExpect{scenario: "loopback direct", client: "ollama", url: S13.local.PlainURL(), server: S13.local})
	r.check(t, sdkExpect{scenario: "plain HTTP proxied", client: "ollama", url: S13.up.PlainURL(), server: S13.up, stamp: "1"})
	noFlows(t, m, offset, S13.local.host+":"+S13.local.plainPort, "loopback direct", []string{"ollama"})
	if r.exitCode != 1 {
		t.Errorf("exit %d, want 1 (failed calls)", r.exitCode)
	}
	if t.Failed() {
		t.Logf("%s", r)
	}
}

// gRPC: mitmdump 8 does not intercept HTTP/2 prior knowledge reliably, so
// grpcio goes through a non-intercepting CONNECT proxy (a mitmdump that
// ignores every host), verifying the upstream against its CA given in
// KAI_CERT_DIRS; without it, verification fails. With the CA, direct.test
// (KAI_PROXY_NO) is reached directly through a system root the bundle kept.
// (Without any extra CA the shim exports no CA variable, and grpcio then
// trusts only its own roots.pem, not the system's: direct.test fails too.)
func TestSDKGRPCThroughTunnel(t *testing.T) {
	sdkSetup(t)
	c := newChroot(t, S.direct.ca.PEM)
	copyFile(t, S.upstream.caFile, c.path("/mnt/upstream-ca/ca.pem"), 0o644)
	tunnel := startMitmT(t, mitmOpts{confdir: t.TempDir(), args: []string{"--ignore-hosts", ".*"}})
	grpc := []string{"grpc"}
	for _, tc := range []struct {
		name, scenario string
		certDirs       string
		certErr        bool
	}{
		{name: "CA given", scenario: "CONNECT tunnel", certDirs: "/mnt/upstream-ca"},
		{name: "no CA", scenario: "no-CA error", certErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			offset := len(tunnel.log())
			env := sdkEnv(vars{
				"KAI_PROXY_HTTP":  tunnel.proxyURL(nil),
				"KAI_PROXY_HTTPS": tunnel.proxyURL(nil),
				"KAI_PROXY_NO":    directHost,
			})
			if tc.certDirs != "" {
				env["KAI_CERT_DIRS"] = tc.certDirs
			}
			r := c.runStandin(t, env, "--client", "grpc", "--grpc", S13.up.HostPort(), "--grpc", S13.direct.HostPort())
			r.check(t, sdkExpect{scenario: tc.scenario, client: "grpc", url: S13.up.HostPort(), server: S13.up, certErr: tc.certErr})
			someFlows(t, tunnel, offset, S13.up.HostPort(), tc.scenario, grpc)
			if !tc.certErr {
				r.check(t, sdkExpect{scenario: "NO_PROXY host direct, system root", client: "grpc", url: S13.direct.HostPort(), server: S13.direct})
				noFlows(t, tunnel, offset, S13.direct.HostPort(), "NO_PROXY host direct, system root", grpc)
			}
			if t.Failed() {
				t.Logf("%s", r)
			}
		})
	}
}
