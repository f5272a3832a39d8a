package e2e

import (
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/konveyor/kai-entrypoint/internal/testpki"
)

// probeRun is one kai-entrypoint --probe run.
type probeRun struct {
	code           int
	stdout, stderr string
}

// runProbe runs kai-entrypoint with args (--probe ...) and env, and checks
// that it wrote no bundle.
func runProbe(t *testing.T, env vars, args ...string) probeRun {
	t.Helper()
	bundle := filepath.Join(t.TempDir(), "ca-bundle.pem")
	p := startT(t, "", env.with(vars{"KAI_CA_BUNDLE": bundle}), append([]string{S.entrypoint}, args...)...)
	if !p.wait(startBudget) {
		p.stop()
		t.Fatalf("kai-entrypoint %q still running after %s; stopped it", args, startBudget)
	}
	r := probeRun{code: p.exitCode, stdout: p.stdout.String(), stderr: p.stderr.String()}
	if _, err := os.Stat(bundle); err == nil {
		t.Errorf("--probe wrote the bundle %s", bundle)
	}
	return r
}

// startProbeUpstream serves HTTPS on direct.test's address with cert.
func startProbeUpstream(t *testing.T, cert func() (tls.Certificate, error)) string {
	t.Helper()
	c, err := cert()
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(directIP, "0"))
	if err != nil {
		t.Fatal(err)
	}
	s := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	s.Listener = ln
	s.TLS = &tls.Config{Certificates: []tls.Certificate{c}}
	s.Config.ErrorLog = log.New(io.Discard, "", 0) // failed handshakes are the point
	s.StartTLS()
	t.Cleanup(s.Close)
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	return "https://" + net.JoinHostPort(directHost, port) + "/"
}

// TestProbe runs --probe through a real mitmdump and against real
// upstreams on loopback, one scenario of the issue per row.
func TestProbe(t *testing.T) {
	requireSuite(t)
	m := sharedMitm(t)
	mitmCA := filepath.Join(m.confdir, "mitmproxy-ca-cert.pem")
	const password = "pr0be-S3cret-pw"
	auth := startMitmT(t, mitmOpts{confdir: filepath.Join(t.TempDir(), "mitmproxy-conf"), proxyauth: "kai:" + password})
	authCA := filepath.Join(auth.confdir, "mitmproxy-ca-cert.pem")
	downPort, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	ca, err := testpki.NewCA("Throwaway Probe Test CA (kai-entrypoint e2e)")
	if err != nil {
		t.Fatal(err)
	}
	caFile := filepath.Join(t.TempDir(), "probe-ca.pem")
	if err := os.WriteFile(caFile, ca.PEM, 0o644); err != nil {
		t.Fatal(err)
	}
	expired := startProbeUpstream(t, func() (tls.Certificate, error) {
		return ca.ServerValid(time.Now().Add(-72*time.Hour), time.Now().Add(-24*time.Hour), directHost)
	})
	mismatch := startProbeUpstream(t, func() (tls.Certificate, error) { return ca.Server("other.test") })
	models := S.upstream.URL("/v1/models")

	for _, tc := range []struct {
		name     string
		env      vars
		url      string
		wantCode int
		want     []string // in the output, each
		absent   []string // nowhere in the output
		json     bool     // every stdout line is a JSON object with a step
	}{
		{
			name: "trusted mitmproxy CA",
			env:  proxyEnv(t, m.proxyURL(nil)).with(vars{"KAI_CERT_DIRS": mitmCA}),
			url:  models,
			want: []string{"through the proxy " + m.proxyURL(nil), "opened a tunnel", `anchored by \"CN=mitmproxy,O=mitmproxy\" from ` + mitmCA, `chain.0.subject="CN=` + upstreamHost + `,O=kai-entrypoint tests"`, "GET answered HTTP/1.1 200 OK",
				// mitmproxy before 10.1.2 (Debian 12 has 8.1.1) issues leaves without an AKI.
				"will reject this certificate: it has no Authority Key Identifier", "step=strict"},
			wantCode: 0,
		},
		{
			name:     "mitmproxy CA missing",
			env:      proxyEnv(t, m.proxyURL(nil)),
			url:      models,
			want:     []string{"unknown authority", "CN=mitmproxy,O=mitmproxy"},
			absent:   []string{"GET answered"},
			wantCode: 69,
		},
		{
			name:     "proxy wants credentials",
			env:      proxyEnv(t, auth.proxyURL(nil)).with(vars{"KAI_CERT_DIRS": authCA}),
			url:      models,
			want:     []string{"407 Proxy Authentication Required", "the proxy wants credentials: put them in KAI_PROXY_HTTPS as user:password@"},
			wantCode: 69,
		},
		{
			name:     "proxy credentials given",
			env:      proxyEnv(t, auth.proxyURL(url.UserPassword("kai", password))).with(vars{"KAI_CERT_DIRS": authCA}),
			url:      models,
			want:     []string{"through the proxy http://xxxxx@" + auth.addr(), "opened a tunnel", "GET answered HTTP/1.1 200 OK"},
			absent:   []string{password, base64.StdEncoding.EncodeToString([]byte("kai:" + password)), "Authorization"},
			wantCode: 0,
		},
		{
			name:     "proxy down",
			env:      proxyEnv(t, "http://127.0.0.1:"+downPort),
			url:      models,
			want:     []string{"cannot connect to the proxy at 127.0.0.1:" + downPort + ": connection refused"},
			wantCode: 69,
		},
		{
			name:     "no-proxy host reached directly",
			env:      proxyEnv(t, m.proxyURL(nil)).with(vars{"KAI_PROXY_NO": directHost}),
			url:      S.direct.URL("/v1/models"),
			want:     []string{"the NO_PROXY entry " + directHost + " bypasses the proxy", "connected to the server at " + S.direct.HostPort(), "system root (" + S.sysCerts + ")", "GET answered HTTP/1.1 200 OK"},
			wantCode: 0,
		},
		{
			name:     "system root still an anchor when an extra CA is given",
			env:      proxyEnv(t, m.proxyURL(nil)).with(vars{"KAI_PROXY_NO": directHost, "KAI_CERT_DIRS": mitmCA}),
			url:      S.direct.URL("/v1/models"),
			want:     []string{"the NO_PROXY entry " + directHost + " bypasses the proxy", "system root (" + S.sysCerts + ")", "GET answered HTTP/1.1 200 OK"},
			wantCode: 0,
		},
		{
			name:     "expired upstream",
			env:      baseEnv(t).with(vars{"KAI_CERT_DIRS": caFile}),
			url:      expired,
			want:     []string{"no proxy is set", "expired: the certificate \\\"CN=" + directHost + ",O=kai-entrypoint tests\\\""},
			wantCode: 69,
		},
		{
			name:     "name mismatch",
			env:      baseEnv(t).with(vars{"KAI_CERT_DIRS": caFile}),
			url:      mismatch,
			want:     []string{"name mismatch: the certificate is for other.test, not " + directHost},
			wantCode: 69,
		},
		{
			name:     "plain http through the proxy",
			env:      proxyEnv(t, m.proxyURL(nil)),
			url:      S.upstream.PlainURL("/v1/models"),
			want:     []string{"through the proxy " + m.proxyURL(nil) + ", from KAI_PROXY_HTTP (HTTP_PROXY)", "GET answered HTTP/1.1 200 OK"},
			absent:   []string{"step=tls", "tunnel"},
			wantCode: 0,
		},
		{
			name:     "JSON, one object per step",
			env:      proxyEnv(t, m.proxyURL(nil)).with(vars{"KAI_CERT_DIRS": mitmCA, "KAI_ENTRYPOINT_LOG_FORMAT": "json"}),
			url:      models,
			want:     []string{`"step":"proxy"`, `"step":"connect"`, `"step":"proxy-connect"`, `"step":"tls"`, `"step":"http"`},
			json:     true,
			wantCode: 0,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := runProbe(t, tc.env, "--probe", tc.url)
			out := r.stdout + r.stderr
			if r.code != tc.wantCode {
				t.Errorf("exit %d, want %d", r.code, tc.wantCode)
			}
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q", w)
				}
			}
			for _, a := range tc.absent {
				if strings.Contains(out, a) {
					t.Errorf("output holds %q", a)
				}
			}
			if tc.json {
				for _, line := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
					var obj map[string]any
					if err := json.Unmarshal([]byte(line), &obj); err != nil || obj["step"] == nil {
						t.Errorf("stdout line is no JSON object with a step (%v): %s", err, line)
					}
				}
			}
			if t.Failed() {
				t.Logf("--- stdout ---\n%s--- stderr ---\n%s", r.stdout, r.stderr)
			}
		})
	}
}

// TestProbeSaveThenTrust: a proxy that sends its root CA with every
// certificate (mitmproxy does when its mitmproxy-ca.pem holds a chain after
// the key and the CA) is not trusted; --probe-save writes that root, and
// the folder in KAI_CERT_DIRS makes the next probe pass.
func TestProbeSaveThenTrust(t *testing.T) {
	requireSuite(t)
	root, err := testpki.NewCA("Throwaway Proxy Root CA (kai-entrypoint e2e)")
	if err != nil {
		t.Fatal(err)
	}
	confdir := t.TempDir()
	for name, data := range map[string][]byte{
		"mitmproxy-ca.pem":      append(append(root.KeyPEM(), root.PEM...), root.PEM...),
		"mitmproxy-ca-cert.pem": root.PEM,
	} {
		if err := os.WriteFile(filepath.Join(confdir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	m := startMitmT(t, mitmOpts{confdir: confdir})
	save := filepath.Join(t.TempDir(), "saved")
	env := proxyEnv(t, m.proxyURL(nil))
	r := runProbe(t, env, "--probe", S.upstream.URL("/v1/models"), "--probe-save", save)
	saved := filepath.Join(save, "Throwaway_Proxy_Root_CA__kai-entrypoint_e2e_.pem")
	for _, want := range []string{"unknown authority", `trust its top certificate \"CN=Throwaway Proxy Root CA`, "as " + saved + ": add " + save + " (or the file) to KAI_CERT_DIRS"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("without the CA: output lacks %q", want)
		}
	}
	if r.code != 69 {
		t.Errorf("without the CA: exit %d, want 69", r.code)
	}
	if t.Failed() {
		t.Fatalf("--- stdout ---\n%s--- stderr ---\n%s", r.stdout, r.stderr)
	}
	r = runProbe(t, env.with(vars{"KAI_CERT_DIRS": save}), "--probe", S.upstream.URL("/v1/models"))
	if r.code != 0 || !strings.Contains(r.stdout, "from "+saved) {
		t.Fatalf("with the saved CA: exit %d, want 0 anchored by %s\n--- stdout ---\n%s--- stderr ---\n%s", r.code, saved, r.stdout, r.stderr)
	}
}
