package e2e

import (
	"crypto/ecdsa"
	"os"
	"strings"
	"testing"

	"github.com/konveyor/kai-entrypoint/internal/testpki"
)

// Trusting a CA is not enough for Python 3.13, whose default SSL context
// verifies strictly: a CA made without a Subject Key Identifier (and so
// leaves without an Authority Key Identifier), listed in KAI_CERT_DIRS and
// so in the bundle, still fails httpx and the openai SDK, and the shim
// warned about that CA, and only that one, before the exec; a compliant
// CA in the same run passes.
func TestSDKStrictCA(t *testing.T) {
	sdkSetup(t)
	c := newChroot(t, nil)
	content, err := newSDKContent(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	cas := map[string]*testpki.Cert{
		"old.pem":  testpki.Gen(t, testpki.Spec{CN: "Old Corp CA", CA: true, NoSKI: true}),
		"good.pem": testpki.Gen(t, testpki.Spec{CN: "Good Corp CA", CA: true}),
	}
	servers := map[string]*sdkServer{}
	for name, ca := range cas {
		srv, err := startSDKServer(&testCA{Cert: ca.Cert, Key: ca.Key.(*ecdsa.PrivateKey), PEM: ca.PEM()}, "127.0.0.1", "127.0.0.1", content)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { srv.srv.Close() })
		servers[name] = srv
		if err := os.MkdirAll(c.path("/mnt/strict"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(c.path("/mnt/strict/"+name), ca.PEM(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	clients := []string{"httpx", "openai"}
	args := []string{"--base", servers["old.pem"].URL(), "--base", servers["good.pem"].URL()}
	for _, cl := range clients {
		args = append(args, "--client", cl)
	}
	r := c.runStandin(t, sdkEnv(vars{"KAI_CERT_DIRS": "/mnt/strict"}), args...)

	var warned []string
	for _, line := range strings.Split(r.stderr, "\n") {
		if strings.Contains(line, "Python 3.13+ clients") {
			warned = append(warned, line)
		}
	}
	if len(warned) != 1 || !strings.Contains(warned[0], "/mnt/strict/old.pem") || !strings.Contains(warned[0], "Subject Key Identifier") {
		t.Errorf("want exactly one strict warning, about /mnt/strict/old.pem and its missing Subject Key Identifier; got %q", warned)
	}
	for _, cl := range clients {
		r.check(t, sdkExpect{scenario: "strict CA rejected, warned", client: cl, url: servers["old.pem"].URL(), certErr: true})
		r.check(t, sdkExpect{scenario: "compliant CA", client: cl, url: servers["good.pem"].URL(), server: servers["good.pem"]})
	}
	for _, res := range r.doc.Results {
		if res.URL == servers["old.pem"].URL() && !strings.Contains(res.Error, "Key Identifier") {
			t.Errorf("%s: the error does not name the missing key identifier: %s", res.Client, res.Error)
		}
	}
	if t.Failed() {
		t.Logf("%s", r)
	}
}
