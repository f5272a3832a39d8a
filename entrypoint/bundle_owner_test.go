package entrypoint

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestWriteAtomic_ForeignFolder: a bundle folder owned by another user is
// refused, even when it already holds the right bytes.
func TestWriteAtomic_ForeignFolder(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to give the folder away")
	}
	dir := filepath.Join(t.TempDir(), "kai-entrypoint")
	if err := os.Mkdir(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "ca-bundle.pem")
	data := []byte("-----BEGIN CERTIFICATE-----\nAA==\n-----END CERTIFICATE-----\n")
	if _, err := writeAtomic(path, data); err != nil {
		t.Fatalf("own folder: %v", err)
	}
	if err := os.Chown(dir, 4242, 4242); err != nil {
		t.Fatal(err)
	}
	_, err := writeAtomic(path, data)
	if err == nil {
		t.Fatal("wrote into a folder that belongs to uid 4242")
	}
	for _, want := range []string{`KAI_CA_BUNDLE="` + path + `"`, "belongs to uid 4242", "set KAI_CA_BUNDLE"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	if err := os.Chown(dir, 0, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := writeAtomic(path, data); err != nil {
		t.Errorf("root's folder: %v", err)
	}
}
