package testpki

// Certificates for the CA tests, generated at test time with crypto/x509 so
// that no fixture can expire. ECDSA P-256 keys keep generation fast; the one
// RSA key (mitmproxy's confdir holds an "RSA PRIVATE KEY") is made once.

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Cert is a generated certificate and its key.
type Cert struct {
	Cert *x509.Certificate
	Key  crypto.Signer
}

// DER returns the certificate's DER.
func (c *Cert) DER() []byte { return c.Cert.Raw }

// PEM returns the certificate as one CERTIFICATE block.
func (c *Cert) PEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Cert.Raw})
}

// Sum returns the SHA-256 of the DER, the bundle's dedup key.
func (c *Cert) Sum() [sha256.Size]byte { return sha256.Sum256(c.Cert.Raw) }

// Spec describes a certificate to generate. The certificate keeps its
// times in whole seconds (x509 truncates them): a test that checks it
// against its own clock reads that clock before, truncated likewise.
type Spec struct {
	CN        string
	CA        bool          // basicConstraints CA:TRUE
	NotBefore time.Time     // zero: an hour ago
	NotAfter  time.Time     // zero: in a year
	Parent    *Cert         // issuer; nil: self-signed
	Key       crypto.Signer // nil: a new P-256 key
	Names     []string      // a server's DNS names and IPs; none: CN
	// What a test needs to break one strict X.509 rule (see trust.Strict):
	NoSKI bool                    // a CA without a Subject Key Identifier
	NoAKI bool                    // no Authority Key Identifier although the parent has an SKI
	Edit  func(*x509.Certificate) // changes the template last, before signing
}

var testSerial atomic.Int64

// Gen generates the certificate spec describes.
func Gen(tb testing.TB, spec Spec) *Cert {
	tb.Helper()
	c, err := generate(spec)
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

// generate is Gen for callers without a testing.TB.
func generate(spec Spec) (*Cert, error) {
	key := spec.Key
	if key == nil {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, err
		}
		key = k
	}
	now := time.Now()
	if spec.NotBefore.IsZero() {
		spec.NotBefore = now.Add(-time.Hour)
	}
	if spec.NotAfter.IsZero() {
		spec.NotAfter = now.Add(365 * 24 * time.Hour)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(testSerial.Add(1)),
		Subject:               pkix.Name{CommonName: spec.CN, Organization: []string{"kai-entrypoint tests"}},
		NotBefore:             spec.NotBefore,
		NotAfter:              spec.NotAfter,
		BasicConstraintsValid: true,
		IsCA:                  spec.CA,
	}
	if spec.CA {
		tmpl.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature
	} else {
		tmpl.KeyUsage = x509.KeyUsageDigitalSignature
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		names := spec.Names
		if len(names) == 0 {
			names = []string{spec.CN}
		}
		for _, n := range names {
			if ip := net.ParseIP(n); ip != nil {
				tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
			} else {
				tmpl.DNSNames = append(tmpl.DNSNames, n)
			}
		}
	}
	if spec.NoSKI {
		// crypto/x509 adds an SKI to every template with IsCA: mark the
		// certificate a CA through the extension alone.
		tmpl.IsCA, tmpl.BasicConstraintsValid = false, false
		tmpl.ExtraExtensions = append(tmpl.ExtraExtensions, BasicConstraintsCA(true))
	}
	if spec.Edit != nil {
		spec.Edit(tmpl)
	}
	parent, signer := tmpl, key
	if spec.Parent != nil {
		parent, signer = spec.Parent.Cert, spec.Parent.Key
		if spec.NoAKI {
			// crypto/x509 takes the AKI from the parent's SKI.
			p := *parent
			p.SubjectKeyId = nil
			parent = &p
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, key.Public(), signer)
	if err != nil {
		return nil, err
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &Cert{Cert: c, Key: key}, nil
}

// BasicConstraintsCA is a basicConstraints extension saying CA:TRUE, for
// ExtraExtensions.
func BasicConstraintsCA(critical bool) pkix.Extension {
	der, err := asn1.Marshal(struct{ IsCA bool }{true})
	if err != nil {
		panic(err) // a struct of one bool always marshals
	}
	return pkix.Extension{Id: asn1.ObjectIdentifier{2, 5, 29, 19}, Critical: critical, Value: der}
}

// GenCA is a self-signed CA valid from an hour ago for a year.
func GenCA(tb testing.TB, cn string) *Cert {
	tb.Helper()
	return Gen(tb, Spec{CN: cn, CA: true})
}

// GenIntermediate is a CA issued by parent.
func GenIntermediate(tb testing.TB, cn string, parent *Cert) *Cert {
	tb.Helper()
	return Gen(tb, Spec{CN: cn, CA: true, Parent: parent})
}

// GenLeaf is a server certificate issued by parent.
func GenLeaf(tb testing.TB, cn string, parent *Cert) *Cert {
	tb.Helper()
	return Gen(tb, Spec{CN: cn, Parent: parent})
}

// GenSelfSignedLeaf is a self-signed server certificate (not a CA).
func GenSelfSignedLeaf(tb testing.TB, cn string) *Cert {
	tb.Helper()
	return Gen(tb, Spec{CN: cn})
}

// GenExpired is a CA that expired yesterday.
func GenExpired(tb testing.TB, cn string) *Cert {
	tb.Helper()
	now := time.Now()
	return Gen(tb, Spec{CN: cn, CA: true, NotBefore: now.AddDate(-1, 0, 0), NotAfter: now.Add(-24 * time.Hour)})
}

// GenNotYetValid is a CA valid from tomorrow.
func GenNotYetValid(tb testing.TB, cn string) *Cert {
	tb.Helper()
	now := time.Now()
	return Gen(tb, Spec{CN: cn, CA: true, NotBefore: now.Add(24 * time.Hour), NotAfter: now.AddDate(1, 0, 0)})
}

// GenExpiring is a CA that expires in d.
func GenExpiring(tb testing.TB, cn string, d time.Duration) *Cert {
	tb.Helper()
	now := time.Now()
	return Gen(tb, Spec{CN: cn, CA: true, NotAfter: now.Add(d)})
}

// testRSAKey is one RSA key shared by the tests that need an RSA PRIVATE
// KEY block: generating it takes a while.
var testRSAKey = sync.OnceValues(func() (*rsa.PrivateKey, error) { return rsa.GenerateKey(rand.Reader, 2048) })

func RSAKey(tb testing.TB) *rsa.PrivateKey {
	tb.Helper()
	k, err := testRSAKey()
	if err != nil {
		tb.Fatal(err)
	}
	return k
}

// RSAKeyPEM is key as mitmproxy writes it: PKCS#1, "RSA PRIVATE KEY".
func RSAKeyPEM(key *rsa.PrivateKey) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
}

// ECKeyPEM is key as an "EC PRIVATE KEY" block.
func ECKeyPEM(tb testing.TB, key crypto.Signer) []byte {
	tb.Helper()
	der, err := x509.MarshalECPrivateKey(key.(*ecdsa.PrivateKey))
	if err != nil {
		tb.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der})
}

// DHParamsPEM is a "DH PARAMETERS" block (SEQUENCE { p, g }) of a made-up
// 2048-bit odd p: nobody decodes it, it only has to look the part.
func DHParamsPEM(tb testing.TB) []byte {
	tb.Helper()
	p, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 2048))
	if err != nil {
		tb.Fatal(err)
	}
	p.SetBit(p, 2047, 1).SetBit(p, 0, 1)
	der, err := asn1.Marshal(struct{ P, G *big.Int }{p, big.NewInt(2)})
	if err != nil {
		tb.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "DH PARAMETERS", Bytes: der})
}

// TrustTrailer is the X509_CERT_AUX that `openssl x509 -trustout
// -addtrust serverAuth -setalias test` appends to the certificate:
// SEQUENCE { SEQUENCE { OID serverAuth }, UTF8String "test" }.
var TrustTrailer = []byte{
	0x30, 0x12,
	0x30, 0x0a, 0x06, 0x08, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x01,
	0x0c, 0x04, 't', 'e', 's', 't',
}

// TrustedPEM is c as OpenSSL's TRUSTED CERTIFICATE: the certificate's DER
// followed by the trust trailer, in one block.
func TrustedPEM(c *Cert) []byte {
	der := append(append([]byte(nil), c.DER()...), TrustTrailer...)
	return pem.EncodeToMemory(&pem.Block{Type: "TRUSTED CERTIFICATE", Bytes: der})
}

// Concat joins byte slices.
func Concat(parts ...[]byte) []byte {
	var out []byte
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// WriteFile writes data to path, creating its folder.
func WriteFile(tb testing.TB, path string, data []byte) {
	tb.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		tb.Fatal(err)
	}
}

// Symlink makes newname a Symlink to oldname.
func Symlink(tb testing.TB, oldname, newname string) {
	tb.Helper()
	if err := os.Symlink(oldname, newname); err != nil {
		tb.Fatal(err)
	}
}

// NeedOpenSSL returns the openssl command's path, or skips the test.
func NeedOpenSSL(tb testing.TB) string {
	tb.Helper()
	p, err := exec.LookPath("openssl")
	if err != nil {
		tb.Skip("openssl not installed")
	}
	return p
}

// RunOpenSSL runs openssl with args and returns its stdout; a failure fails
// the test with openssl's stderr.
func RunOpenSSL(tb testing.TB, args ...string) []byte {
	tb.Helper()
	cmd := exec.Command(NeedOpenSSL(tb), args...)
	cmd.Env = []string{"PATH=/usr/bin:/bin", "LC_ALL=C"}
	out, err := cmd.Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		tb.Fatalf("openssl %v: %v\n%s", args, err, stderr)
	}
	return out
}
