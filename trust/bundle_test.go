package trust

import (
	"bytes"
	"crypto/x509"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/konveyor/kai-entrypoint/internal/testpki"
)

func TestBuildBundle(t *testing.T) {
	s1, s2 := testpki.GenCA(t, "system 1"), testpki.GenCA(t, "system 2")
	e1, e2, e3 := testpki.GenCA(t, "extra 1"), testpki.GenCA(t, "extra 2"), testpki.GenCA(t, "extra 3")
	sysPath := filepath.Join(t.TempDir(), "system.crt")
	testpki.WriteFile(t, sysPath, testpki.Concat(s1.PEM(), s2.PEM()))
	cert := func(c *testpki.Cert, src string) Cert { return Cert{X509: c.Cert, Sum: c.Sum(), Source: src} }
	noSys, err := ReadSystemRoots("")
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name      string
		sys       string // system bundle path; "" for none
		extras    []Cert
		want      []*testpki.Cert // the bundle's certificates, in order
		wantExtra []string        // sources of Extras
		inSystem  []string        // sources of InSystem
		dups      int
	}{
		{name: "system first, then extras in the given order", sys: sysPath,
			extras: []Cert{cert(e3, "c.pem"), cert(e1, "a.pem"), cert(e2, "b.pem")},
			want:   []*testpki.Cert{s1, s2, e3, e1, e2}, wantExtra: []string{"c.pem", "a.pem", "b.pem"}, dups: 0},
		{name: "extra already in the system bundle goes to InSystem", sys: sysPath,
			extras: []Cert{cert(e1, "a.pem"), cert(s2, "corp/s2.pem"), cert(e2, "b.pem")},
			want:   []*testpki.Cert{s1, s2, e1, e2}, wantExtra: []string{"a.pem", "b.pem"}, inSystem: []string{"corp/s2.pem"}, dups: 0},
		{name: "duplicates counted once each, first kept", sys: sysPath,
			extras: []Cert{cert(e1, "a.pem"), cert(s2, "s2.pem"), cert(e1, "copy/a.pem"), cert(e2, "b.pem"), cert(s2, "copy/s2.pem"), cert(e1, "a.cer")},
			want:   []*testpki.Cert{s1, s2, e1, e2}, wantExtra: []string{"a.pem", "b.pem"}, inSystem: []string{"s2.pem"}, dups: 3},
		{name: "every extra in the system bundle", sys: sysPath,
			extras: []Cert{cert(s1, "s1.pem"), cert(s2, "s2.pem")},
			want:   []*testpki.Cert{s1, s2}, inSystem: []string{"s1.pem", "s2.pem"}, dups: 0},
		{name: "no system bundle",
			extras: []Cert{cert(e2, "b.pem"), cert(e1, "a.pem"), cert(e2, "b2.pem")},
			want:   []*testpki.Cert{e2, e1}, wantExtra: []string{"b.pem", "a.pem"}, dups: 1},
		{name: "no extras", sys: sysPath, want: []*testpki.Cert{s1, s2}, dups: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sys := noSys
			if tt.sys != "" {
				if sys, err = ReadSystemRoots(tt.sys); err != nil {
					t.Fatal(err)
				}
			}
			const out = "/tmp/kai-entrypoint/ca-bundle.pem"
			b := Build(out, sys, tt.extras)
			want := []byte(bundleHeader)
			for _, c := range tt.want {
				want = append(want, c.PEM()...)
			}
			if !bytes.Equal(b.bytes(), want) {
				t.Errorf("Data:\n%s\nwant (%s):\n%s", b.bytes(), subjects(tt.want), want)
			}
			if b.Path != out || b.SystemPath != tt.sys || b.System != sys.Count || b.Total() != len(tt.want) || b.Duplicates != tt.dups {
				t.Errorf("Path %s SystemPath %q System %d Total %d Duplicates %d; want %s %q %d %d %d",
					b.Path, b.SystemPath, b.System, b.Total(), b.Duplicates, out, tt.sys, sys.Count, len(tt.want), tt.dups)
			}
			if got := sources(b.Extras); fmt.Sprint(got) != fmt.Sprint(tt.wantExtra) {
				t.Errorf("Extras from %v, want %v", got, tt.wantExtra)
			}
			if got := sources(b.InSystem); fmt.Sprint(got) != fmt.Sprint(tt.inSystem) {
				t.Errorf("InSystem from %v, want %v", got, tt.inSystem)
			}
			checkFraming(t, withoutHeader(t, b.bytes()), b.Total())
			if again := Build(out, sys, tt.extras); !bytes.Equal(again.bytes(), b.bytes()) {
				t.Error("the same inputs gave different bytes")
			}
		})
	}
}

// TestBuildBundle_MessyInputs reads a folder of every awkward input form
// with the real system bundle, and checks that Go and OpenSSL read every
// certificate of the result, and that OpenSSL verifies a server certificate
// against it.
func TestBuildBundle_MessyInputs(t *testing.T) {
	root := testpki.GenCA(t, "messy root")
	inter := testpki.GenIntermediate(t, "messy intermediate", root)
	leaf := testpki.GenLeaf(t, "server.messy.test", inter)
	bom, crlf, cat1, cat2, der, trusted := testpki.GenCA(t, "bom"), testpki.GenCA(t, "crlf"), testpki.GenCA(t, "cat 1"), testpki.GenCA(t, "cat 2"), testpki.GenCA(t, "der"), testpki.GenCA(t, "trusted")
	dir := t.TempDir()
	certs := filepath.Join(dir, "certs")
	testpki.WriteFile(t, filepath.Join(certs, "01-bom.pem"), testpki.Concat([]byte("\xef\xbb\xbf"), bom.PEM()))
	testpki.WriteFile(t, filepath.Join(certs, "02-crlf.crt"), bytes.ReplaceAll(crlf.PEM(), []byte("\n"), []byte("\r\n")))
	testpki.WriteFile(t, filepath.Join(certs, "03-cat.pem"), testpki.Concat(bytes.TrimSuffix(cat1.PEM(), []byte("\n")), bytes.TrimSuffix(cat2.PEM(), []byte("\n"))))
	testpki.WriteFile(t, filepath.Join(certs, "04-der.cer"), der.DER())
	testpki.WriteFile(t, filepath.Join(certs, "05-trusted.pem"), testpki.TrustedPEM(trusted))
	testpki.WriteFile(t, filepath.Join(certs, "06-chain.pem"), testpki.Concat([]byte("subject=/CN=messy intermediate\n"), inter.PEM(), []byte("\nsubject=/CN=messy root\n"), root.PEM()))
	testpki.WriteFile(t, filepath.Join(certs, "07-key.pem"), testpki.ECKeyPEM(t, root.Key))
	testpki.WriteFile(t, filepath.Join(certs, "08-copy.pem"), bom.PEM())
	wantExtras := []*testpki.Cert{bom, crlf, cat1, cat2, der, trusted, inter, root}

	sysPath, _ := FindSystemBundle("", filepath.Join(dir, "out.pem"), SystemFiles)
	sys, err := ReadSystemRoots(sysPath)
	if err != nil {
		t.Fatal(err)
	}
	r := ReadSource(certs)
	if len(r.Errs) != 0 || len(r.Certs) != 9 {
		t.Fatalf("ReadSource: %d certificates, errors %v", len(r.Certs), r.Errs)
	}
	b := Build(filepath.Join(dir, "out.pem"), sys, r.Certs)
	if len(b.Extras) != len(wantExtras) || b.Duplicates != 1 || b.Total() != sys.Count+len(wantExtras) {
		t.Fatalf("%d extras, %d duplicates, total %d", len(b.Extras), b.Duplicates, b.Total())
	}
	for i, c := range b.Extras {
		if c.Sum != wantExtras[i].Sum() {
			t.Errorf("extra %d is %q, want %q", i, c.X509.Subject.CommonName, wantExtras[i].Cert.Subject.CommonName)
		}
	}
	if !bytes.HasPrefix(withoutHeader(t, b.bytes()), sys.PEM) {
		t.Error("the bundle does not start with the system roots")
	}
	checkFraming(t, withoutHeader(t, b.bytes()), b.Total())
	if bytes.Contains(b.bytes(), []byte("TRUSTED CERTIFICATE-----")) || bytes.Contains(b.bytes(), []byte(" KEY-----")) {
		t.Error("the bundle holds a TRUSTED CERTIFICATE or a key block")
	}
	// Go: every extra is a usable root.
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b.bytes()) {
		t.Fatal("AppendCertsFromPEM found nothing")
	}
	if _, err := leaf.Cert.Verify(x509.VerifyOptions{Roots: pool, DNSName: "server.messy.test"}); err != nil {
		t.Errorf("the leaf does not verify against the bundle: %v", err)
	}

	out := filepath.Join(dir, "out.pem")
	if _, err := WriteAtomic(out, b.bytes()); err != nil {
		t.Fatal(err)
	}
	t.Run("openssl", func(t *testing.T) {
		if got := opensslCount(t, out); got != b.Total() {
			t.Errorf("OpenSSL reads %d certificates of %d", got, b.Total())
		}
		leafPath := filepath.Join(dir, "leaf.pem")
		testpki.WriteFile(t, leafPath, leaf.PEM())
		if got := testpki.RunOpenSSL(t, "verify", "-CAfile", out, leafPath); string(got) != leafPath+": OK\n" {
			t.Errorf("openssl verify: %q", got)
		}
	})
}

// withoutHeader returns a bundle's bytes after bundleHeader, which they
// must start with.
func withoutHeader(t *testing.T, data []byte) []byte {
	t.Helper()
	rest, ok := bytes.CutPrefix(data, []byte(bundleHeader))
	if !ok {
		t.Errorf("the bundle does not start with %q", bundleHeader)
	}
	return rest
}

// opensslCount is the number of certificates OpenSSL reads from a PEM
// file, by two routes; a corrupt block makes both fail.
func opensslCount(t *testing.T, path string) int {
	t.Helper()
	p7 := filepath.Join(t.TempDir(), "bundle.p7b")
	testpki.RunOpenSSL(t, "crl2pkcs7", "-nocrl", "-certfile", path, "-out", p7)
	n := bytes.Count(testpki.RunOpenSSL(t, "pkcs7", "-in", p7, "-print_certs", "-noout"), []byte("subject="))
	out := testpki.RunOpenSSL(t, "storeutl", "-certs", "-noout", path)
	if want := fmt.Sprintf("Total found: %d\n", n); !bytes.HasSuffix(out, []byte(want)) {
		t.Errorf("openssl storeutl: %q, want %q", out[max(0, len(out)-40):], want)
	}
	return n
}

func sources(certs []Cert) []string {
	var out []string
	for _, c := range certs {
		out = append(out, c.Source)
	}
	return out
}

func subjects(certs []*testpki.Cert) []string {
	var out []string
	for _, c := range certs {
		out = append(out, c.Cert.Subject.CommonName)
	}
	return out
}

// bytes returns the bundle's contents, as WriteAtomic writes them.
func (b *Bundle) bytes() []byte { return bytes.Join(b.parts, nil) }
