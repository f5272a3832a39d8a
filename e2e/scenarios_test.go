package e2e

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// proxyEnv is the environment of a shim behind mitmdump m: both proxy
// variables, and, as on this machine, an inherited SSL_CERT_FILE naming the
// "system" bundle (the real one plus direct.test's CA).
func proxyEnv(t *testing.T, proxy string) vars {
	return baseEnv(t).with(vars{
		"KAI_PROXY_HTTP":  proxy,
		"KAI_PROXY_HTTPS": proxy,
		"SSL_CERT_FILE":   S.sysCerts,
	})
}

// Scenario 1: every client reaches the upstream through mitmdump, trusting
// mitmproxy's CA from the mounted confdir (private key inside), and in the
// same run reaches direct.test directly (KAI_PROXY_NO), whose CA is only in
// the inherited system bundle: the combined bundle kept the system roots.
func TestProxiedAndDirect(t *testing.T) {
	requireSuite(t)
	m := sharedMitm(t)
	env := proxyEnv(t, m.proxyURL(nil)).with(vars{
		"KAI_CERT_DIRS": m.confdir,
		"KAI_PROXY_NO":  directHost,
	})
	offset := len(m.log())
	models, chat, direct := S.upstream.URL("/v1/models"), S.upstream.URL("/v1/chat/completions"), S.direct.URL("/v1/models")
	plain := S.upstream.PlainURL("/v1/models")
	c := runClients(t, env, models, chat, direct, plain)
	expectOK(t, c, "proxied", models, "1")
	expectOK(t, c, "proxied", chat, "1")
	expectOK(t, c, "direct", direct, "")
	expectOK(t, c, "http:// proxied", plain, "1")

	if flows := waitFlows(m, offset, S.upstream.HostPort(), 2*time.Second); len(flows) == 0 {
		t.Errorf("mitmdump logged no flow to %s, yet the clients got its stamp:\n%s", S.upstream.HostPort(), m.log()[offset:])
	}
	if flows := flowsFor(m.log()[offset:], S.direct.HostPort()); len(flows) > 0 {
		t.Errorf("%s is in KAI_PROXY_NO but went through mitmdump:\n%s", directHost, strings.Join(flows, "\n"))
	}
	for _, run := range c.runs() {
		if run.exitCode != 0 {
			t.Errorf("client process exit code %d, want 0\n%s", run.exitCode, run)
		}
	}
	if t.Failed() {
		t.Logf("mitmdump log of this test:\n%s", m.log()[offset:])
	}
}

// Scenario 2: without the cert folder, nothing tells the clients about
// mitmproxy's CA, and each fails with its certificate-verification error.
// "unset": KAI_CERT_DIRS unset and the default folder absent, as when no
// volume is mounted; "empty": the folder is mounted but holds no CA.
func TestNoCertDirFailsVerification(t *testing.T) {
	requireSuite(t)
	m := sharedMitm(t)
	models := S.upstream.URL("/v1/models")
	for _, tc := range []struct {
		name string
		env  vars
	}{
		{name: "unset", env: vars{}},
		{name: "empty", env: vars{"KAI_CERT_DIRS": t.TempDir()}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := runClients(t, proxyEnv(t, m.proxyURL(nil)).with(tc.env), models)
			expectCertError(t, c, "no-CA error", models)
			for _, run := range c.runs() {
				if run.exitCode != 1 {
					t.Errorf("client process exit code %d, want 1 (a failed call)\n%s", run.exitCode, run)
				}
				// Contract: with no extra CA, no bundle is written.
				if _, err := os.Stat(run.bundle); err == nil {
					t.Errorf("KAI_CA_BUNDLE %s was written although no extra CA was given", run.bundle)
				}
			}
		})
	}
}

// Scenario 1b: OpenShift's cluster proxy as OLM injects it, upper-case
// names only and no KAI_PROXY_* at all. The shim adopts them, so curl's
// http:// requests (which read only the lower-case http_proxy) go through
// mitmdump too, and the no-proxy list gets the cluster's names.
func TestInheritedUpperCaseProxiesAdopted(t *testing.T) {
	requireSuite(t)
	m := sharedMitm(t)
	env := baseEnv(t).with(vars{
		"HTTP_PROXY":              m.proxyURL(nil),
		"HTTPS_PROXY":             m.proxyURL(nil),
		"NO_PROXY":                directHost,
		"KUBERNETES_SERVICE_HOST": "10.96.0.1",
		"SSL_CERT_FILE":           S.sysCerts,
		"KAI_CERT_DIRS":           m.confdir,
	})
	offset := len(m.log())
	models, plain, direct := S.upstream.URL("/v1/models"), S.upstream.PlainURL("/v1/models"), S.direct.URL("/v1/models")
	c := runClients(t, env, models, plain, direct)
	expectOK(t, c, "inherited proxies", models, "1")
	expectOK(t, c, "inherited proxies", plain, "1")
	expectOK(t, c, "inherited proxies", direct, "")
	if flows := flowsFor(m.log()[offset:], S.direct.HostPort()); len(flows) > 0 {
		t.Errorf("%s is in the inherited NO_PROXY but went through mitmdump:\n%s", directHost, strings.Join(flows, "\n"))
	}
	for _, run := range c.runs() {
		if run.exitCode != 0 {
			t.Errorf("client process exit code %d, want 0\n%s", run.exitCode, run)
		}
	}
}

// Scenario 3: KAI_PROXY_NO naming the upstream, or holding "*" among
// other entries, sends every client to it directly: no flow in mitmdump's
// log, and the upstream's throwaway CA is trusted by nobody, so each fails
// with its verification error. Over plain HTTP the same clients get an
// answer without mitmdump's stamp. curl, requests and urllib read "*" as
// "every host" only when it is the whole value, which the shim exports.
func TestNoProxyBypassesMitm(t *testing.T) {
	requireSuite(t)
	m := sharedMitm(t)
	for _, tc := range []struct{ name, noProxy, scenario string }{
		{name: "host", noProxy: upstreamHost, scenario: "NO_PROXY bypass"},
		{name: "star among entries", noProxy: "other.test, *", scenario: "NO_PROXY * bypass"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := proxyEnv(t, m.proxyURL(nil)).with(vars{
				"KAI_CERT_DIRS": m.confdir,
				"KAI_PROXY_NO":  tc.noProxy,
			})
			offset := len(m.log())
			models, plain := S.upstream.URL("/v1/models"), S.upstream.PlainURL("/v1/models")
			c := runClients(t, env, models, plain)
			expectCertError(t, c, tc.scenario, models)
			expectOK(t, c, tc.scenario, plain, "") // plain HTTP: direct, unstamped
			flows := waitFlows(m, offset, S.upstream.HostPort(), time.Second)
			flows = append(flows, flowsFor(m.log()[offset:], S.upstream.PlainHostPort())...)
			if len(flows) > 0 {
				t.Errorf("KAI_PROXY_NO=%q, yet mitmdump logged flows to %s:\n%s", tc.noProxy, upstreamHost, strings.Join(flows, "\n"))
				for _, c := range allClients {
					record(c, tc.scenario, false)
				}
			}
		})
	}
}

// Scenario 4: the sidecar race. Both shims start with KAI_WAIT=30s on an
// empty confdir before mitmdump exists; mitmdump starts a moment later and
// writes its CA; the shims wait, build the bundle, and the clients succeed.
func TestSidecarRaceWait(t *testing.T) {
	requireSuite(t)
	confdir := filepath.Join(t.TempDir(), "mitmproxy")
	if err := os.Mkdir(confdir, 0o700); err != nil {
		t.Fatal(err)
	}
	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	proxy := (&url.URL{Scheme: "http", Host: "127.0.0.1:" + port}).String()
	env := proxyEnv(t, proxy).with(vars{
		"KAI_CERT_DIRS": confdir,
		"KAI_WAIT":      "30s",
	})
	models := S.upstream.URL("/v1/models")
	pyProc, py := startShim(t, env, t.TempDir(), standinArgv([]string{models})...)
	goProc, golang := startShim(t, env.with(vars{goClientMarker: "1"}), t.TempDir(), S.self, models)
	for _, w := range []struct {
		p   *proc
		run *shimRun
	}{{p: pyProc, run: py}, {p: goProc, run: golang}} {
		if !w.p.stderr.waitFor("waiting", startBudget, w.p.done) {
			t.Fatalf("kai-entrypoint did not log that it is waiting (KAI_WAIT=30s, empty %s)\n%s", confdir, w.run.withOutput(w.p))
		}
	}
	time.Sleep(300 * time.Millisecond) // a moment later
	if !pyProc.running() || !goProc.running() {
		t.Fatalf("kai-entrypoint gave up before mitmdump started\n%s\n%s", py.withOutput(pyProc), golang.withOutput(goProc))
	}
	start := time.Now()
	startMitmT(t, mitmOpts{confdir: confdir, port: port})
	t.Logf("mitmdump ready %s after start", time.Since(start).Round(time.Millisecond))

	var wgErr []string
	for _, w := range []struct {
		p   *proc
		run *shimRun
	}{{p: pyProc, run: py}, {p: goProc, run: golang}} {
		w.run.finish(t, w.p, 45*time.Second)
		if !regexp.MustCompile(`(?i)ready after`).MatchString(w.run.stderr) {
			wgErr = append(wgErr, "no \"ready after\" line:\n"+w.run.String())
		}
	}
	for _, e := range wgErr {
		t.Error(e)
	}
	t.Logf("kai-entrypoint (stand-in) stderr:\n%s", py.stderr)
	expectOK(t, &clientsRun{py: py, golang: golang}, "KAI_WAIT race", models, "1")
}

// Scenario 5: a proxy requiring a password that needs percent-encoding.
// Every client authenticates, and the password is in none of the shim's
// output (its own log lines or the stand-in's).
func TestProxyAuthPercentEncoded(t *testing.T) {
	requireSuite(t)
	const user, password = "kai", "S3cr3t@p/ss#w%rd?"
	m := startMitmT(t, mitmOpts{
		confdir:   filepath.Join(t.TempDir(), "mitmproxy"),
		proxyauth: user + ":" + password,
	})
	proxy := m.proxyURL(url.UserPassword(user, password))
	if !strings.Contains(proxy, "%40") {
		t.Fatalf("proxy URL %q is not percent-encoded", proxy)
	}
	env := proxyEnv(t, proxy).with(vars{"KAI_CERT_DIRS": m.confdir})
	models := S.upstream.URL("/v1/models")
	c := runClients(t, env, models)
	expectOK(t, c, "proxy auth", models, "1")
	t.Logf("kai-entrypoint (stand-in) stderr:\n%s", c.py.stderr)
	encoded := strings.TrimPrefix(url.UserPassword("", password).String(), ":")
	for _, run := range c.runs() {
		for _, secret := range []string{password, encoded, "S3cr3t"} {
			for name, out := range map[string]string{"stdout": run.stdout, "stderr": run.stderr} {
				if i := strings.Index(strings.ToLower(out), strings.ToLower(secret)); i >= 0 {
					t.Errorf("the proxy password (%q) appears in kai-entrypoint's %s: ...%s...", secret, name, out[max(0, i-80):min(len(out), i+80)])
				}
			}
		}
	}

	// Control: the wrong password is refused (HTTP 407), so success above
	// means the credentials were passed on, decoded.
	wrong := m.proxyURL(url.UserPassword(user, "wrong"))
	bad := runShim(t, proxyEnv(t, wrong).with(vars{"KAI_CERT_DIRS": m.confdir}), standinArgv([]string{models})...)
	if bad.docErr != nil {
		t.Fatalf("wrong-password control: %v\n%s", bad.docErr, bad)
	}
	if len(bad.doc.Results) != len(pythonClients) {
		t.Errorf("wrong-password control: %d results, want %d\n%s", len(bad.doc.Results), len(pythonClients), bad)
	}
	for _, r := range bad.doc.Results {
		if r.OK || !(strings.Contains(r.Error, "407") || r.Status == 407 || (r.Client == "curl" && r.ExitCode == 56)) {
			t.Errorf("client %s with a wrong proxy password: want a 407 refusal, got %s", r.Client, r)
		}
	}
}

// Scenario 6: the bundle written from mitmproxy's whole confdir holds no
// private key and no DH parameters, every block is a certificate that
// openssl parses, and their number is the shim's logged certificates=N:
// the inherited system roots plus mitmproxy's CA, nothing else.
func TestBundleHasOnlyCertificates(t *testing.T) {
	requireSuite(t)
	m := sharedMitm(t)
	key, err := os.ReadFile(filepath.Join(m.confdir, "mitmproxy-ca.pem"))
	if err != nil || !bytes.Contains(key, []byte("PRIVATE KEY")) {
		t.Fatalf("the confdir should hold mitmproxy's private key (mitmproxy-ca.pem) for this test to mean anything: %v", err)
	}
	run := runShim(t, proxyEnv(t, m.proxyURL(nil)).with(vars{"KAI_CERT_DIRS": m.confdir}), "/bin/true")
	if run.exitCode != 0 {
		t.Fatalf("kai-entrypoint -- /bin/true failed\n%s", run)
	}
	bundle, err := os.ReadFile(run.bundle)
	if err != nil {
		t.Fatalf("reading the bundle: %v\n%s", err, run)
	}
	for _, bad := range []string{"PRIVATE KEY", "DH PARAMETERS", "PKCS12"} {
		if bytes.Contains(bundle, []byte(bad)) {
			t.Errorf("the bundle %s contains %q", run.bundle, bad)
		}
	}

	// Every block must be a CERTIFICATE, and openssl must parse every
	// one: "openssl storeutl" skips a block it cannot parse (and exits
	// non-zero), so its count must equal the number of blocks.
	var got []string // SHA-256 of each certificate's DER
	rest := bundle
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			t.Errorf("bundle block %d is %q, want CERTIFICATE", len(got)+1, block.Type)
			continue
		}
		got = append(got, fingerprint(block.Bytes))
	}
	if strings.TrimSpace(string(rest)) != "" {
		t.Errorf("the bundle has %d bytes of non-PEM data after its last certificate", len(rest))
	}
	n, out, err := opensslCount(run.bundle)
	if err != nil || n != len(got) {
		t.Errorf("openssl storeutl parses %d certificates (%v), the bundle has %d CERTIFICATE blocks:\n%s", n, err, len(got), out)
	}

	// Expected content: the inherited system bundle's certificates plus
	// mitmproxy's CA.
	want := map[string]bool{}
	sys, _ := os.ReadFile(S.sysCerts)
	for rest := sys; ; {
		var block *pem.Block
		if block, rest = pem.Decode(rest); block == nil {
			break
		}
		want[fingerprint(block.Bytes)] = true
	}
	systemN := len(want)
	ca, err := m.caCert()
	if err != nil {
		t.Fatal(err)
	}
	want[fingerprint(ca.Raw)] = true
	have := map[string]bool{}
	for _, f := range got {
		if have[f] {
			t.Errorf("certificate %s is in the bundle twice", f[:16])
		}
		have[f] = true
		if !want[f] {
			t.Errorf("certificate %s is in the bundle but neither in the system bundle nor mitmproxy's CA", f[:16])
		}
	}
	for f := range want {
		if !have[f] {
			t.Errorf("certificate %s (system root or mitmproxy CA) is missing from the bundle", f[:16])
		}
	}

	counts := loggedCounts(run.stderr)
	if counts == nil {
		t.Fatalf("kai-entrypoint logged no certificates=N line\n%s", run)
	}
	if counts["certificates"] != len(got) {
		t.Errorf("kai-entrypoint logged certificates=%d, the bundle holds %d (openssl parses all)", counts["certificates"], len(got))
	}
	if counts["system"] != systemN || counts["extra"] != 1 {
		t.Errorf("kai-entrypoint logged system=%d extra=%d, want system=%d (inherited SSL_CERT_FILE) extra=1 (mitmproxy's CA)",
			counts["system"], counts["extra"], systemN)
	}
	t.Logf("bundle: %d certificates (want %d system + mitmproxy CA); logged %v", len(got), systemN, counts)
}

func fingerprint(der []byte) string {
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:])
}

// opensslCount counts the certificates "openssl storeutl" parses in a PEM
// file.
func opensslCount(path string) (int, []byte, error) {
	out, err := exec.Command("openssl", "storeutl", "-noout", "-certs", path).CombinedOutput()
	n := 0
	var other []byte // openssl's complaints, without the per-certificate lines
	sc := bufio.NewScanner(bytes.NewReader(out))
	line := regexp.MustCompile(`^\d+: Certificate$`)
	for sc.Scan() {
		if line.MatchString(strings.TrimSpace(sc.Text())) {
			n++
		} else {
			other = append(append(other, sc.Bytes()...), '\n')
		}
	}
	return n, other, err
}

// The stand-in's server mode, as a Kai server runs in the image: started
// through kai-entrypoint (exec: the shim's PID becomes Python's), it
// answers /health, probes the upstream through mitmdump on /probe, and
// exits 0 on SIGTERM.
func TestStandinServeProbeAndSIGTERM(t *testing.T) {
	requireSuite(t)
	m := sharedMitm(t)
	env := proxyEnv(t, m.proxyURL(nil)).with(vars{"KAI_CERT_DIRS": m.confdir})
	models := S.upstream.URL("/v1/models")
	p, run := startShim(t, env, t.TempDir(), python, S.standin, "serve", "--host", "127.0.0.1", "--port", "0", "--url", models)
	if !p.stdout.waitFor("listening on", startBudget, p.done) {
		t.Fatalf("the stand-in did not start serving\n%s", run.withOutput(p))
	}
	base := regexp.MustCompile(`listening on (http://\S+)`).FindStringSubmatch(p.stdout.String())[1]

	cmdline, _ := os.ReadFile("/proc/" + strconv.Itoa(p.cmd.Process.Pid) + "/cmdline")
	if !bytes.Contains(cmdline, []byte("kai-standin.py")) {
		t.Errorf("PID %d is %q, want the stand-in: kai-entrypoint should exec it", p.cmd.Process.Pid, bytes.ReplaceAll(cmdline, []byte{0}, []byte{' '}))
	}

	client := &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{Proxy: nil}}
	resp, err := client.Get(base + "/health")
	if err != nil {
		t.Fatalf("GET /health: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("GET /health: HTTP %d, want 200", resp.StatusCode)
	}

	// /probe with the --url given at start, every client; then with
	// ?url= and ?client= overriding them.
	chat := S.upstream.URL("/v1/chat/completions")
	for _, q := range []struct {
		query   string
		clients []string
		url     string
	}{
		{clients: pythonClients, url: models},
		{query: "?url=" + url.QueryEscape(chat) + "&client=curl&client=aiohttp", clients: []string{"curl", "aiohttp"}, url: chat},
	} {
		resp, err = client.Get(base + "/probe" + q.query)
		if err != nil {
			t.Fatalf("GET /probe%s: %v", q.query, err)
		}
		var doc report
		err = json.NewDecoder(resp.Body).Decode(&doc)
		resp.Body.Close()
		if err != nil {
			t.Fatalf("GET /probe%s: body: %v", q.query, err)
		}
		if resp.StatusCode != 200 || !doc.OK || len(doc.Results) != len(q.clients) {
			t.Errorf("GET /probe%s: HTTP %d ok=%v with %d results, want 200, true, %d", q.query, resp.StatusCode, doc.OK, len(doc.Results), len(q.clients))
		}
		for i, r := range doc.Results {
			if i < len(q.clients) && r.Client != q.clients[i] || r.URL != q.url {
				t.Errorf("GET /probe%s: result %d is client %s for %s, want %v for %s", q.query, i, r.Client, r.URL, q.clients, q.url)
			}
			if !r.OK || r.XViaMitm == nil || *r.XViaMitm != "1" {
				t.Errorf("client %s via /probe%s: want HTTP 200 with x_via_mitm=\"1\", got %s", r.Client, q.query, r)
			}
		}
	}

	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if !p.wait(20 * time.Second) {
		t.Fatalf("the stand-in did not exit within 20 s of SIGTERM\n%s", run.withOutput(p))
	}
	if p.exitCode != 0 {
		t.Errorf("the stand-in exited %d after SIGTERM, want 0\n%s", p.exitCode, run.withOutput(p))
	}
}

// Real environments are not clean: this machine presets SSL_CERT_FILE,
// REQUESTS_CA_BUNDLE and friends to the system bundle, and a stale proxy
// may be set in either case (Python and curl prefer lowercase, Go
// uppercase). kai-entrypoint must override them all, and must give a proxy
// written without a scheme one (aiohttp rejects a bare host:port). An
// inherited NO_PROXY is left out: kai-entrypoint keeps its entries.
func TestOverridesAndNormalises(t *testing.T) {
	requireSuite(t)
	m := sharedMitm(t)
	models := S.upstream.URL("/v1/models")
	stale := "http://127.0.0.1:9" // discard port: nothing listens
	preset := vars{
		"HTTP_PROXY": stale, "http_proxy": stale, "HTTPS_PROXY": stale, "https_proxy": stale,
		"SSL_CERT_DIR": "/etc/ssl/certs",
	}
	for _, name := range []string{"REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "AWS_CA_BUNDLE", "GRPC_DEFAULT_SSL_ROOTS_FILE_PATH",
		"NODE_EXTRA_CA_CERTS", "PIP_CERT", "GIT_SSL_CAINFO", "HTTPLIB2_CA_CERTS", "CLOUDSDK_CORE_CUSTOM_CA_CERTS_FILE"} {
		preset[name] = systemBundle
	}
	for _, tc := range []struct {
		name, scenario string
		env            vars
	}{
		{name: "preset variables", scenario: "preset vars", env: proxyEnv(t, m.proxyURL(nil)).with(preset)},
		{name: "schemeless proxy", scenario: "host:port proxy", env: proxyEnv(t, m.addr())},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := runClients(t, tc.env.with(vars{"KAI_CERT_DIRS": m.confdir}), models)
			expectOK(t, c, tc.scenario, models, "1")
		})
	}
}
