package trust

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/konveyor/kai-entrypoint/internal/testpki"
)

func TestFindSystemBundle(t *testing.T) {
	dir := t.TempDir()
	sysA, sysB := filepath.Join(dir, "etc", "a.crt"), filepath.Join(dir, "etc", "b.crt")
	custom := filepath.Join(dir, "custom.pem")
	bundle := filepath.Join(dir, "out", "ca-bundle.pem")
	notYet := filepath.Join(dir, "out", "not-written-yet.pem")
	for _, f := range []string{sysA, sysB, custom, bundle} {
		testpki.WriteFile(t, f, testpki.GenCA(t, filepath.Base(f)).PEM())
	}
	if err := os.Mkdir(filepath.Join(dir, "etc", "folder.crt"), 0o755); err != nil {
		t.Fatal(err)
	}
	testpki.Symlink(t, bundle, filepath.Join(dir, "link-to-bundle.pem"))
	testpki.Symlink(t, "out", filepath.Join(dir, "out-link"))
	testpki.Symlink(t, custom, filepath.Join(dir, "link-to-custom.pem"))
	missing := filepath.Join(dir, "etc", "missing.crt")
	notFile := func(f string) string {
		return fmt.Sprintf("inherited SSL_CERT_FILE=%q is not a readable file; using the distribution's bundle for the system roots", f)
	}

	tests := []struct {
		name        string
		sslCertFile string // the inherited SSL_CERT_FILE
		bundle      string
		files       []string // SystemFiles
		want        string
		warnings    []string
	}{
		{name: "no SSL_CERT_FILE: first existing well-known file", bundle: bundle, files: []string{missing, sysA, sysB}, want: sysA},
		{name: "well-known list skips a folder", bundle: bundle, files: []string{filepath.Join(dir, "etc", "folder.crt"), sysB}, want: sysB},
		{name: "empty SSL_CERT_FILE counts as unset", sslCertFile: "", bundle: bundle, files: []string{sysA}, want: sysA},
		{name: "inherited SSL_CERT_FILE", sslCertFile: custom, bundle: bundle, files: []string{sysA}, want: custom},
		{name: "inherited SSL_CERT_FILE is a symlink to another file", sslCertFile: filepath.Join(dir, "link-to-custom.pem"),
			bundle: bundle, files: []string{sysA}, want: filepath.Join(dir, "link-to-custom.pem")},
		{name: "SSL_CERT_FILE is our own bundle", sslCertFile: bundle, bundle: bundle, files: []string{missing, sysB}, want: sysB},
		{name: "SSL_CERT_FILE is our own bundle, unclean path", sslCertFile: dir + "/out/./../out//ca-bundle.pem", bundle: bundle, files: []string{sysA}, want: sysA},
		{name: "SSL_CERT_FILE is a symlink to our own bundle", sslCertFile: filepath.Join(dir, "link-to-bundle.pem"), bundle: bundle, files: []string{sysA}, want: sysA},
		{name: "SSL_CERT_FILE reaches our own bundle through a symlinked folder", sslCertFile: filepath.Join(dir, "out-link", "ca-bundle.pem"), bundle: bundle, files: []string{sysA}, want: sysA},
		{name: "KAI_CA_BUNDLE is a symlink to SSL_CERT_FILE", sslCertFile: bundle, bundle: filepath.Join(dir, "link-to-bundle.pem"), files: []string{sysA}, want: sysA},
		{name: "SSL_CERT_FILE is our bundle, not written yet", sslCertFile: notYet, bundle: notYet, files: []string{sysA}, want: sysA},
		{name: "SSL_CERT_FILE is our bundle and nothing else exists", sslCertFile: bundle, bundle: bundle, files: []string{missing}},
		{name: "SSL_CERT_FILE missing", sslCertFile: missing, bundle: bundle, files: []string{sysA}, want: sysA, warnings: []string{notFile(missing)}},
		{name: "SSL_CERT_FILE is a folder", sslCertFile: dir, bundle: bundle, files: []string{sysA}, want: sysA, warnings: []string{notFile(dir)}},
		{name: "SSL_CERT_FILE missing and nothing else", sslCertFile: missing, bundle: bundle, files: []string{missing}, warnings: []string{notFile(missing)}},
		{name: "nothing found", bundle: bundle, files: []string{missing, filepath.Join(dir, "etc", "folder.crt")}},
		{name: "empty list", bundle: bundle},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, warnings := FindSystemBundle(tt.sslCertFile, tt.bundle, tt.files)
			if got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
			if strings.Join(warnings, "\n") != strings.Join(tt.warnings, "\n") {
				t.Errorf("warnings:\n got %q\nwant %q", warnings, tt.warnings)
			}
		})
	}
}

// TestCertFiles_MatchesCryptoX509 checks SystemFiles against the list of the
// Go release that builds the shim, which the shim follows.
func TestCertFiles_MatchesCryptoX509(t *testing.T) {
	goroot, err := exec.Command("go", "env", "GOROOT").Output()
	if err != nil {
		t.Fatal("go env GOROOT:", err)
	}
	src, err := os.ReadFile(filepath.Join(strings.TrimSpace(string(goroot)), "src", "crypto", "x509", "root_linux.go"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?s)var certFiles = \[\]string\{(.*?)\n\}`).FindSubmatch(src)
	if m == nil {
		t.Fatal("no certFiles in crypto/x509/root_linux.go")
	}
	var want []string
	for _, q := range regexp.MustCompile(`"([^"]+)"`).FindAllSubmatch(m[1], -1) {
		want = append(want, string(q[1]))
	}
	if fmt.Sprint(SystemFiles) != fmt.Sprint(want) {
		t.Errorf("SystemFiles = %q\ncrypto/x509 has %q", SystemFiles, want)
	}
}

func TestReadSystemRoots(t *testing.T) {
	s1, s2, s3, s4 := testpki.GenCA(t, "sys 1"), testpki.GenCA(t, "sys 2"), testpki.GenCA(t, "sys 3"), testpki.GenCA(t, "sys 4")
	crlf := func(b []byte) []byte { return bytes.ReplaceAll(b, []byte("\n"), []byte("\r\n")) }
	trim := func(b []byte) []byte { return bytes.TrimSuffix(b, []byte("\n")) }
	badB64 := []byte("-----BEGIN CERTIFICATE-----\nMIIC###\n-----END CERTIFICATE-----\n")
	badTrusted := []byte("-----BEGIN TRUSTED CERTIFICATE-----\n" + b64([]byte("zzzz")) + "\n-----END TRUSTED CERTIFICATE-----\n")
	crl := []byte("-----BEGIN X509 CRL-----\nMIIB\n-----END X509 CRL-----\n")
	certBlock := func(der []byte) []byte { return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}) }
	keyDER, _ := pem.Decode(testpki.ECKeyPEM(t, s1.Key))
	notCerts := testpki.Concat(certBlock(keyDER.Bytes), certBlock(s3.DER()[:len(s3.DER())-10]), certBlock(append(s4.DER(), 0, 0)))
	noCert := func(path string) string {
		return fmt.Sprintf("system bundle %s holds no certificate: the bundle will have no system roots, and clients will reject every public host", path)
	}
	// lineOf is the line of the n-th (1-based) BEGIN in data.
	lineOf := func(data []byte, n int) int {
		off := 0
		for i := 0; i < n; i++ {
			j := bytes.Index(data[off:], []byte("-----BEGIN "))
			off += j + 1
		}
		return 1 + bytes.Count(data[:off], []byte("\n"))
	}

	tests := []struct {
		name     string
		data     []byte
		want     []*testpki.Cert
		warnings func(path string, data []byte) []string
	}{
		{name: "clean bundle", data: testpki.Concat(s1.PEM(), s2.PEM()), want: []*testpki.Cert{s1, s2}},
		{name: "empty file", warnings: func(path string, _ []byte) []string { return []string{noCert(path)} }},
		{name: "no certificate block", data: testpki.Concat([]byte("# no roots\n"), crl, testpki.ECKeyPEM(t, s1.Key)),
			warnings: func(path string, _ []byte) []string { return []string{noCert(path)} }},
		{name: "valid base64 that is not a certificate dropped with a warning: a key, a truncated and a padded certificate",
			data: testpki.Concat(s1.PEM(), notCerts, s2.PEM()), want: []*testpki.Cert{s1, s2}, warnings: func(path string, data []byte) []string {
				return []string{
					fmt.Sprintf("system bundle %s: block 2 (CERTIFICATE, line %d) is not a certificate, dropped", path, lineOf(data, 2)),
					fmt.Sprintf("system bundle %s: block 3 (CERTIFICATE, line %d) is not a certificate, dropped", path, lineOf(data, 3)),
					fmt.Sprintf("system bundle %s: block 4 (CERTIFICATE, line %d) is not a certificate, dropped", path, lineOf(data, 4)),
				}
			}},
		{name: "TRUSTED CERTIFICATE around something else dropped with a warning",
			data: testpki.Concat(s1.PEM(), []byte("-----BEGIN TRUSTED CERTIFICATE-----\n"+b64(testpki.Concat(keyDER.Bytes, testpki.TrustTrailer))+"\n-----END TRUSTED CERTIFICATE-----\n")),
			want: []*testpki.Cert{s1}, warnings: func(path string, data []byte) []string {
				return []string{fmt.Sprintf("system bundle %s: block 2 (TRUSTED CERTIFICATE, line %d) is not a certificate, dropped", path, lineOf(data, 2))}
			}},
		{name: "nothing but blocks that are not certificates", data: notCerts, warnings: func(path string, data []byte) []string {
			return []string{
				fmt.Sprintf("system bundle %s: block 1 (CERTIFICATE, line 1) is not a certificate, dropped", path),
				fmt.Sprintf("system bundle %s: block 2 (CERTIFICATE, line %d) is not a certificate, dropped", path, lineOf(data, 2)),
				fmt.Sprintf("system bundle %s: block 3 (CERTIFICATE, line %d) is not a certificate, dropped", path, lineOf(data, 3)),
				noCert(path),
			}
		}},
		{name: "messy framing: BOM, comments, CRLF, concatenated, no final newline",
			data: testpki.Concat([]byte("\xef\xbb\xbf# RHEL-style header\r\n\r\n"), crlf(s1.PEM()), []byte("# sys 2\n"),
				trim(s2.PEM()), trim(testpki.TrustedPEM(s3)), crlf(trim(s4.PEM()))),
			want: []*testpki.Cert{s1, s2, s3, s4}},
		{name: "duplicates dropped silently, first kept", data: testpki.Concat(s1.PEM(), s2.PEM(), s1.PEM(), testpki.TrustedPEM(s2), s3.PEM()),
			want: []*testpki.Cert{s1, s2, s3}},
		{name: "other blocks skipped", data: testpki.Concat(crl, s1.PEM(), testpki.ECKeyPEM(t, s1.Key), s2.PEM()), want: []*testpki.Cert{s1, s2}},
		{name: "broken base64 dropped with a warning", data: testpki.Concat(s1.PEM(), badB64, s2.PEM(), badTrusted),
			want: []*testpki.Cert{s1, s2}, warnings: func(path string, data []byte) []string {
				return []string{
					fmt.Sprintf("system bundle %s: block 2 (CERTIFICATE, line %d) does not decode, dropped", path, lineOf(data, 2)),
					fmt.Sprintf("system bundle %s: block 4 (TRUSTED CERTIFICATE, line %d) does not decode, dropped", path, lineOf(data, 4)),
				}
			}},
		{name: "unterminated block in the middle dropped, the next kept", data: testpki.Concat(s1.PEM(), []byte("-----BEGIN CERTIFICATE-----\nMIIB\n"), s2.PEM()),
			want: []*testpki.Cert{s1, s2}, warnings: func(path string, data []byte) []string {
				return []string{fmt.Sprintf("system bundle %s: block 2 (CERTIFICATE, line %d) does not decode, dropped", path, lineOf(data, 2))}
			}},
		{name: "unterminated last block dropped with a warning", data: testpki.Concat(s1.PEM(), []byte("-----BEGIN CERTIFICATE-----\nMIIB\n")),
			want: []*testpki.Cert{s1}, warnings: func(path string, data []byte) []string {
				return []string{fmt.Sprintf("system bundle %s: block 2 (CERTIFICATE, line %d) does not decode, dropped", path, lineOf(data, 2))}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "ca-certificates.crt")
			testpki.WriteFile(t, path, tt.data)
			s, err := ReadSystemRoots(path)
			if err != nil {
				t.Fatal(err)
			}
			var want []byte
			for _, c := range tt.want {
				want = append(want, c.PEM()...)
			}
			if s.Path != path || s.Count != len(tt.want) || !bytes.Equal(s.PEM, want) {
				t.Errorf("Path %s Count %d PEM:\n%s\nwant %s, %d:\n%s", s.Path, s.Count, s.PEM, path, len(tt.want), want)
			}
			var wantWarn []string
			if tt.warnings != nil {
				wantWarn = tt.warnings(path, tt.data)
			}
			if strings.Join(s.Warnings, "\n") != strings.Join(wantWarn, "\n") {
				t.Errorf("warnings:\n got %q\nwant %q", s.Warnings, wantWarn)
			}
			for _, c := range tt.want {
				if !s.has(c.PEM()) {
					t.Errorf("has(%q) = false", c.Cert.Subject.CommonName)
				}
			}
			if other := testpki.GenCA(t, "not a system root"); s.has(other.PEM()) {
				t.Error("has(a certificate not in the bundle) = true")
			}
			checkFraming(t, s.PEM, len(tt.want))
		})
	}
}

func TestReadSystemRoots_NoPath(t *testing.T) {
	s, err := ReadSystemRoots("")
	if err != nil || s.Path != "" || s.Count != 0 || len(s.PEM) != 0 || len(s.Warnings) != 0 {
		t.Fatalf("got %+v, %v; want an empty set of roots", s, err)
	}
}

func TestReadSystemRoots_Unreadable(t *testing.T) {
	dir := t.TempDir()
	huge := filepath.Join(dir, "huge.crt")
	testpki.WriteFile(t, huge, testpki.GenCA(t, "huge").PEM())
	if err := os.Truncate(huge, maxSystemBundleSize+1); err != nil { // sparse: cheap
		t.Fatal(err)
	}
	for _, tt := range []struct{ name, path, want string }{
		{name: "missing", path: filepath.Join(dir, "nope.crt"), want: "reading system bundle " + filepath.Join(dir, "nope.crt") + ": no such file or directory"},
		{name: "folder", path: dir, want: "reading system bundle " + dir + ": is a directory"},
		{name: "larger than the limit", path: huge, want: fmt.Sprintf("system bundle %s: %d bytes, larger than the 16 MiB a CA bundle may have", huge, maxSystemBundleSize+1)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s, err := ReadSystemRoots(tt.path)
			if err == nil || err.Error() != tt.want || s != nil {
				t.Fatalf("got %v, %v; want error %q", s, err, tt.want)
			}
		})
	}
}

// TestReadSystemRoots_Debian reads the real system bundle and compares
// with encoding/pem and crypto/x509 reading it independently.
func TestReadSystemRoots_Debian(t *testing.T) {
	const path = "/etc/ssl/certs/ca-certificates.crt"
	data, err := os.ReadFile(path)
	if err != nil {
		t.Skip(err)
	}
	var want []byte
	seen := map[[sha256.Size]byte]bool{}
	for rest := data; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" || seen[sha256.Sum256(b.Bytes)] {
			continue
		}
		seen[sha256.Sum256(b.Bytes)] = true
		if _, err := x509.ParseCertificate(b.Bytes); err != nil {
			t.Errorf("system certificate does not parse: %v", err)
		}
		want = append(want, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: b.Bytes})...)
	}
	s, err := ReadSystemRoots(path)
	if err != nil {
		t.Fatal(err)
	}
	if s.Count != len(seen) || !bytes.Equal(s.PEM, want) || len(s.Warnings) != 0 {
		t.Fatalf("Count %d, %d bytes, warnings %q; want %d certificates, %d bytes", s.Count, len(s.PEM), s.Warnings, len(seen), len(want))
	}
	if s.Count < 100 {
		t.Errorf("only %d system roots", s.Count)
	}
	checkFraming(t, s.PEM, s.Count)
	t.Logf("%s: %d roots, %d bytes in, %d out", path, s.Count, len(data), len(s.PEM))
}

// checkFraming checks that data is n CERTIFICATE blocks and nothing else:
// LF line ends, 64-column base64, no blank line, a final newline; and
// that every block parses.
func checkFraming(t *testing.T, data []byte, n int) {
	t.Helper()
	if n == 0 {
		if len(data) != 0 {
			t.Errorf("%d bytes, want none", len(data))
		}
		return
	}
	if bytes.ContainsRune(data, '\r') || !bytes.HasSuffix(data, []byte("-----END CERTIFICATE-----\n")) ||
		!bytes.HasPrefix(data, []byte("-----BEGIN CERTIFICATE-----\n")) || bytes.Contains(data, []byte("\n\n")) {
		t.Errorf("unclean framing:\n%q", data)
	}
	line := regexp.MustCompile(`^(-----(BEGIN|END) CERTIFICATE-----|[A-Za-z0-9+/=]{1,64})$`)
	for i, l := range strings.Split(strings.TrimSuffix(string(data), "\n"), "\n") {
		if !line.MatchString(l) {
			t.Errorf("line %d: %q", i+1, l)
			break
		}
	}
	got := 0
	for rest := data; len(rest) > 0; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			t.Errorf("%d bytes pem.Decode cannot read", len(rest))
			break
		}
		if _, err := x509.ParseCertificate(b.Bytes); b.Type != "CERTIFICATE" || len(b.Headers) != 0 || err != nil {
			t.Errorf("block %d: %s, %v", got+1, b.Type, err)
		}
		got++
	}
	if got != n {
		t.Errorf("%d blocks, want %d", got, n)
	}
}

// TestCertShape checks the certificate shape test on DER and, the same
// bytes, on their base64 text as the fast path reads it.
func TestCertShape(t *testing.T) {
	ca := testpki.GenCA(t, "shape")
	rsaCA := testpki.Gen(t, testpki.Spec{CN: "shape RSA", CA: true, Key: testpki.RSAKey(t)})
	keyBlock, _ := pem.Decode(testpki.ECKeyPEM(t, ca.Key))
	crl, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{Number: big.NewInt(1), ThisUpdate: time.Now(), NextUpdate: time.Now().Add(time.Hour)}, ca.Cert, ca.Key)
	if err != nil {
		t.Fatal(err)
	}
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: ca.Cert.Subject}, ca.Key)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		der  []byte
		want bool
	}{
		{name: "certificate", der: ca.DER(), want: true},
		{name: "RSA certificate", der: rsaCA.DER(), want: true},
		{name: "version 1: no [0] version field", der: reshapeTBS(t, ca.DER(), func(f []asn1.RawValue) []asn1.RawValue { return f[1:] }), want: true},
		{name: "version 1 without extensions", der: reshapeTBS(t, ca.DER(), func(f []asn1.RawValue) []asn1.RawValue { return f[1:7] }), want: true},
		{name: "a field after the extensions", der: reshapeTBS(t, ca.DER(), func(f []asn1.RawValue) []asn1.RawValue { return append(f, f[1]) }), want: false},
		{name: "serial and signature swapped", der: reshapeTBS(t, ca.DER(), func(f []asn1.RawValue) []asn1.RawValue {
			f[1], f[2] = f[2], f[1]
			return f
		}), want: false},
		{name: "subject public key missing", der: reshapeTBS(t, ca.DER(), func(f []asn1.RawValue) []asn1.RawValue { return append(f[:6:6], f[7:]...) }), want: false},
		{name: "a byte after the certificate", der: append(ca.DER(), 0), want: false},
		{name: "truncated", der: ca.DER()[:len(ca.DER())-1], want: false},
		{name: "indefinite length", der: append([]byte{0x30, 0x80}, append(ca.DER()[4:], 0, 0)...), want: false},
		{name: "EC private key", der: keyBlock.Bytes, want: false},
		{name: "RSA private key", der: x509.MarshalPKCS1PrivateKey(testpki.RSAKey(t)), want: false},
		{name: "CRL", der: crl, want: false},
		{name: "certificate request", der: csr, want: false},
		{name: "one byte", der: []byte{0x30}, want: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := certShape(derBytes(tt.der), len(tt.der)); got != tt.want {
				t.Errorf("certShape(DER) = %v, want %v", got, tt.want)
			}
			block := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: tt.der})
			body := block[len(certBegin) : len(block)-len(certEnd)]
			size, ok := canonicalBase64(body)
			if !ok || size != len(tt.der) {
				t.Fatalf("canonicalBase64 = %d, %v; want %d, true", size, ok, len(tt.der))
			}
			if got := certShape(pemBase64(body), size); got != tt.want {
				t.Errorf("certShape(base64) = %v, want %v", got, tt.want)
			}
		})
	}
}

// reshapeTBS returns der, a certificate, with the fields of its
// tbsCertificate changed by edit (lengths recomputed, signature kept).
func reshapeTBS(t *testing.T, der []byte, edit func([]asn1.RawValue) []asn1.RawValue) []byte {
	t.Helper()
	var cert struct {
		TBS asn1.RawValue
		Alg asn1.RawValue
		Sig asn1.BitString
	}
	if _, err := asn1.Unmarshal(der, &cert); err != nil {
		t.Fatal(err)
	}
	var fields []asn1.RawValue
	for rest := cert.TBS.Bytes; len(rest) > 0; {
		var f asn1.RawValue
		var err error
		if rest, err = asn1.Unmarshal(rest, &f); err != nil {
			t.Fatal(err)
		}
		fields = append(fields, f)
	}
	var tbs []byte
	for _, f := range edit(fields) {
		tbs = append(tbs, f.FullBytes...)
	}
	cert.TBS = asn1.RawValue{Tag: asn1.TagSequence, IsCompound: true, Bytes: tbs}
	out, err := asn1.Marshal(cert)
	if err != nil {
		t.Fatal(err)
	}
	return out
}
