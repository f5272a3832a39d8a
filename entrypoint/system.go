package entrypoint

import (
	"bytes"
	"crypto/sha256"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// systemRoots is the system bundle, read without X.509 parsing: it is the
// largest input and is trusted as it is.
type systemRoots struct {
	Path     string                     // "" when none was found
	PEM      []byte                     // its certificates, cleanly framed
	Count    int                        // certificates kept
	Warnings []string                   // blocks dropped, fallbacks taken
	sums     map[[sha256.Size]byte]bool // careful path: SHA-256 of each DER
	text     map[string]bool            // fast path: each block's canonical base64 body
}

// findSystemBundle returns the inherited SSL_CERT_FILE when it names an
// existing file other than the shim's own output (a nested or repeated run
// must not carry old extras forward as system roots), else the first
// existing file of certFiles. It returns "" when there is none.
func findSystemBundle(env *Env, bundle string, files []string) (path string, warnings []string) {
	if f, ok := env.Get("SSL_CERT_FILE"); ok && f != "" {
		switch {
		case sameFile(f, bundle):
			// Our own output from an earlier run: fall back to the system's.
		case isRegular(f):
			return f, nil
		default:
			warnings = append(warnings, fmt.Sprintf("inherited SSL_CERT_FILE=%q is not a readable file; using the distribution's bundle for the system roots", f))
		}
	}
	for _, f := range files {
		if isRegular(f) {
			return f, warnings
		}
	}
	return "", warnings
}

// maxSystemBundleSize bounds the system bundle: distributions' bundles are
// well under 1 MiB (Debian's is about 220 KB), so a larger file is a
// mistake (a mounted disk image, a log file).
const maxSystemBundleSize = 16 << 20

// readSystemRoots reads path and re-frames its certificate blocks: LF line
// ends, one block after another, a final newline. A block whose base64 does
// not decode, or whose DER is not shaped as a certificate (certShape), is
// dropped with a warning; duplicates are dropped silently. A bundle that
// yields no certificate gets a warning too.
func readSystemRoots(path string) (*systemRoots, error) {
	s := &systemRoots{Path: path, sums: map[[sha256.Size]byte]bool{}}
	if path == "" {
		return s, nil
	}
	if fi, err := os.Stat(path); err == nil && fi.Size() > maxSystemBundleSize {
		return nil, fmt.Errorf("system bundle %s: %d bytes, larger than the %d MiB a CA bundle may have", path, fi.Size(), maxSystemBundleSize>>20)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading system bundle %s: %v", path, cause(err))
	}
	if !fastSystemRoots(s, data) {
		carefulSystemRoots(s, data)
	}
	if s.Count == 0 {
		s.Warnings = append(s.Warnings, fmt.Sprintf("system bundle %s holds no certificate: the bundle will have no system roots, and clients will reject every public host", path))
	}
	return s, nil
}

// carefulSystemRoots reads any bundle: it decodes every block, drops the
// ones that do not decode or are not shaped as a certificate, and
// re-encodes the rest. A TRUSTED CERTIFICATE whose trust settings rule out
// server authentication is no root: it is dropped silently (RHEL's
// ca-bundle.trust.crt lists distrusted CAs so).
func carefulSystemRoots(s *systemRoots, data []byte) {
	blocks, _ := scanPEM(data, isCertType)
	buf := make([]byte, 0, len(data))
	for _, b := range blocks {
		if !isCertType(b.Type) {
			continue
		}
		der, err := b.DER, b.Err
		if err == nil {
			der, err = certDER(b)
		}
		if errors.Is(err, errNotAnchor) {
			continue
		}
		if err != nil {
			s.Warnings = append(s.Warnings, fmt.Sprintf("system bundle %s: %s does not decode, dropped", s.Path, b.Pos()))
			continue
		}
		if !certShape(derBytes(der), len(der)) {
			s.Warnings = append(s.Warnings, fmt.Sprintf("system bundle %s: %s is not a certificate, dropped", s.Path, b.Pos()))
			continue
		}
		sum := sha256.Sum256(der)
		if s.sums[sum] {
			continue
		}
		s.sums[sum] = true
		buf = append(buf, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})...)
		s.Count++
	}
	s.PEM = buf
}

func isRegular(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular()
}

// sameFile reports whether a and b name the same file, by path or, when
// both exist, by identity. b is not looked at when a does not exist.
func sameFile(a, b string) bool {
	if filepath.Clean(a) == filepath.Clean(b) {
		return true
	}
	fa, err := os.Stat(a)
	if err != nil {
		return false
	}
	fb, err := os.Stat(b)
	return err == nil && os.SameFile(fa, fb)
}

var (
	certBegin = []byte("-----BEGIN CERTIFICATE-----\n")
	certEnd   = []byte("-----END CERTIFICATE-----\n")
)

// b64Value maps a base64 character to its 6-bit value, and every other
// byte to 0xff.
var b64Value = func() (t [256]byte) {
	for i := range t {
		t[i] = 0xff
	}
	for i, c := range "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/" {
		t[c] = byte(i)
	}
	return t
}()

// canonicalBase64 reports whether body, in pem.Encode's 64-column lines
// (pemLines checked that), is standard base64 that a strict decoder
// accepts: only base64 characters, whole quanta, padding only at the end
// and with zero unused bits; if so it also returns the decoded length. It
// checks what decoding would, without decoding: one table look-up per
// character, OR-ed together, since no valid character's value has either
// of the top two bits set.
func canonicalBase64(body []byte) (size int, ok bool) {
	b := body[:len(body)-1] // the final LF
	pad := 0
	for pad < 2 && len(b) > 0 && b[len(b)-1] == '=' {
		b, pad = b[:len(b)-1], pad+1
	}
	b = bytes.TrimSuffix(b, []byte{'\n'}) // padding alone on the last line
	if len(b) == 0 {
		return 0, false
	}
	last := b[len(b)-1]
	var acc byte
	n := 0
	for len(b) > 0 {
		line := b
		if len(line) > 64 {
			line, b = b[:64], b[65:] // b[64] is an LF: pemLines
		} else {
			b = nil
		}
		for _, c := range line {
			acc |= b64Value[c]
		}
		n += len(line)
	}
	size = (n+pad)/4*3 - pad
	switch {
	case acc&0xc0 != 0 || (n+pad)%4 != 0:
		return 0, false
	case pad == 1:
		return size, b64Value[last]&0x03 == 0
	case pad == 2:
		return size, b64Value[last]&0x0f == 0
	}
	return size, true
}

// hasBlock reports whether c, given also as pem.Encode writes it, is among
// the system roots.
func (s *systemRoots) hasBlock(block []byte, c Cert) bool {
	if s.text != nil {
		return s.text[string(block[len(certBegin):len(block)-len(certEnd)])]
	}
	return s.sums[c.Sum]
}

// fastSystemRoots handles the common case of a system bundle that is
// already written the way pem.Encode writes: only CERTIFICATE blocks,
// canonical base64 in LF-terminated 64-column lines, each shaped as a
// certificate. Such a block is copied verbatim, which gives the same bytes
// as re-encoding it, and is never decoded: its text is the dedup key, and
// certShape reads the few DER bytes it needs straight from the base64.
// Anything else makes it return false, and the careful scanner runs
// instead.
func fastSystemRoots(s *systemRoots, data []byte) bool {
	var out []byte // nil while data[:end] is exactly the blocks kept
	end, count := 0, 0
	text := make(map[string]bool, 256)
	for off := 0; off < len(data); {
		i := bytes.Index(data[off:], beginMark)
		if i < 0 {
			break
		}
		start := off + i
		if !bytes.HasPrefix(data[start:], certBegin) || (start > 0 && data[start-1] != '\n') {
			return false
		}
		rest := data[start+len(certBegin):]
		j := bytes.Index(rest, endMark)
		if j < 0 || !bytes.HasPrefix(rest[j:], certEnd) || (j > 0 && rest[j-1] != '\n') {
			return false
		}
		body := rest[:j]
		off = start + len(certBegin) + j + len(certEnd)
		if !pemLines(body) {
			return false
		}
		if size, ok := canonicalBase64(body); !ok || !certShape(pemBase64(body), size) {
			return false
		}
		// The body is exactly what pem.Encode writes for its DER, so the
		// text is a one-to-one key: no need to decode and hash it.
		key := string(body)
		dup := text[key]
		if out == nil && start == end && !dup {
			end = off
			text[key] = true
			count++
			continue
		}
		if out == nil {
			out = append(make([]byte, 0, len(data)), data[:end]...)
		}
		if dup {
			continue
		}
		text[key] = true
		out = append(out, data[start:off]...)
		count++
	}
	if out == nil {
		out = data[:end]
	}
	s.PEM, s.Count, s.text, s.sums = out, count, text, nil
	return true
}

// pemLines reports whether body is base64 text in 64-column lines, each
// ending in LF, as pem.Encode writes it.
func pemLines(body []byte) bool {
	if len(body) == 0 || body[len(body)-1] != '\n' {
		return false
	}
	for k := 64; k < len(body)-1; k += 65 {
		if body[k] != '\n' {
			return false
		}
	}
	last := bytes.LastIndexByte(body[:len(body)-1], '\n') // -1 for a single line
	return len(body)-1-(last+1) <= 64 && bytes.Count(body, []byte{'\n'}) == (len(body)+64)/65
}

// A derReader gives byte i of a DER encoding.
type derReader interface{ at(i int) byte }

// derBytes is a decoded DER encoding.
type derBytes []byte

func (d derBytes) at(i int) byte { return d[i] }

// pemBase64 is the base64 text of a DER encoding in pem.Encode's 64-column
// lines, already checked by pemLines and canonicalBase64: it gives a byte
// without decoding the rest. Byte i comes from characters r and r+1 of its
// 4-character quantum, r = i%3; character c is at c + c/64 (the LFs).
type pemBase64 []byte

func (b pemBase64) at(i int) byte {
	c, r := i/3*4+i%3, i%3
	return b64Value[b[c+c/64]]<<(2+2*r) | b64Value[b[c+1+(c+1)/64]]>>(4-2*r)
}

// derField is a field certShape expects: its tag, and whether it may be absent.
type derField struct {
	tag      byte
	optional bool
}

// certLevels are the fields of a Certificate (RFC 5280 4.1) that certShape
// checks, level by level: each level is the contents of the first field
// of the level before.
var certLevels = [][]derField{
	{{0x30, false}}, // Certificate ::= SEQUENCE
	{
		{0x30, false}, // tbsCertificate
		{0x30, false}, // signatureAlgorithm
		{0x03, false}, // signatureValue BIT STRING
	},
	{
		{0xa0, true},  // [0] EXPLICIT version
		{0x02, false}, // serialNumber INTEGER
		{0x30, false}, // signature
		{0x30, false}, // issuer
		{0x30, false}, // validity
		{0x30, false}, // subject
		{0x30, false}, // subjectPublicKeyInfo
		{0x81, true},  // [1] IMPLICIT issuerUniqueID
		{0x82, true},  // [2] IMPLICIT subjectUniqueID
		{0xa3, true},  // [3] EXPLICIT extensions
	},
}

// certShape reports whether the size bytes of d are shaped as a
// certificate at its top three levels (certLevels): each level holds its
// fields with their tags, in order (an optional one may be absent), and
// nothing else, and nothing follows the Certificate. That is what
// OpenSSL's decoder checks first, and it tells a certificate from another
// structure (a key, a CRL, a request, a truncated or padded DER). The
// fields' contents are not checked: parsing Debian's roots in full
// (BenchmarkSystemRootsFullParse) costs over five times reading the bundle.
func certShape[D derReader](d D, size int) bool {
	start, end := 0, size
	for _, fields := range certLevels {
		var ok bool
		if start, end, ok = derFields(d, start, end, fields); !ok {
			return false
		}
	}
	return true
}

// derFields reports whether the DER elements from off to end are fields,
// in order, and nothing else; it returns the contents of the first.
func derFields[D derReader](d D, off, end int, fields []derField) (start, stop int, ok bool) {
	for i, f := range fields {
		if off == end {
			if !f.optional {
				return 0, 0, false
			}
			continue
		}
		tag, s, next, ok := derElement(d, off, end)
		switch {
		case !ok:
			return 0, 0, false
		case tag != f.tag && f.optional:
			continue
		case tag != f.tag:
			return 0, 0, false
		case i == 0:
			start, stop = s, next
		}
		off = next
	}
	return start, stop, off == end
}

// derElement reads the header of the DER element at off, which must end by
// end: a one-byte tag and a definite length, in short form or in at most
// three bytes (16 MiB, the system bundle's limit). It returns the tag, the
// start of the contents and the end of the element.
func derElement[D derReader](d D, off, end int) (tag byte, start, next int, ok bool) {
	if end-off < 2 {
		return 0, 0, 0, false
	}
	tag, n := d.at(off), int(d.at(off+1))
	start = off + 2
	if n >= 0x80 {
		k := n & 0x7f
		if k == 0 || k > 3 || end-start < k {
			return 0, 0, 0, false
		}
		for n = 0; k > 0; k-- {
			n = n<<8 | int(d.at(start))
			start++
		}
	}
	if n > end-start {
		return 0, 0, 0, false
	}
	return tag, start, start + n, true
}
