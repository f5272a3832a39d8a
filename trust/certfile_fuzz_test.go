package trust

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"encoding/pem"
	"strings"
	"testing"

	"github.com/konveyor/kai-entrypoint/internal/testpki"
)

// FuzzParseCertFile checks what parseCertFile may return for any input:
// only certificates (each Cert's DER parses, and Sum is its SHA-256),
// taken from the file itself (block 0: a file without PEM blocks that
// holds the DER) or from a decoded certificate or PKCS#7 block (never a
// private key's, whatever it holds); every warning and error names the
// file. `go test` runs the seeds; fuzz with
//
//	go test -run '^$' -fuzz FuzzParseCertFile ./trust/
func FuzzParseCertFile(f *testing.F) {
	ca, ca2 := testpki.GenCA(f, "fuzz parse CA"), testpki.GenCA(f, "fuzz parse CA 2")
	key := testpki.ECKeyPEM(f, ca.Key)
	block := func(typ string, der []byte) []byte { return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}) }
	oidList := func(class, tag int, id asn1.ObjectIdentifier) []byte { return derTLV(f, class, tag, mustDER(f, id)) }
	rejectServerAuth := derTLV(f, asn1.ClassUniversal, asn1.TagSequence, oidList(asn1.ClassContextSpecific, 0, oidServerAuth))
	for _, seed := range [][]byte{
		nil,
		ca.PEM(),
		testpki.Concat([]byte("\xef\xbb\xbf# roots\r\n"), bytes.TrimSuffix(ca.PEM(), []byte("\n")), ca2.PEM()),
		testpki.Concat(key, ca.PEM()),
		testpki.TrustedPEM(ca),
		block("TRUSTED CERTIFICATE", testpki.Concat(ca.DER(), rejectServerAuth)),
		block("PKCS7", p7b(f, ca, ca2)),
		testpki.Concat(ca.PEM(), block("PKCS #7 SIGNED DATA", p7b(f, ca2))),
		block("PRIVATE KEY", ca.DER()),
		block("ENCRYPTED PRIVATE KEY", p7b(f, ca)),
		ca.DER(),
		testpki.Concat(ca.DER(), ca2.DER(), []byte("\n")),
		testpki.Concat(p7b(f, ca, ca2), []byte("\r\n"), ca.DER(), []byte{0x30, 0x03, 0x02, 0x01, 0x05}),
		keyDERFromPEM(f, key),
		[]byte("Paste it between -----BEGIN CERTIFICATE----- and -----END CERTIFICATE-----.\n"),
		[]byte("-----BEGIN CERTIFICATE-----" + b64(ca.DER()) + "-----END CERTIFICATE-----\n"),
	} {
		f.Add(seed)
	}
	certTypes := map[string]bool{"CERTIFICATE": true, "X509 CERTIFICATE": true, "TRUSTED CERTIFICATE": true,
		"PKCS7": true, "PKCS #7 SIGNED DATA": true}
	const path = "/certs/fuzz.pem"
	f.Fuzz(func(t *testing.T, data []byte) {
		certs, warnings, errs := parseCertFile(path, data)
		blocks, sawBegin := scanPEM(data, func(string) bool { return true })
		for i, c := range certs {
			raw := c.X509.Raw
			if p, err := x509.ParseCertificate(raw); err != nil || !bytes.Equal(p.Raw, raw) {
				t.Fatalf("cert %d does not parse: %v", i, err)
			}
			if c.Sum != sha256.Sum256(raw) || c.Source != path {
				t.Fatalf("cert %d: Sum or Source (%s) wrong", i, c.Source)
			}
			if c.Block == 0 {
				if sawBegin || !bytes.Contains(data, raw) {
					t.Fatalf("cert %d: from block 0 of a file with PEM blocks (%v), or not in the file", i, sawBegin)
				}
				continue
			}
			if c.Block > len(blocks) {
				t.Fatalf("cert %d: block %d of %d", i, c.Block, len(blocks))
			}
			b := blocks[c.Block-1]
			if !certTypes[b.Type] || b.Err != nil || !bytes.Contains(b.DER, raw) {
				t.Fatalf("cert %d: from %s (error %v), or not in its body", i, b.Pos(), b.Err)
			}
		}
		for _, w := range warnings {
			if !strings.HasPrefix(w, path+": ") {
				t.Fatalf("warning does not name the file: %q", w)
			}
		}
		for _, e := range errs {
			if !strings.HasPrefix(e.Error(), path+": ") {
				t.Fatalf("error does not name the file: %v", e)
			}
		}
	})
}
