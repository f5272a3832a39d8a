package trust

import (
	"bytes"
	"encoding/asn1"
	"errors"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/konveyor/kai-entrypoint/internal/testpki"
)

// TestCertDER_TrustSettings reads hand-made OpenSSL trust settings
// (X509_CERT_AUX) after a certificate, including shapes the openssl
// command cannot write.
func TestCertDER_TrustSettings(t *testing.T) {
	ca := testpki.GenCA(t, "aux CA")
	der := func(v any) []byte { return mustDER(t, v) }
	tagged := func(class, tag int, parts ...[]byte) []byte { return derTLV(t, class, tag, parts...) }
	seq := func(parts ...[]byte) []byte { return tagged(asn1.ClassUniversal, asn1.TagSequence, parts...) }
	oids := func(ids ...asn1.ObjectIdentifier) (out [][]byte) {
		for _, id := range ids {
			out = append(out, der(id))
		}
		return out
	}
	trust := func(ids ...asn1.ObjectIdentifier) []byte { return seq(oids(ids...)...) }
	reject := func(ids ...asn1.ObjectIdentifier) []byte {
		return tagged(asn1.ClassContextSpecific, 0, oids(ids...)...)
	}
	var (
		clientAuth = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 3, 2}
		alias      = der(asn1.RawValue{Tag: asn1.TagUTF8String, Bytes: []byte("corp")})
		keyID      = der([]byte{1, 2, 3, 4})
		other      = tagged(asn1.ClassContextSpecific, 1, seq(der(asn1.ObjectIdentifier{1, 2, 3})))
	)
	const (
		rejects   = "not trusted for server authentication: its OpenSSL trust settings reject it"
		otherUses = "not trusted for server authentication: its OpenSSL trust settings trust it for other uses only"
		malformed = "malformed OpenSSL trust settings after the certificate"
	)
	tests := []struct {
		name    string
		aux     []byte // after the certificate
		wantErr string // "" for a trust anchor
	}{
		{name: "no trust settings", aux: nil},
		{name: "as openssl -addtrust serverAuth -setalias test writes", aux: testpki.TrustTrailer},
		{name: "alias only", aux: seq(alias)},
		{name: "every field, serverAuth trusted", aux: seq(trust(clientAuth, oidServerAuth), reject(clientAuth), alias, keyID, other)},
		{name: "trust anyExtendedKeyUsage", aux: seq(trust(oidAnyEKU))},
		{name: "reject clientAuth only", aux: seq(reject(clientAuth))},
		{name: "trust clientAuth only", aux: seq(trust(clientAuth), alias), wantErr: otherUses},
		{name: "empty trust list", aux: seq(trust()), wantErr: otherUses},
		{name: "reject serverAuth", aux: seq(reject(oidServerAuth)), wantErr: rejects},
		{name: "reject anyExtendedKeyUsage", aux: seq(reject(oidAnyEKU), keyID), wantErr: rejects},
		{name: "reject wins over trust", aux: seq(trust(oidServerAuth), reject(oidServerAuth)), wantErr: rejects},
		{name: "reject list after the alias", aux: seq(alias, reject(oidServerAuth)), wantErr: malformed},
		{name: "bytes after the trust settings", aux: testpki.Concat(seq(trust(oidServerAuth)), []byte{0}), wantErr: malformed},
		{name: "trust list holding a string", aux: seq(seq(alias)), wantErr: malformed},
		{name: "not a SEQUENCE", aux: alias, wantErr: malformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := certDER(pemBlock{Type: "TRUSTED CERTIFICATE", DER: testpki.Concat(ca.DER(), tt.aux)})
			switch {
			case tt.wantErr == "" && (err != nil || !bytes.Equal(got, ca.DER())):
				t.Fatalf("got %d bytes, error %v; want the certificate", len(got), err)
			case tt.wantErr != "" && (err == nil || err.Error() != tt.wantErr || got != nil):
				t.Fatalf("got %d bytes, error %v; want error %q", len(got), err, tt.wantErr)
			case tt.wantErr != "" && errors.Is(err, errNotAnchor) != (tt.wantErr != malformed):
				t.Fatalf("errors.Is(%v, errNotAnchor) = %v", err, errors.Is(err, errNotAnchor))
			}
		})
	}
}

// TestParseCertFile_OpenSSLTrustSettings reads TRUSTED CERTIFICATE files
// that `openssl x509 -trustout` writes, and checks each decision against
// `openssl verify -purpose sslserver` with that file as the only CA.
func TestParseCertFile_OpenSSLTrustSettings(t *testing.T) {
	ca := testpki.GenCA(t, "trust settings CA")
	dir := t.TempDir()
	testpki.WriteFile(t, filepath.Join(dir, "ca.pem"), ca.PEM())
	testpki.WriteFile(t, filepath.Join(dir, "leaf.pem"), testpki.GenLeaf(t, "server.example", ca).PEM())
	const (
		rejects   = "not trusted for server authentication: its OpenSSL trust settings reject it, skipped"
		otherUses = "not trusted for server authentication: its OpenSSL trust settings trust it for other uses only, skipped"
	)
	tests := []struct {
		name    string
		args    []string // of openssl x509 -trustout
		warning string   // after "path: block 1 (...): "; "" for a trust anchor
	}{
		{name: "alias only", args: []string{"-setalias", "corp"}},
		{name: "trust serverAuth", args: []string{"-addtrust", "serverAuth"}},
		{name: "trust anyExtendedKeyUsage", args: []string{"-addtrust", "anyExtendedKeyUsage"}},
		{name: "reject clientAuth", args: []string{"-addreject", "clientAuth"}},
		{name: "trust serverAuth, reject clientAuth", args: []string{"-addtrust", "serverAuth", "-addreject", "clientAuth"}},
		{name: "reject serverAuth", args: []string{"-addreject", "serverAuth"}, warning: rejects},
		{name: "reject anyExtendedKeyUsage", args: []string{"-addreject", "anyExtendedKeyUsage"}, warning: rejects},
		{name: "trust and reject serverAuth", args: []string{"-addtrust", "serverAuth", "-addreject", "serverAuth"}, warning: rejects},
		{name: "trust clientAuth", args: []string{"-addtrust", "clientAuth"}, warning: otherUses},
		{name: "trust clientAuth and emailProtection", args: []string{"-addtrust", "clientAuth", "-addtrust", "emailProtection"}, warning: otherUses},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(tt.name, " ", "_")+".pem")
			testpki.WriteFile(t, path, testpki.RunOpenSSL(t, append([]string{"x509", "-in", filepath.Join(dir, "ca.pem"), "-trustout"}, tt.args...)...))
			if verified := opensslVerifies(t, path, filepath.Join(dir, "leaf.pem")); verified != (tt.warning == "") {
				t.Fatalf("openssl verify with this CA file: %v; the test expects %v", verified, tt.warning == "")
			}
			r := ReadSource(path)
			var want []string
			if tt.warning != "" {
				want = []string{path + ": block 1 (TRUSTED CERTIFICATE, line 1): " + tt.warning}
			}
			if strings.Join(r.Warnings, "\n") != strings.Join(want, "\n") || len(r.Errs) != 0 || len(r.NoCert) != 0 {
				t.Errorf("warnings %q, errors %v, no certificate in %q; want warnings %q only", r.Warnings, r.Errs, r.NoCert, want)
			}
			if anchor := len(r.Certs) == 1 && r.Certs[0].Sum == ca.Sum(); anchor != (tt.warning == "") || len(r.Certs) > 1 {
				t.Errorf("got %d certificates, want the CA: %v", len(r.Certs), tt.warning == "")
			}
		})
	}
}

// opensslVerifies reports whether `openssl verify -purpose sslserver`
// accepts leaf with caFile as the only trusted file.
func opensslVerifies(t *testing.T, caFile, leaf string) bool {
	t.Helper()
	cmd := exec.Command(testpki.NeedOpenSSL(t), "verify", "-CAfile", caFile, "-purpose", "sslserver", leaf)
	cmd.Env = []string{"PATH=/usr/bin:/bin", "LC_ALL=C"}
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("openssl verify: %v\n%s", err, out)
	}
	return err == nil
}

// TestTrustBundle_RHEL reads a bundle shaped like RHEL's
// /etc/pki/ca-trust/extracted/openssl/ca-bundle.trust.crt (p11-kit's
// openssl-bundle: comment lines, TRUSTED CERTIFICATE blocks, distrusted
// CAs listed with every purpose rejected) both as the system bundle and as
// an extra CA file.
func TestTrustBundle_RHEL(t *testing.T) {
	server, email, distrusted, tls := testpki.GenCA(t, "RHEL server root"), testpki.GenCA(t, "RHEL email root"),
		testpki.GenCA(t, "RHEL distrusted root"), testpki.GenCA(t, "RHEL TLS root")
	dir := t.TempDir()
	trusted := func(c *testpki.Cert, args ...string) []byte {
		in := filepath.Join(dir, c.Cert.Subject.CommonName+".pem")
		testpki.WriteFile(t, in, c.PEM())
		return testpki.RunOpenSSL(t, append([]string{"x509", "-in", in, "-trustout", "-setalias", c.Cert.Subject.CommonName}, args...)...)
	}
	data := testpki.Concat(
		[]byte("# RHEL server root\n"), trusted(server, "-addtrust", "serverAuth", "-addtrust", "clientAuth", "-addtrust", "emailProtection"),
		[]byte("\n# RHEL email root\n"), trusted(email, "-addtrust", "emailProtection"),
		[]byte("\n# RHEL distrusted root\n"), trusted(distrusted, "-addreject", "serverAuth", "-addreject", "clientAuth",
			"-addreject", "emailProtection", "-addreject", "codeSigning"),
		[]byte("\n# RHEL TLS root\n"), trusted(tls, "-addtrust", "serverAuth"))
	path := filepath.Join(dir, "ca-bundle.trust.crt")
	testpki.WriteFile(t, path, data)

	s, err := ReadSystemRoots(path)
	if err != nil {
		t.Fatal(err)
	}
	if want := testpki.Concat(server.PEM(), tls.PEM()); s.Count != 2 || !bytes.Equal(s.PEM, want) || len(s.Warnings) != 0 {
		t.Errorf("system roots: Count %d, warnings %q, PEM:\n%s\nwant 2, none:\n%s", s.Count, s.Warnings, s.PEM, want)
	}

	r := ReadSource(path)
	wantWarnings := []string{
		path + ": block 2 (TRUSTED CERTIFICATE, line " + lineOfBegin(data, 2) + "): not trusted for server authentication: its OpenSSL trust settings trust it for other uses only, skipped",
		path + ": block 3 (TRUSTED CERTIFICATE, line " + lineOfBegin(data, 3) + "): not trusted for server authentication: its OpenSSL trust settings reject it, skipped",
	}
	if strings.Join(r.Warnings, "\n") != strings.Join(wantWarnings, "\n") || len(r.Errs) != 0 {
		t.Errorf("extras: warnings\n %q\nwant\n %q\nerrors %v", r.Warnings, wantWarnings, r.Errs)
	}
	if len(r.Certs) != 2 || r.Certs[0].Sum != server.Sum() || r.Certs[1].Sum != tls.Sum() {
		t.Errorf("extras: got %v, want the server and TLS roots", certNames(r.Certs))
	}
}

// lineOfBegin is the line, as text, of the n-th (1-based) BEGIN marker in data.
func lineOfBegin(data []byte, n int) string {
	off := 0
	for i := 0; i < n; i++ {
		off += bytes.Index(data[off:], []byte("-----BEGIN ")) + 1
	}
	return strconv.Itoa(1 + bytes.Count(data[:off], []byte("\n")))
}
