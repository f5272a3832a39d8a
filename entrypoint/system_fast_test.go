package entrypoint

import (
	"bytes"
	"crypto/sha256"
	"os"
	"path/filepath"
	"testing"
)

// slowSystemRoots runs the careful scanner only, for comparison.
func slowSystemRoots(t *testing.T, data []byte) *systemRoots {
	t.Helper()
	path := filepath.Join(t.TempDir(), "bundle.pem")
	// A comment line before the first block makes fastSystemRoots decline.
	if err := os.WriteFile(path, append([]byte("# forces the careful scanner\r\n"), data...), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := readSystemRoots(path)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestFastSystemRoots_SameAsCareful checks that the copy-as-is path for
// cleanly written bundles gives exactly the careful scanner's result, and
// that it declines anything it cannot copy as it is.
func TestFastSystemRoots_SameAsCareful(t *testing.T) {
	a, b, c := genCA(t, "Fast A"), genCA(t, "Fast B"), genCA(t, "Fast C")
	inputs := map[string][]byte{
		"clean":                  concat(a.PEM(), b.PEM(), c.PEM()),
		"clean with a duplicate": concat(a.PEM(), b.PEM(), a.PEM(), c.PEM()),
		"text between blocks":    concat(a.PEM(), []byte("# comment\n"), b.PEM()),
	}
	if debian, err := os.ReadFile("/etc/ssl/certs/ca-certificates.crt"); err == nil {
		inputs["debian"] = debian
	}
	for name, data := range inputs {
		t.Run(name, func(t *testing.T) {
			fast := &systemRoots{}
			if !fastSystemRoots(fast, data) {
				t.Fatal("fastSystemRoots declined a cleanly written bundle")
			}
			slow := slowSystemRoots(t, data)
			if !bytes.Equal(fast.PEM, slow.PEM) || fast.Count != slow.Count || len(fast.sums) != len(slow.sums) {
				t.Fatalf("fast path: %d certs, %d bytes; careful: %d certs, %d bytes", fast.Count, len(fast.PEM), slow.Count, len(slow.PEM))
			}
			for sum := range slow.sums {
				if !fast.sums[sum] {
					t.Fatalf("fast path lacks the key %x", sum[:8])
				}
			}
		})
	}
	declined := map[string][]byte{
		"CRLF":          bytes.ReplaceAll(a.PEM(), []byte("\n"), []byte("\r\n")),
		"other block":   concat(a.PEM(), rsaKeyPEM(rsaKey(t))),
		"long line":     bytes.Replace(a.PEM(), []byte("\n"), nil, 2),
		"bad base64":    bytes.Replace(a.PEM(), []byte("M"), []byte("!"), 1),
		"no final LF":   bytes.TrimSuffix(a.PEM(), []byte("\n")),
		"trusted block": trustedPEM(a),
	}
	for name, data := range declined {
		if fastSystemRoots(&systemRoots{sums: map[[sha256.Size]byte]bool{}}, data) {
			t.Errorf("%s: fastSystemRoots accepted what it cannot copy as it is", name)
		}
	}
}
