package trust

import (
	"bytes"
	"encoding/pem"
	"strings"
	"testing"

	"github.com/konveyor/kai-entrypoint/internal/testpki"
)

// wantBlock is what a test expects of one scanned block.
type wantBlock struct {
	Type string
	Line int
	DER  []byte // nil: not decoded
	Err  string // substring of the error; "" means none
}

func TestScanPEM(t *testing.T) {
	ca1, ca2 := testpki.GenCA(t, "scan one"), testpki.GenCA(t, "scan two")
	p1, p2 := ca1.PEM(), ca2.PEM()
	key := testpki.ECKeyPEM(t, ca1.Key)
	crlf := func(b []byte) []byte { return bytes.ReplaceAll(b, []byte("\n"), []byte("\r\n")) }
	lines := func(b []byte) int { return bytes.Count(b, []byte("\n")) }
	// A body that is valid base64 on each line but not as a whole.
	badB64 := []byte("-----BEGIN CERTIFICATE-----\nMIIB!!notbase64\n-----END CERTIFICATE-----\n")

	tests := []struct {
		name     string
		data     []byte
		want     []wantBlock
		sawBegin bool
	}{
		{name: "empty", sawBegin: false},
		{name: "README text", data: []byte("Put the company CA here.\nSee the wiki.\n"), sawBegin: false},
		{name: "BEGIN without closing dashes is text", data: testpki.Concat([]byte("-----BEGIN CERTIFICATE\n"), p1), want: []wantBlock{
			{Type: "CERTIFICATE", Line: 2, DER: ca1.DER()},
		}, sawBegin: true},
		{name: "one block", data: p1, want: []wantBlock{{"CERTIFICATE", 1, ca1.DER(), ""}}, sawBegin: true},
		{name: "two blocks", data: testpki.Concat(p1, p2), want: []wantBlock{
			{Type: "CERTIFICATE", Line: 1, DER: ca1.DER()},
			{Type: "CERTIFICATE", Line: 1 + lines(p1), DER: ca2.DER()},
		}, sawBegin: true},
		{name: "UTF-8 BOM before the first block", data: testpki.Concat([]byte("\xef\xbb\xbf"), p1, p2), want: []wantBlock{
			{Type: "CERTIFICATE", Line: 1, DER: ca1.DER()},
			{Type: "CERTIFICATE", Line: 1 + lines(p1), DER: ca2.DER()},
		}, sawBegin: true},
		{name: "CRLF line ends", data: crlf(testpki.Concat(p1, p2)), want: []wantBlock{
			{Type: "CERTIFICATE", Line: 1, DER: ca1.DER()},
			{Type: "CERTIFICATE", Line: 1 + lines(p1), DER: ca2.DER()},
		}, sawBegin: true},
		{name: "BOM and CRLF", data: testpki.Concat([]byte("\xef\xbb\xbf"), crlf(p1)), want: []wantBlock{{"CERTIFICATE", 1, ca1.DER(), ""}}, sawBegin: true},
		{name: "text between and around blocks (Bag Attributes, comments)", data: testpki.Concat(
			[]byte("# corporate roots\nBag Attributes\n    localKeyID: 01 02 03\nsubject=/CN=scan one\n"), p1,
			[]byte("\n\n# the second one: 2 > 1 -- see ticket\n"), p2, []byte("trailing words\n")), want: []wantBlock{
			{Type: "CERTIFICATE", Line: 5, DER: ca1.DER()},
			{Type: "CERTIFICATE", Line: 5 + lines(p1) + 3, DER: ca2.DER()},
		}, sawBegin: true},
		{name: "missing final newline", data: testpki.Concat(p1, bytes.TrimSuffix(p2, []byte("\n"))), want: []wantBlock{
			{Type: "CERTIFICATE", Line: 1, DER: ca1.DER()},
			{Type: "CERTIFICATE", Line: 1 + lines(p1), DER: ca2.DER()},
		}, sawBegin: true},
		{name: "two files concatenated without a newline", data: testpki.Concat(bytes.TrimSuffix(p1, []byte("\n")), p2), want: []wantBlock{
			{Type: "CERTIFICATE", Line: 1, DER: ca1.DER()},
			{Type: "CERTIFICATE", Line: lines(p1), DER: ca2.DER()},
		}, sawBegin: true},
		{name: "three files concatenated, CRLF, no final newline", data: bytes.TrimSuffix(crlf(testpki.Concat(
			bytes.TrimSuffix(p1, []byte("\n")), bytes.TrimSuffix(p2, []byte("\n")), p1)), []byte("\r\n")), want: []wantBlock{
			{Type: "CERTIFICATE", Line: 1, DER: ca1.DER()},
			{Type: "CERTIFICATE", Line: lines(p1), DER: ca2.DER()},
			{Type: "CERTIFICATE", Line: lines(p1) + lines(p2) - 1, DER: ca1.DER()},
		}, sawBegin: true},
		{name: "trailing blanks on every line", data: bytes.ReplaceAll(p1, []byte("\n"), []byte(" \t\n")), want: []wantBlock{
			{Type: "CERTIFICATE", Line: 1, DER: ca1.DER()},
		}, sawBegin: true},
		// OpenSSL reads no block there either: its BEGIN line must end in "-----".
		{name: "one-line block is text", data: []byte("-----BEGIN CERTIFICATE-----" + b64(ca1.DER()) + "-----END CERTIFICATE-----"), sawBegin: false},
		{name: "README quoting the markers in a sentence", data: []byte("Paste the CA between -----BEGIN CERTIFICATE----- and\n" +
			"-----END CERTIFICATE----- lines; a line like -----BEGIN CERTIFICATE----- x is text too.\n" +
			"-----BEGIN CERTIFICATE----- starts it.\n"), sawBegin: false},
		{name: "text after the BEGIN marker's dashes", data: testpki.Concat([]byte("-----BEGIN CERTIFICATE----- (the corporate CA)\n"), p1), want: []wantBlock{
			{Type: "CERTIFICATE", Line: 2, DER: ca1.DER()},
		}, sawBegin: true},
		{name: "blanks before the BEGIN marker", data: testpki.Concat([]byte("  \t"), p1), want: []wantBlock{{"CERTIFICATE", 1, ca1.DER(), ""}}, sawBegin: true},
		{name: "private key is not decoded", data: testpki.Concat(key, p1), want: []wantBlock{
			{Type: "EC PRIVATE KEY", Line: 1},
			{Type: "CERTIFICATE", Line: 1 + lines(key), DER: ca1.DER()},
		}, sawBegin: true},
		{name: "RFC 1421 headers are skipped", data: testpki.Concat([]byte("-----BEGIN CERTIFICATE-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,00\n\n"),
			[]byte(b64(ca1.DER())+"\n-----END CERTIFICATE-----\n")), want: []wantBlock{
			{Type: "CERTIFICATE", Line: 1, DER: ca1.DER()},
		}, sawBegin: true},
		{name: "TRUSTED CERTIFICATE keeps the whole body", data: testpki.TrustedPEM(ca1), want: []wantBlock{
			{Type: "TRUSTED CERTIFICATE", Line: 1, DER: testpki.Concat(ca1.DER(), testpki.TrustTrailer)},
		}, sawBegin: true},
		{name: "bad base64", data: testpki.Concat(p1, badB64), want: []wantBlock{
			{Type: "CERTIFICATE", Line: 1, DER: ca1.DER()},
			{Type: "CERTIFICATE", Line: 1 + lines(p1), Err: "invalid base64"},
		}, sawBegin: true},
		{name: "empty body", data: []byte("-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n"), want: []wantBlock{
			{Type: "CERTIFICATE", Line: 1, Err: "invalid base64"},
		}, sawBegin: true},
		{name: "no END line", data: testpki.Concat(p1, bytes.SplitAfter(p2, []byte("\n"))[0], []byte(b64(ca2.DER())[:64]+"\n")), want: []wantBlock{
			{Type: "CERTIFICATE", Line: 1, DER: ca1.DER()},
			{Type: "CERTIFICATE", Line: 1 + lines(p1), Err: "no END line"},
		}, sawBegin: true},
		{name: "unterminated key before a certificate", data: testpki.Concat([]byte("-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA\n"), p1), want: []wantBlock{
			{Type: "RSA PRIVATE KEY", Line: 1, Err: "no END line"},
			{Type: "CERTIFICATE", Line: 3, DER: ca1.DER()},
		}, sawBegin: true},
		{name: "unterminated certificate before another", data: testpki.Concat(bytes.SplitAfter(p2, []byte("\n"))[0], []byte(b64(ca2.DER())[:64]+"\n"), p1), want: []wantBlock{
			{Type: "CERTIFICATE", Line: 1, Err: "no END line"},
			{Type: "CERTIFICATE", Line: 3, DER: ca1.DER()},
		}, sawBegin: true},
		{name: "unterminated block, BEGIN later on the line", data: testpki.Concat([]byte("-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEI"), p1), want: []wantBlock{
			{Type: "EC PRIVATE KEY", Line: 1, Err: "no END line"},
			{Type: "CERTIFICATE", Line: 2, DER: ca1.DER()},
		}, sawBegin: true},
		{name: "unterminated block before a one-line block, which is text", data: testpki.Concat([]byte("-----BEGIN CERTIFICATE-----\nMIIB\n"),
			[]byte("-----BEGIN CERTIFICATE-----"+b64(ca1.DER())+"-----END CERTIFICATE-----\n"), p2), want: []wantBlock{
			{Type: "CERTIFICATE", Line: 1, Err: "no END line"},
			{Type: "CERTIFICATE", Line: 4, DER: ca2.DER()},
		}, sawBegin: true},
		{name: "END of another type", data: []byte("-----BEGIN CERTIFICATE-----\n" + b64(ca1.DER()) + "\n-----END X509 CRL-----\n"), want: []wantBlock{
			{Type: "CERTIFICATE", Line: 1, Err: `END line says "X509 CRL"`},
		}, sawBegin: true},
		{name: "malformed END line", data: []byte("-----BEGIN CERTIFICATE-----\n" + b64(ca1.DER()) + "\n-----END CERTIFICATE\n"), want: []wantBlock{
			{Type: "CERTIFICATE", Line: 1, Err: "malformed END line"},
		}, sawBegin: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			blocks, sawBegin := scanPEM(tt.data, isCertType)
			if sawBegin != tt.sawBegin {
				t.Errorf("sawBegin = %v, want %v", sawBegin, tt.sawBegin)
			}
			if len(blocks) != len(tt.want) {
				t.Fatalf("got %d blocks %v, want %d", len(blocks), blockTypes(blocks), len(tt.want))
			}
			for i, w := range tt.want {
				b := blocks[i]
				if b.Index != i+1 || b.Type != w.Type || b.Line != w.Line {
					t.Errorf("block %d = #%d %q line %d, want #%d %q line %d", i, b.Index, b.Type, b.Line, i+1, w.Type, w.Line)
				}
				if !bytes.Equal(b.DER, w.DER) {
					t.Errorf("block %d: DER differs (got %d bytes, want %d)", i, len(b.DER), len(w.DER))
				}
				switch {
				case w.Err == "" && b.Err != nil:
					t.Errorf("block %d: unexpected error %v", i, b.Err)
				case w.Err != "" && (b.Err == nil || !strings.Contains(b.Err.Error(), w.Err)):
					t.Errorf("block %d: error %v, want one containing %q", i, b.Err, w.Err)
				}
			}
		})
	}
}

// TestScanPEM_AgreesWithEncodingPEM checks scanPEM against pem.Decode on
// input both read well, and shows the BOM case where pem.Decode loses the
// first certificate (clients.md §8).
func TestScanPEM_AgreesWithEncodingPEM(t *testing.T) {
	var data []byte
	var want [][]byte
	for _, cn := range []string{"a", "b", "c", "d"} {
		c := testpki.GenCA(t, cn)
		data = append(data, c.PEM()...)
		want = append(want, c.DER())
	}
	data = append(data, testpki.ECKeyPEM(t, testpki.GenCA(t, "k").Key)...)

	var fromStd [][]byte
	for rest := data; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type == "CERTIFICATE" {
			fromStd = append(fromStd, b.Bytes)
		}
	}
	var fromScan [][]byte
	blocks, _ := scanPEM(data, isCertType)
	for _, b := range blocks {
		if b.Type == "CERTIFICATE" {
			fromScan = append(fromScan, b.DER)
		}
	}
	if !equalDERs(fromStd, want) || !equalDERs(fromScan, want) {
		t.Fatalf("pem.Decode found %d, scanPEM %d, want %d", len(fromStd), len(fromScan), len(want))
	}

	bom := append([]byte("\xef\xbb\xbf"), data...)
	if first, _ := pem.Decode(bom); first != nil && bytes.Equal(first.Bytes, want[0]) {
		t.Log("pem.Decode no longer skips the first block after a BOM")
	}
	blocks, _ = scanPEM(bom, isCertType)
	if len(blocks) == 0 || !bytes.Equal(blocks[0].DER, want[0]) {
		t.Fatal("scanPEM lost the first block after a BOM")
	}
}

func b64(der []byte) string {
	// pem.EncodeToMemory wraps at 64 columns; join the lines back.
	p := pem.EncodeToMemory(&pem.Block{Type: "X", Bytes: der})
	lines := strings.Split(strings.TrimSpace(string(p)), "\n")
	return strings.Join(lines[1:len(lines)-1], "")
}

func blockTypes(blocks []pemBlock) []string {
	var out []string
	for _, b := range blocks {
		out = append(out, b.Type)
	}
	return out
}

func equalDERs(a, b [][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !bytes.Equal(a[i], b[i]) {
			return false
		}
	}
	return true
}

// FuzzScanPEM_Separators puts any lines of text without "-----" before and
// between two certificates, with CRLF, a BOM and a missing newline between
// the files as options: both certificates are always found, and nothing
// else. (Text before a BEGIN marker on its line makes the marker text.)
// `go test` runs the seeds; fuzz with
//
//	go test -run '^$' -fuzz FuzzScanPEM_Separators ./trust/
func FuzzScanPEM_Separators(f *testing.F) {
	a, b := testpki.GenCA(f, "fuzz a"), testpki.GenCA(f, "fuzz b")
	f.Add([]byte("# corporate roots\n"), []byte("\n"), false, false, false)
	f.Add([]byte("Bag Attributes\n    localKeyID: 01\nsubject=/CN=x\n"), []byte("issuer=/CN=y\n"), true, true, true)
	f.Add([]byte("text with no newline"), []byte("  \t"), false, true, true)
	f.Add([]byte("Proc-Type: 4,ENCRYPTED\n\n"), []byte("MIIB\n"), true, false, false)
	f.Fuzz(func(t *testing.T, sep1, sep2 []byte, crlf, bom, joined bool) {
		if bytes.Contains(sep1, []byte("-----")) || bytes.Contains(sep2, []byte("-----")) {
			t.Skip()
		}
		for _, sep := range []*[]byte{&sep1, &sep2} {
			if len(*sep) > 0 && !bytes.HasSuffix(*sep, []byte("\n")) {
				*sep = append(*sep, '\n')
			}
		}
		pa := a.PEM()
		if joined {
			pa = bytes.TrimSuffix(pa, []byte("\n"))
		}
		data := testpki.Concat(sep1, pa, sep2, b.PEM())
		if crlf {
			data = bytes.ReplaceAll(data, []byte("\n"), []byte("\r\n"))
		}
		if bom {
			data = append([]byte("\xef\xbb\xbf"), data...)
		}
		blocks, _ := scanPEM(data, isCertType)
		var got [][]byte
		for _, bl := range blocks {
			if bl.Err != nil {
				t.Fatalf("%s: %v in %q", bl.Pos(), bl.Err, data)
			}
			got = append(got, bl.DER)
		}
		if !equalDERs(got, [][]byte{a.DER(), b.DER()}) {
			t.Fatalf("got %d blocks from %q", len(got), data)
		}
	})
}
