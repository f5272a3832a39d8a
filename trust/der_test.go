package trust

import (
	"bytes"
	"encoding/asn1"
	"encoding/pem"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/konveyor/kai-entrypoint/internal/testpki"
)

// derTLV is one constructed DER element of the given class and tag
// holding parts.
func derTLV(tb testing.TB, class, tag int, parts ...[]byte) []byte {
	tb.Helper()
	return mustDER(tb, asn1.RawValue{Class: class, Tag: tag, IsCompound: true, Bytes: testpki.Concat(parts...)})
}

// mustDER is v in DER.
func mustDER(tb testing.TB, v any) []byte {
	tb.Helper()
	b, err := asn1.Marshal(v)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// p7b is certs as `openssl crl2pkcs7 -nocrl -certfile ... -outform DER`
// writes them (TestParseCertFile_OpenSSLPKCS7 checks that): a PKCS#7
// SignedData with no content, no CRLs and no signers.
func p7b(tb testing.TB, certs ...*testpki.Cert) []byte {
	tb.Helper()
	var raw [][]byte
	for _, c := range certs {
		raw = append(raw, c.DER())
	}
	seq := func(parts ...[]byte) []byte { return derTLV(tb, asn1.ClassUniversal, asn1.TagSequence, parts...) }
	set := func(parts ...[]byte) []byte { return derTLV(tb, asn1.ClassUniversal, asn1.TagSet, parts...) }
	oidData := asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 1}
	signedData := seq(mustDER(tb, 1), set(), seq(mustDER(tb, oidData)),
		derTLV(tb, asn1.ClassContextSpecific, 0, raw...), set())
	return seq(mustDER(tb, oidSignedData), derTLV(tb, asn1.ClassContextSpecific, 0, signedData))
}

func TestParseCertFile_DERAndPKCS7(t *testing.T) {
	ca, ca2 := testpki.GenCA(t, "der CA"), testpki.GenCA(t, "der CA 2")
	key := testpki.ECKeyPEM(t, ca.Key)
	keyDER := keyDERFromPEM(t, key)
	notACert := []byte{0x30, 0x03, 0x02, 0x01, 0x05}
	block := func(typ string, der []byte) []byte { return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}) }
	lines := func(b []byte) int { return bytes.Count(b, []byte("\n")) }
	p7 := p7b(t, ca, ca2)
	// A PKCS#7 whose second certificate does not parse: its TBSCertificate
	// is a SET (0x31), not a SEQUENCE.
	badP7 := p7b(t, ca, ca2)
	badP7[bytes.Index(badP7, ca2.DER())+4] = 0x31
	const path = "/certs/corp/ca.p7b"

	tests := []parseCase{
		{name: "DER certificate and a newline", data: testpki.Concat(ca.DER(), []byte("\n")), want: []*testpki.Cert{ca}, blocks: []int{0}},
		{name: "DER certificates concatenated, CRLF after", data: testpki.Concat(ca.DER(), ca2.DER(), []byte("\r\n")),
			want: []*testpki.Cert{ca, ca2}, blocks: []int{0, 0}},
		{name: "DER certificates with a newline between", data: testpki.Concat(ca.DER(), []byte("\n"), ca2.DER()),
			want: []*testpki.Cert{ca, ca2}, blocks: []int{0, 0}},
		{name: "PKCS#7 in DER (.p7b)", data: p7, want: []*testpki.Cert{ca, ca2}, blocks: []int{0, 0}},
		{name: "PKCS#7 in DER, a newline, a DER certificate", data: testpki.Concat(p7b(t, ca2), []byte("\n"), ca.DER()),
			want: []*testpki.Cert{ca2, ca}, blocks: []int{0, 0}},
		{name: "PKCS7 block", data: block("PKCS7", p7), want: []*testpki.Cert{ca, ca2}, blocks: []int{1, 1}},
		{name: "PKCS #7 SIGNED DATA block", data: block("PKCS #7 SIGNED DATA", p7), want: []*testpki.Cert{ca, ca2}, blocks: []int{1, 1}},
		{name: "key, PKCS7 block, certificate", data: testpki.Concat(key, block("PKCS7", p7b(t, ca2)), ca.PEM()),
			want: []*testpki.Cert{ca2, ca}, blocks: []int{2, 3}},
		{name: "PKCS#7 without certificates", data: p7b(t)},
		{name: "PKCS#7 of data, not SignedData", data: derTLV(t, asn1.ClassUniversal, asn1.TagSequence,
			mustDER(t, asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 1}), derTLV(t, asn1.ClassContextSpecific, 0, mustDER(t, []byte("x"))))},
		{name: "DER key", data: keyDER},
		{name: "DER key, then a certificate", data: testpki.Concat(keyDER, ca.DER())},
		{name: "DER certificate, then a SEQUENCE that is not one", data: testpki.Concat(ca.DER(), notACert), want: []*testpki.Cert{ca}, blocks: []int{0},
			errs: []string{fmt.Sprintf("%s: byte %d: not a valid certificate: malformed tbs certificate", path, len(ca.DER()))}},
		{name: "DER certificate, then text", data: testpki.Concat(ca.DER(), []byte("\n# corp CA\n")), want: []*testpki.Cert{ca}, blocks: []int{0},
			errs: []string{fmt.Sprintf("%s: byte %d: neither a DER certificate nor blanks", path, len(ca.DER())+1)}},
		{name: "DER certificate, then a truncated one", data: testpki.Concat(ca.DER(), ca2.DER()[:100]), want: []*testpki.Cert{ca}, blocks: []int{0},
			errs: []string{fmt.Sprintf("%s: byte %d: neither a DER certificate nor blanks", path, len(ca.DER()))}},
		{name: "PKCS#7 holding a certificate that does not parse", data: badP7, want: []*testpki.Cert{ca}, blocks: []int{0},
			errs: []string{path + ": PKCS#7 at byte 0: certificate 2: not a valid certificate: malformed tbs certificate"}},
		{name: "PKCS#7 cut after its content type", data: derTLV(t, asn1.ClassUniversal, asn1.TagSequence, mustDER(t, oidSignedData)),
			errs: []string{path + ": PKCS#7 at byte 0: malformed PKCS#7 SignedData"}},
		{name: "PKCS7 block holding a certificate", data: testpki.Concat(ca.PEM(), block("PKCS7", ca2.DER())), want: []*testpki.Cert{ca}, blocks: []int{1},
			errs: []string{fmt.Sprintf("%s: block 2 (PKCS7, line %d): not a PKCS#7 SignedData", path, 1+lines(ca.PEM()))}},
	}
	checkParseCertFile(t, path, tests)
}

// TestParseCertFile_OpenSSLPKCS7 reads the .p7b and .p7c files `openssl
// crl2pkcs7` writes, from a cert folder, and checks that p7b makes the
// same bytes.
func TestParseCertFile_OpenSSLPKCS7(t *testing.T) {
	ca, ca2 := testpki.GenCA(t, "p7 CA"), testpki.GenCA(t, "p7 CA 2")
	dir := t.TempDir()
	work := filepath.Join(dir, ".work")
	testpki.WriteFile(t, filepath.Join(work, "a.pem"), ca.PEM())
	testpki.WriteFile(t, filepath.Join(work, "b.pem"), ca2.PEM())
	crl2pkcs7 := func(args ...string) []byte {
		return testpki.RunOpenSSL(t, append([]string{"crl2pkcs7", "-nocrl", "-certfile", filepath.Join(work, "a.pem"),
			"-certfile", filepath.Join(work, "b.pem")}, args...)...)
	}
	der, text := crl2pkcs7("-outform", "DER"), crl2pkcs7()
	if !bytes.Equal(der, p7b(t, ca, ca2)) {
		t.Errorf("p7b differs from openssl's DER:\n%x\nwant\n%x", p7b(t, ca, ca2), der)
	}
	if !bytes.HasPrefix(text, []byte("-----BEGIN PKCS7-----\n")) {
		t.Fatalf("openssl did not write a PKCS7 block:\n%s", text)
	}
	testpki.WriteFile(t, filepath.Join(dir, "corp.p7b"), der)
	testpki.WriteFile(t, filepath.Join(dir, "corp.p7c"), text)
	testpki.WriteFile(t, filepath.Join(dir, "root.cer"), testpki.Concat(ca2.DER(), []byte("\n")))

	r := ReadSource(dir)
	if len(r.Errs) != 0 || len(r.Warnings) != 0 || len(r.NoCert) != 0 || r.Files != 3 {
		t.Fatalf("errors %v, warnings %q, no certificate in %q, %d files; want none and 3 files", r.Errs, r.Warnings, r.NoCert, r.Files)
	}
	var got []string
	for _, c := range r.Certs {
		got = append(got, filepath.Base(c.Source)+" "+c.X509.Subject.CommonName)
	}
	want := []string{"corp.p7b p7 CA", "corp.p7b p7 CA 2", "corp.p7c p7 CA", "corp.p7c p7 CA 2", "root.cer p7 CA 2"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got %q\nwant %q", got, want)
	}
}
