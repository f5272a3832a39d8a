package e2e

import (
	"crypto/sha1"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// requireJava is requireSuite plus the JVM tools: a failure in CI, a skip
// otherwise.
func requireJava(t *testing.T) {
	t.Helper()
	requireSuite(t)
	var missing []string
	for _, d := range []struct{ bin, pkg string }{
		{bin: "javac", pkg: "openjdk-17-jdk-headless"}, // java Probe.java compiles in memory
		{bin: "keytool", pkg: "openjdk-17-jre-headless"},
		{bin: "mvn", pkg: "maven"},
	} {
		if _, err := exec.LookPath(d.bin); err != nil {
			missing = append(missing, fmt.Sprintf("%s (Debian package: %s)", d.bin, d.pkg))
		}
	}
	if len(missing) == 0 {
		return
	}
	if ci, _ := strconv.ParseBool(os.Getenv("CI")); ci {
		t.Fatalf("end-to-end dependency missing (CI=true, so this is a failure): %s", strings.Join(missing, "; "))
	}
	t.Skipf("end-to-end dependency missing: %s", strings.Join(missing, "; "))
}

// javaEnv is the environment of a shim that runs a JVM behind mitmdump m,
// trusting the CAs in certDir, with the Java trust store at store.
func javaEnv(t *testing.T, m *mitm, certDir, store string) vars {
	return proxyEnv(t, m.proxyURL(nil)).with(vars{
		"KAI_CERT_DIRS":       certDir,
		"KAI_PROXY_NO":        directHost,
		"KAI_JAVA_TRUSTSTORE": store,
	})
}

// otherCADir is a cert folder holding only an unrelated CA: the shim then
// writes a store, but one without mitmproxy's CA.
func otherCADir(t *testing.T) string {
	ca, err := newCA("Unrelated Test CA (kai-entrypoint e2e)")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "other.pem"), ca.PEM, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// probeLine matches one result line of Probe.java's output, javaVersion
// its first line.
var (
	probeLine   = regexp.MustCompile(`(?m)^(HttpClient|HttpsURLConnection)\t(\S+)\t(ok|error)\t(.*)$`)
	javaVersion = regexp.MustCompile(`(?m)^java\.version\t(\S+)$`)
)

// javaClients are the clients of Probe.java, as it names them.
var javaClients = []string{"HttpClient", "HttpsURLConnection"}

// runJavaProbe runs testdata/Probe.java under the shim and returns, by client
// and URL, "ok <body>" or "error <exception>".
func runJavaProbe(t *testing.T, env vars, urls ...string) (map[string]string, *shimRun) {
	t.Helper()
	probe, err := filepath.Abs(filepath.Join("testdata", "Probe.java"))
	if err != nil {
		t.Fatal(err)
	}
	run := runShim(t, env, append([]string{"java", probe}, urls...)...)
	got := map[string]string{}
	for _, m := range probeLine.FindAllStringSubmatch(run.stdout, -1) {
		got[m[1]+" "+m[2]] = m[3] + " " + m[4]
	}
	if run.exitCode != 0 || len(got) != 2*len(urls) {
		t.Fatalf("java Probe.java: exit %d, %d results for %d URLs\n%s", run.exitCode, len(got), len(urls), run)
	}
	if v := javaVersion.FindStringSubmatch(run.stdout); v != nil {
		recordVersion("java", v[1])
	}
	return got, run
}

// TestJavaTrustStoreAndProxy: a JVM reads none of the variables the shim
// exports; with KAI_JAVA_TRUSTSTORE, Java's HttpClient and
// HttpsURLConnection reach the upstream through mitmdump, verifying with
// the store, and in the same run reach direct.test directly (KAI_PROXY_NO),
// whose CA is only among the system roots. With an unrelated CA instead of
// mitmproxy's, both fail PKIX validation.
func TestJavaTrustStoreAndProxy(t *testing.T) {
	requireJava(t)
	m := sharedMitm(t)
	upstream, direct := S.upstream.URL("/v1/models"), S.direct.URL("/v1/models")

	t.Run("with the CA", func(t *testing.T) {
		store := filepath.Join(t.TempDir(), "truststore.p12")
		offset := len(m.log())
		got, run := runJavaProbe(t, javaEnv(t, m, m.confdir, store), upstream, direct)
		proxied := len(waitFlows(m, offset, S.upstream.HostPort(), 2*time.Second)) > 0
		if !proxied {
			t.Errorf("mitmdump logged no flow to %s", S.upstream.HostPort())
		}
		bypassed := len(flowsFor(m.log()[offset:], S.direct.HostPort())) == 0
		if !bypassed {
			t.Errorf("%s is in KAI_PROXY_NO but went through mitmdump:\n%s", directHost, m.log()[offset:])
		}
		for _, client := range javaClients {
			r := got[client+" "+upstream]
			ok := strings.HasPrefix(r, "ok ") && strings.Contains(r, `"x_via_mitm":"1"`)
			if !ok {
				t.Errorf("%s %s: %s, want it through mitmdump (x_via_mitm 1)", client, upstream, r)
			}
			record(client, "proxied", ok && proxied)
			r = got[client+" "+direct]
			ok = strings.HasPrefix(r, "ok ") && strings.Contains(r, `"x_via_mitm":""`)
			if !ok {
				t.Errorf("%s %s: %s, want it direct (no x_via_mitm), trusted through the system roots", client, direct, r)
			}
			record(client, "direct", ok && bypassed)
		}

		// keytool lists the store without a password: as many entries as
		// the bundle has certificates.
		bundle, err := os.ReadFile(run.bundle)
		if err != nil {
			t.Fatal(err)
		}
		want := strings.Count(string(bundle), "-----BEGIN CERTIFICATE-----")
		out, err := exec.Command("keytool", "-list", "-keystore", store, "-storetype", "PKCS12", "-storepass", "").CombinedOutput()
		if err != nil || !strings.Contains(string(out), fmt.Sprintf("Your keystore contains %d entries", want)) {
			t.Errorf("keytool -list %s (err %v), want %d entries:\n%.500s", store, err, want, out)
		}
		if t.Failed() {
			t.Log(run)
		}
	})

	t.Run("without the CA", func(t *testing.T) {
		store := filepath.Join(t.TempDir(), "truststore.p12")
		got, run := runJavaProbe(t, javaEnv(t, m, otherCADir(t), store), upstream)
		for _, client := range javaClients {
			r := got[client+" "+upstream]
			ok := strings.HasPrefix(r, "error ") && strings.Contains(r, "PKIX path building failed")
			if !ok {
				t.Errorf("%s %s: %s, want a PKIX error", client, upstream, r)
			}
			record(client, "no-CA error", ok)
		}
		if _, err := os.Stat(store); err != nil {
			t.Errorf("no trust store written although an extra CA was found: %v", err)
		}
		if t.Failed() {
			t.Log(run)
		}
	})
}

// mavenRepo is a stand-in HTTPS Maven repository holding one parent POM,
// served as upstream.test with the upstream's CA (which mitmdump trusts),
// that records whether each request came through mitmdump.
type mavenRepo struct {
	url  string
	mu   sync.Mutex
	seen []string // "path via", via the X-Via-Mitm header
}

const mavenParent = `<project xmlns="http://maven.apache.org/POM/4.0.0"><modelVersion>4.0.0</modelVersion>` +
	`<groupId>org.konveyor.kai-e2e</groupId><artifactId>parent</artifactId><version>1.0</version><packaging>pom</packaging></project>`

func startMavenRepo(t *testing.T) *mavenRepo {
	cert, err := S.upstream.ca.Server(upstreamHost, upstreamIP)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(upstreamIP, "0"))
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	r := &mavenRepo{url: "https://" + net.JoinHostPort(upstreamHost, port) + "/repo"}
	sum := sha1.Sum([]byte(mavenParent))
	files := map[string]string{
		"/repo/org/konveyor/kai-e2e/parent/1.0/parent-1.0.pom":      mavenParent,
		"/repo/org/konveyor/kai-e2e/parent/1.0/parent-1.0.pom.sha1": hex.EncodeToString(sum[:]),
	}
	srv := newServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.mu.Lock()
		r.seen = append(r.seen, req.URL.Path+" "+req.Header.Get("X-Via-Mitm"))
		r.mu.Unlock()
		body, ok := files[req.URL.Path]
		if !ok {
			http.NotFound(w, req)
			return
		}
		io.WriteString(w, body)
	}), cert)
	go srv.Serve(tls.NewListener(ln, srv.TLSConfig))
	t.Cleanup(func() { srv.Close() })
	return r
}

// requests returns what the repository has served so far.
func (r *mavenRepo) requests() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.seen...)
}

// mavenVersion matches the version line of mvn -V (after a colour reset,
// even with -B).
var mavenVersion = regexp.MustCompile(`Apache Maven (\S+)`)

// TestMavenThroughProxy: Maven, under the shim with KAI_JAVA_TRUSTSTORE,
// downloads a parent POM from a stand-in HTTPS repository through
// mitmdump; with an unrelated CA instead of mitmproxy's, it fails PKIX
// validation.
func TestMavenThroughProxy(t *testing.T) {
	requireJava(t)
	m := sharedMitm(t)
	pom, err := os.ReadFile(filepath.Join("testdata", "maven", "pom.xml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		certDir func(t *testing.T) string
		wantOK  bool
	}{
		{name: "with the CA", certDir: func(*testing.T) string { return m.confdir }, wantOK: true},
		{name: "without the CA", certDir: otherCADir},
	} {
		t.Run(tc.name, func(t *testing.T) {
			repo := startMavenRepo(t)
			project := t.TempDir()
			if err := os.WriteFile(filepath.Join(project, "pom.xml"), []byte(strings.ReplaceAll(string(pom), "@REPO@", repo.url)), 0o644); err != nil {
				t.Fatal(err)
			}
			env := javaEnv(t, m, tc.certDir(t), filepath.Join(t.TempDir(), "truststore.p12"))
			run := runShim(t, env, "mvn", "-B", "-V", "-f", filepath.Join(project, "pom.xml"), "-Dmaven.repo.local="+t.TempDir(), "validate")
			const pomPath = "/repo/org/konveyor/kai-e2e/parent/1.0/parent-1.0.pom"
			if v := mavenVersion.FindStringSubmatch(run.stdout); v != nil {
				recordVersion("maven", v[1])
			}
			served := strings.Join(repo.requests(), "\n")
			if tc.wantOK {
				ok := run.exitCode == 0 && strings.Contains(served, pomPath+" 1")
				if !ok {
					t.Errorf("mvn exit %d; the repository served:\n%s\nwant %s through mitmdump\n%s", run.exitCode, served, pomPath, run)
				}
				record("maven", "proxied", ok)
				return
			}
			ok := run.exitCode != 0 && strings.Contains(run.stdout, "PKIX path building failed")
			if !ok {
				t.Errorf("mvn exit %d, want a failure with a PKIX error\n%s", run.exitCode, run)
			}
			record("maven", "no-CA error", ok)
		})
	}
}
