package containers

import (
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"testing"

	"github.com/konveyor/kai-entrypoint/internal/testpki"
)

// upstreamPKI is a throwaway CA and a server certificate it signed. ServerDir holds
// upstream.pem and upstream.key (for the upstream), CADir only ca.pem (for the sidecar).
type upstreamPKI struct{ ServerDir, CADir string }

func newUpstreamPKI(t *testing.T, serverDir, caDir, host string) upstreamPKI {
	t.Helper()
	ca, err := testpki.NewCA("Throwaway kai-entrypoint container-test upstream CA")
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := ca.Server(host)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(leaf.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	// The containers run as other users: the folders and files must be world-readable.
	write := func(dir, name string, data []byte) {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(caDir, "ca.pem", ca.PEM)
	write(serverDir, "upstream.pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leaf.Certificate[0]}))
	write(serverDir, "upstream.key", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}))
	return upstreamPKI{ServerDir: serverDir, CADir: caDir}
}
