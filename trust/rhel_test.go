package trust

import (
	"bytes"
	"crypto/sha256"
	"encoding/pem"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
)

// rhelBundles writes RHEL/UBI's two system bundles, made by p11-kit's trust
// extract from the PEM certificates of roots (testdata/rhel-trust.sh), with
// distrusted marked distrusted, into a temporary folder: tls-ca-bundle.pem
// (what /etc/pki/tls/certs/ca-bundle.crt links to) and ca-bundle.trust.crt.
// Without p11-kit the test fails under CI=true and skips otherwise.
func rhelBundles(tb testing.TB, roots string, distrusted []byte) (tlsBundle, trustBundle string) {
	tb.Helper()
	for _, bin := range []string{"trust", "setpriv"} {
		if _, err := exec.LookPath(bin); err != nil {
			if ci, _ := strconv.ParseBool(os.Getenv("CI")); ci {
				tb.Fatalf("%v (Debian packages: p11-kit p11-kit-modules util-linux; CI=true, so this is a failure)", err)
			}
			tb.Skipf("%v (Debian packages: p11-kit p11-kit-modules util-linux)", err)
		}
	}
	dir := tb.TempDir()
	d := filepath.Join(dir, "distrusted.pem")
	if err := os.WriteFile(d, distrusted, 0o644); err != nil {
		tb.Fatal(err)
	}
	cmd := exec.Command("sh", "testdata/rhel-trust.sh", roots, d, dir)
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"}
	if out, err := cmd.CombinedOutput(); err != nil {
		tb.Fatalf("%q: %v\n%s", cmd.Args, err, out)
	}
	return filepath.Join(dir, "tls-ca-bundle.pem"), filepath.Join(dir, "ca-bundle.trust.crt")
}

// TestReadSystemRoots_RHEL reads RHEL's two system bundle formats, made by
// p11-kit from Debian's roots with the first of them distrusted: each
// gives Debian's roots but the distrusted one, with no warning. p11-kit
// leaves the distrusted root out of tls-ca-bundle.pem (PEM with "# label"
// comment lines), but lists it in ca-bundle.trust.crt as a TRUSTED
// CERTIFICATE that rejects every purpose, which the shim must drop.
func TestReadSystemRoots_RHEL(t *testing.T) {
	const debian = "/etc/ssl/certs/ca-certificates.crt"
	data, err := os.ReadFile(debian)
	if err != nil {
		t.Fatalf("Debian's system bundle (package ca-certificates): %v", err)
	}
	var ders [][]byte
	for rest := data; ; {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			break
		}
		ders = append(ders, b.Bytes)
	}
	distrusted := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ders[0]})
	want := map[[sha256.Size]byte]bool{}
	for _, der := range ders[1:] {
		want[sha256.Sum256(der)] = true
	}
	tlsBundle, trustBundle := rhelBundles(t, debian, distrusted)

	for _, tt := range []struct {
		name   string
		path   string
		blocks int // BEGIN lines p11-kit wrote
	}{
		{name: "tls-ca-bundle.pem", path: tlsBundle, blocks: len(ders) - 1},
		{name: "ca-bundle.trust.crt", path: trustBundle, blocks: len(ders)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			in, err := os.ReadFile(tt.path)
			if err != nil {
				t.Fatal(err)
			}
			if n := bytes.Count(in, []byte("-----BEGIN ")); n != tt.blocks || !bytes.HasPrefix(in, []byte("# ")) {
				t.Fatalf("p11-kit wrote %d blocks (want %d), starting %q: not the format under test", n, tt.blocks, in[:min(len(in), 40)])
			}
			s, err := ReadSystemRoots(tt.path)
			if err != nil {
				t.Fatal(err)
			}
			got := map[[sha256.Size]byte]bool{}
			for rest := s.PEM; ; {
				var b *pem.Block
				if b, rest = pem.Decode(rest); b == nil {
					break
				}
				got[sha256.Sum256(b.Bytes)] = true
			}
			if s.Count != len(want) || len(got) != len(want) || len(s.Warnings) != 0 {
				t.Errorf("Count %d, %d distinct certificates, warnings %q; want %d, none", s.Count, len(got), s.Warnings, len(want))
			}
			if got[sha256.Sum256(ders[0])] {
				t.Errorf("the distrusted root %s is among the system roots", distrusted)
			}
			for sum := range want {
				if !got[sum] {
					t.Errorf("Debian root %x missing", sum[:8])
				}
			}
			checkFraming(t, s.PEM, s.Count)
		})
	}
}
