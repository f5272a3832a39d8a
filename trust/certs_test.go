package trust

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/konveyor/kai-entrypoint/internal/testpki"
)

func TestParseCertFile(t *testing.T) {
	ca, ca2, inter := testpki.GenCA(t, "parse CA"), testpki.GenCA(t, "parse CA 2"), (*testpki.Cert)(nil)
	inter = testpki.GenIntermediate(t, "parse intermediate", ca)
	key := testpki.ECKeyPEM(t, ca.Key)
	lines := func(b []byte) int { return bytes.Count(b, []byte("\n")) }
	notACert := []byte("-----BEGIN CERTIFICATE-----\n" + b64([]byte{0x30, 0x03, 0x02, 0x01, 0x05}) + "\n-----END CERTIFICATE-----\n")
	badB64 := []byte("-----BEGIN CERTIFICATE-----\nMIIC%%%%\n-----END CERTIFICATE-----\n")
	badTrusted := []byte("-----BEGIN TRUSTED CERTIFICATE-----\n" + b64([]byte("not ASN.1 at all")) + "\n-----END TRUSTED CERTIFICATE-----\n")
	const path = "/certs/corp/ca.pem"

	tests := []parseCase{
		{name: "one PEM certificate", data: ca.PEM(), want: []*testpki.Cert{ca}, blocks: []int{1}},
		{name: "chain in one file", data: testpki.Concat(inter.PEM(), ca.PEM()), want: []*testpki.Cert{inter, ca}, blocks: []int{1, 2}},
		{name: "key then certificate (mitmproxy-ca.pem)", data: testpki.Concat(key, ca.PEM()), want: []*testpki.Cert{ca}, blocks: []int{2}},
		{name: "DER certificate", data: ca.DER(), want: []*testpki.Cert{ca}, blocks: []int{0}},
		{name: "TRUSTED CERTIFICATE", data: testpki.TrustedPEM(ca), want: []*testpki.Cert{ca}, blocks: []int{1}},
		{name: "X509 CERTIFICATE", data: bytes.ReplaceAll(ca.PEM(), []byte(" CERTIFICATE"), []byte(" X509 CERTIFICATE")), want: []*testpki.Cert{ca}, blocks: []int{1}},
		{name: "BOM, CRLF, concatenated, no final newline", data: bytes.TrimSuffix(testpki.Concat([]byte("\xef\xbb\xbf"),
			bytes.ReplaceAll(testpki.Concat(bytes.TrimSuffix(ca.PEM(), []byte("\n")), ca2.PEM()), []byte("\n"), []byte("\r\n"))), []byte("\r\n")), want: []*testpki.Cert{ca, ca2}, blocks: []int{1, 2}},
		{name: "empty file"},
		{name: "README", data: []byte("Drop the corporate CA in this folder.\n")},
		{name: "README quoting the markers", data: []byte("Drop the corporate CA here: the -----BEGIN CERTIFICATE----- line,\n" +
			"the base64 and the -----END CERTIFICATE----- line.\n")},
		{name: "key only", data: key},
		{name: "DH parameters only", data: testpki.DHParamsPEM(t)},
		{name: "certificate request only", data: []byte("-----BEGIN CERTIFICATE REQUEST-----\nMIIB\n-----END CERTIFICATE REQUEST-----\n")},
		{name: "binary starting with a SEQUENCE (.p12 stand-in)", data: []byte{0x30, 0x82, 0x0a, 0x01, 0x02, 0x01, 0x03, 0x30, 0x82}},
		{name: "DER with trailing bytes", data: testpki.Concat(ca.DER(), []byte{0, 0}), want: []*testpki.Cert{ca}, blocks: []int{0}, errs: []string{
			fmt.Sprintf("%s: byte %d: neither a DER certificate nor blanks", path, len(ca.DER())),
		}},
		{name: "unterminated key before the certificate", data: testpki.Concat([]byte("-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA\n"), ca.PEM()), want: []*testpki.Cert{ca}, blocks: []int{2}},
		{name: "bad base64 between good blocks", data: testpki.Concat(ca.PEM(), badB64, ca2.PEM()), want: []*testpki.Cert{ca, ca2}, blocks: []int{1, 3}, errs: []string{
			fmt.Sprintf("%s: block 2 (CERTIFICATE, line %d): invalid base64 body", path, 1+lines(ca.PEM())),
		}},
		{name: "valid base64 that is not a certificate", data: testpki.Concat(key, notACert), errs: []string{
			fmt.Sprintf("%s: block 2 (CERTIFICATE, line %d): not a valid certificate: malformed tbs certificate", path, 1+lines(key)),
		}},
		{name: "TRUSTED CERTIFICATE that is not ASN.1", data: badTrusted, errs: []string{
			path + ": block 1 (TRUSTED CERTIFICATE, line 1): not a valid certificate: bad ASN.1",
		}},
		{name: "unterminated certificate", data: testpki.Concat(ca.PEM(), []byte("-----BEGIN CERTIFICATE-----\nMIIB\n")), want: []*testpki.Cert{ca}, blocks: []int{1}, errs: []string{
			fmt.Sprintf("%s: block 2 (CERTIFICATE, line %d): no END line", path, 1+lines(ca.PEM())),
		}},
	}
	checkParseCertFile(t, path, tests)
}

// parseCase is one row of a parseCertFile table.
type parseCase struct {
	name   string
	data   []byte
	want   []*testpki.Cert // in order
	blocks []int           // Cert.Block of each
	errs   []string        // exact error texts, in order
}

// checkParseCertFile runs parseCertFile on each row's data, read from path.
func checkParseCertFile(t *testing.T, path string, tests []parseCase) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			certs, warnings, errs := parseCertFile(path, tt.data)
			if got, want := errTexts(errs), tt.errs; strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Errorf("errors:\n got %q\nwant %q", got, want)
			}
			if len(warnings) != 0 {
				t.Errorf("warnings %q, want none", warnings)
			}
			if len(certs) != len(tt.want) {
				t.Fatalf("got %d certificates, want %d", len(certs), len(tt.want))
			}
			for i, c := range certs {
				w := tt.want[i]
				if !bytes.Equal(c.X509.Raw, w.DER()) {
					t.Errorf("cert %d is %q, want %q", i, c.X509.Subject.CommonName, w.Cert.Subject.CommonName)
				}
				if c.Sum != sha256.Sum256(w.DER()) {
					t.Errorf("cert %d: Sum is not the SHA-256 of the DER", i)
				}
				if c.Source != path || c.Block != tt.blocks[i] {
					t.Errorf("cert %d from %s block %d, want %s block %d", i, c.Source, c.Block, path, tt.blocks[i])
				}
			}
		})
	}
}

// TestParseCertFile_OpenSSLTrustout reads a TRUSTED CERTIFICATE made by
// `openssl x509 -trustout`, and checks that the hand-made one of the other
// tests has the same shape.
func TestParseCertFile_OpenSSLTrustout(t *testing.T) {
	testpki.NeedOpenSSL(t)
	ca := testpki.GenCA(t, "trustout CA")
	dir := t.TempDir()
	in := filepath.Join(dir, "ca.pem")
	testpki.WriteFile(t, in, ca.PEM())
	out := testpki.RunOpenSSL(t, "x509", "-in", in, "-trustout", "-addtrust", "serverAuth", "-setalias", "test")
	if !bytes.Contains(out, []byte("-----BEGIN TRUSTED CERTIFICATE-----")) {
		t.Fatalf("openssl did not write a TRUSTED CERTIFICATE:\n%s", out)
	}
	if !bytes.Equal(out, testpki.TrustedPEM(ca)) {
		t.Errorf("trustedPEM differs from openssl's output:\n%s\nwant\n%s", testpki.TrustedPEM(ca), out)
	}
	certs, warnings, errs := parseCertFile(in, out)
	if len(errs) != 0 || len(warnings) != 0 || len(certs) != 1 || !bytes.Equal(certs[0].X509.Raw, ca.DER()) {
		t.Fatalf("got %d certificates, warnings %q, errors %v; want the CA", len(certs), warnings, errs)
	}
}

func errTexts(errs []error) []string {
	var out []string
	for _, e := range errs {
		out = append(out, e.Error())
	}
	return out
}

func certNames(certs []Cert) []string {
	var out []string
	for _, c := range certs {
		out = append(out, c.X509.Subject.CommonName)
	}
	return out
}
