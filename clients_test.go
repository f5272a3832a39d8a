package main

// Real clients through the shim: a local TLS server whose certificate
// chains to a CA made here, and Debian's /usr/bin/python3 with requests and
// urllib, which read different CA variables (REQUESTS_CA_BUNDLE and
// SSL_CERT_FILE).

import (
	"crypto/tls"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/konveyor/kai-entrypoint/internal/testpki"
)

// requireTool fails in CI and skips elsewhere when a dependency is missing,
// naming the Debian package that provides it.
func requireTool(t *testing.T, pkg string, check ...string) {
	t.Helper()
	if err := exec.Command(check[0], check[1:]...).Run(); err != nil {
		msg := fmt.Sprintf("%s unavailable (%v): install the Debian package %s (.ci/run does)", strings.Join(check, " "), err, pkg)
		if os.Getenv("CI") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
}

// tlsServer starts an HTTPS server on 127.0.0.1 whose leaf is signed by a
// fresh CA, and returns its URL and the CA as PEM.
func tlsServer(t *testing.T) (string, []byte) {
	t.Helper()
	ca, err := testpki.NewCA("Clients Test CA")
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := ca.Server("localhost", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "hello from the TLS server")
	}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{leaf}}
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the failing handshakes are expected
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv.URL, ca.PEM
}

// clientScript fetches argv[2] with the client named by argv[1] and prints
// OK or the exception's class and message.
const clientScript = `
import sys
client, url = sys.argv[1], sys.argv[2]
try:
    if client == "requests":
        import requests
        body = requests.get(url, timeout=10).text
    else:
        import urllib.request
        body = urllib.request.urlopen(url, timeout=10).read().decode()
    print("OK " + body)
except Exception as e:
    print("ERR %s: %s" % (type(e).__name__, e))
`

func TestRealPythonClients(t *testing.T) {
	requireTool(t, "python3-requests", "/usr/bin/python3", "-c", "import requests")
	url, caPEM := tlsServer(t)
	for _, client := range []string{"requests", "urllib"} {
		for _, withCA := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s/ca=%v", client, withCA), func(t *testing.T) {
				dir := t.TempDir()
				env := baseEnv(dir)
				if withCA {
					os.WriteFile(dir+"/certs/test-ca.pem", caPEM, 0o644)
				}
				// What this machine pre-sets: without the shim's bundle the
				// clients must fail against it.
				env = append(env, "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt",
					"REQUESTS_CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt", "NO_PROXY=*")
				r := runShim(t, env, "/usr/bin/python3", "-c", clientScript, client, url)
				out := strings.TrimSpace(r.stdout)
				if r.code != 0 {
					t.Fatalf("exit %d\nstdout: %s\nstderr: %s", r.code, out, r.stderr)
				}
				if withCA {
					if out != "OK hello from the TLS server" {
						t.Errorf("%s with the CA in the cert folder: %s\nstderr: %s", client, out, r.stderr)
					}
					return
				}
				if !strings.HasPrefix(out, "ERR") || !strings.Contains(out, "CERTIFICATE_VERIFY_FAILED") {
					t.Errorf("%s without the CA: %q, want a certificate verification error", client, out)
				}
			})
		}
	}
}
