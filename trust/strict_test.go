package trust

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/konveyor/kai-entrypoint/internal/testpki"
)

// TestStrict checks each rule with a certificate that breaks it alone, and
// the same chain with the real openssl: `openssl verify` must fail with
// OpenSSL's own reason for a flagged row and pass for the others.
func TestStrict(t *testing.T) {
	const (
		py   = "Python 3.13+ clients (httpx, openai, aiohttp) will reject chains through this CA: "
		rhel = "RHEL 9's DEFAULT crypto policy rejects chains through this CA: "
	)
	root := testpki.GenCA(t, "strict root")
	pinned := testpki.GenSelfSignedLeaf(t, "pinned.example")
	weakKey, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	isCA := func(c *x509.Certificate) bool { return c.BasicConstraintsValid && c.IsCA }
	tests := []struct {
		name   string
		cert   *testpki.Cert                // checked by Strict
		parent *testpki.Cert                // cert's issuer in the CA file; nil: cert is self-signed
		server bool                         // cert is the server's: openssl verifies it, not a leaf it issued
		shape  func(*x509.Certificate) bool // cert really is what the row names
		want   []string
		flags  string // openssl verify's flags: the mode that rejects
		reason string // openssl verify's error; "": it verifies
	}{
		{name: "compliant root CA", cert: root,
			shape: func(c *x509.Certificate) bool {
				return isCA(c) && critical(c, oidBasicConstraints) && c.KeyUsage&x509.KeyUsageCertSign != 0 && len(c.SubjectKeyId) > 0
			},
			flags: "-x509_strict -auth_level 2"},
		{name: "compliant intermediate CA", cert: testpki.GenIntermediate(t, "strict inter", root), parent: root,
			shape: func(c *x509.Certificate) bool { return isCA(c) && len(c.AuthorityKeyId) > 0 },
			flags: "-x509_strict -auth_level 2"},
		{name: "root signed with SHA-1: an anchor's own signature is not checked",
			cert:  testpki.Gen(t, testpki.Spec{CN: "sha1 root", CA: true, Edit: func(c *x509.Certificate) { c.SignatureAlgorithm = x509.ECDSAWithSHA1 }}),
			shape: func(c *x509.Certificate) bool { return c.SignatureAlgorithm == x509.ECDSAWithSHA1 },
			flags: "-x509_strict -auth_level 2"},
		{name: "no basicConstraints",
			cert: testpki.Gen(t, testpki.Spec{CN: "no bc", CA: true, Edit: func(c *x509.Certificate) {
				c.BasicConstraintsValid, c.IsCA, c.SubjectKeyId = false, false, []byte{1, 2, 3, 4}
			}}),
			shape: func(c *x509.Certificate) bool { return !c.BasicConstraintsValid && len(c.SubjectKeyId) > 0 },
			want:  []string{py + "it has no basicConstraints extension (a CA needs one, marked critical)"},
			flags: "-x509_strict", reason: "invalid CA certificate"},
		{name: "basicConstraints not critical",
			cert: testpki.Gen(t, testpki.Spec{CN: "bc not critical", CA: true, Edit: func(c *x509.Certificate) {
				c.ExtraExtensions = []pkix.Extension{testpki.BasicConstraintsCA(false)}
			}}),
			shape: func(c *x509.Certificate) bool { return isCA(c) && !critical(c, oidBasicConstraints) },
			want:  []string{py + "its basicConstraints extension is not marked critical"},
			flags: "-x509_strict", reason: "Basic Constraints of CA cert not marked critical"},
		{name: "no keyUsage",
			cert:  testpki.Gen(t, testpki.Spec{CN: "no ku", CA: true, Edit: func(c *x509.Certificate) { c.KeyUsage = 0 }}),
			shape: func(c *x509.Certificate) bool { return isCA(c) && !hasExt(c, 2, 5, 29, 15) },
			want:  []string{py + "it has no keyUsage extension (a CA needs one with keyCertSign)"},
			flags: "-x509_strict", reason: "CA cert does not include key usage extension"},
		{name: "keyUsage without keyCertSign, rejected without strict mode too",
			cert: testpki.Gen(t, testpki.Spec{CN: "ku no certsign", CA: true, Edit: func(c *x509.Certificate) {
				c.KeyUsage = x509.KeyUsageDigitalSignature | x509.KeyUsageCRLSign
			}}),
			shape:  func(c *x509.Certificate) bool { return isCA(c) && c.KeyUsage&x509.KeyUsageCertSign == 0 },
			want:   []string{"OpenSSL-based clients (Python, curl) reject chains through this CA: its keyUsage lacks keyCertSign"},
			reason: "invalid CA certificate"},
		{name: "no Subject Key Identifier",
			cert:  testpki.Gen(t, testpki.Spec{CN: "no ski", CA: true, NoSKI: true}),
			shape: func(c *x509.Certificate) bool { return isCA(c) && len(c.SubjectKeyId) == 0 },
			want:  []string{py + "it has no Subject Key Identifier"},
			flags: "-x509_strict", reason: "Missing Subject Key Identifier"},
		{name: "intermediate without Authority Key Identifier",
			cert: testpki.Gen(t, testpki.Spec{CN: "no aki", CA: true, Parent: root, NoAKI: true}), parent: root,
			shape: func(c *x509.Certificate) bool {
				return isCA(c) && len(c.AuthorityKeyId) == 0 && len(c.SubjectKeyId) > 0
			},
			want:  []string{py + "it has no Authority Key Identifier"},
			flags: "-x509_strict", reason: "Missing Authority Key Identifier"},
		{name: "empty subject",
			cert:  testpki.Gen(t, testpki.Spec{CA: true, Edit: func(c *x509.Certificate) { c.Subject = pkix.Name{} }}),
			shape: func(c *x509.Certificate) bool { return isCA(c) && len(c.Subject.Names) == 0 },
			want:  []string{py + "its subject is empty"},
			flags: "-x509_strict", reason: "Subject name empty"},
		{name: "1024-bit RSA key",
			cert:  testpki.Gen(t, testpki.Spec{CN: "weak rsa", CA: true, Key: weakKey}),
			shape: func(c *x509.Certificate) bool { return c.PublicKey.(*rsa.PublicKey).N.BitLen() == 1024 },
			want:  []string{rhel + "its RSA key has 1024 bits (2048 is the minimum)"},
			flags: "-auth_level 2", reason: "CA certificate key too weak"},
		{name: "intermediate signed with SHA-1",
			cert: testpki.Gen(t, testpki.Spec{CN: "sha1 inter", CA: true, Parent: root, Edit: func(c *x509.Certificate) {
				c.SignatureAlgorithm = x509.ECDSAWithSHA1
			}}), parent: root,
			shape: func(c *x509.Certificate) bool { return c.SignatureAlgorithm == x509.ECDSAWithSHA1 },
			want:  []string{rhel + "it is signed with ECDSA-SHA1"},
			flags: "-auth_level 2", reason: "CA signature digest algorithm too weak"},
		{name: "compliant server certificate", cert: testpki.GenLeaf(t, "ok.example", root), parent: root, server: true,
			shape: func(c *x509.Certificate) bool { return !c.IsCA && len(c.AuthorityKeyId) > 0 },
			flags: "-x509_strict -auth_level 2"},
		{name: "server certificate without Authority Key Identifier (mitmproxy 8)",
			cert: testpki.Gen(t, testpki.Spec{CN: "mitm.example", Parent: root, NoAKI: true}), parent: root, server: true,
			shape: func(c *x509.Certificate) bool { return !c.IsCA && len(c.AuthorityKeyId) == 0 },
			want:  []string{"Python 3.13+ clients (httpx, openai, aiohttp) will reject this certificate: it has no Authority Key Identifier"},
			flags: "-x509_strict", reason: "Missing Authority Key Identifier"},
		{name: "pinned self-signed server certificate: a whole chain, not checked by strict mode", cert: pinned, parent: pinned, server: true,
			shape: func(c *x509.Certificate) bool { return !c.IsCA && len(c.AuthorityKeyId) == 0 },
			flags: "-x509_strict -auth_level 2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !tt.shape(tt.cert.Cert) {
				t.Fatal("the certificate is not what the row names")
			}
			var got []string
			for _, is := range Strict(tt.cert.Cert) {
				got = append(got, is.Text)
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("got  %q\nwant %q", got, tt.want)
			}

			openssl := testpki.NeedOpenSSL(t)
			dir := t.TempDir()
			cas, leaf := tt.cert.PEM(), tt.cert
			if tt.server {
				cas = nil
			} else {
				leaf = leafOf(t, tt.cert)
			}
			if tt.parent != nil {
				cas = append(cas, tt.parent.PEM()...)
			}
			testpki.WriteFile(t, filepath.Join(dir, "ca.pem"), cas)
			testpki.WriteFile(t, filepath.Join(dir, "leaf.pem"), leaf.PEM())
			args := append(strings.Fields(tt.flags), "-CAfile", filepath.Join(dir, "ca.pem"), filepath.Join(dir, "leaf.pem"))
			cmd := exec.Command(openssl, append([]string{"verify"}, args...)...)
			cmd.Env = []string{"PATH=/usr/bin:/bin", "LC_ALL=C"}
			out, err := cmd.CombinedOutput()
			switch {
			case tt.reason == "" && err != nil:
				t.Errorf("openssl verify %s: %v\n%s", tt.flags, err, out)
			case tt.reason != "" && (err == nil || !strings.Contains(string(out), tt.reason)):
				t.Errorf("openssl verify %s: %v, want a failure with %q\n%s", tt.flags, err, tt.reason, out)
			}
		})
	}
}

// leafOf is a compliant server certificate issued by ca, with an Authority
// Key Identifier even when ca has no Subject Key Identifier.
func leafOf(t *testing.T, ca *testpki.Cert) *testpki.Cert {
	keyID := ca.Cert.SubjectKeyId
	if len(keyID) == 0 {
		keyID = []byte{0x6b, 0x61, 0x69}
	}
	aki, err := asn1.Marshal(struct {
		KeyID []byte `asn1:"optional,tag:0"`
	}{keyID})
	if err != nil {
		t.Fatal(err)
	}
	return testpki.Gen(t, testpki.Spec{CN: "server.example", Parent: ca, Edit: func(c *x509.Certificate) {
		c.ExtraExtensions = []pkix.Extension{{Id: asn1.ObjectIdentifier{2, 5, 29, 35}, Value: aki}}
	}})
}

func hasExt(c *x509.Certificate, oid ...int) bool {
	for _, e := range c.Extensions {
		if e.Id.Equal(oid) {
			return true
		}
	}
	return false
}

// BenchmarkStrict is the start-up cost of the rules for 1,000 extra CAs,
// compliant and each lacking its Subject Key Identifier (one warning):
//
//	go test -run '^$' -bench Strict -benchmem ./trust/
func BenchmarkStrict(b *testing.B) {
	for _, bb := range []struct {
		name string
		spec testpki.Spec
	}{
		{name: "compliant", spec: testpki.Spec{CN: "bench", CA: true}},
		{name: "no SKI", spec: testpki.Spec{CN: "bench", CA: true, NoSKI: true}},
	} {
		cas := make([]*x509.Certificate, 1000)
		for i := range cas {
			cas[i] = testpki.Gen(b, bb.spec).Cert
		}
		b.Run(bb.name, func(b *testing.B) {
			for b.Loop() {
				for _, c := range cas {
					Strict(c)
				}
			}
		})
	}
}
