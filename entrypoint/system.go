package entrypoint

import (
	"bytes"
	"crypto/sha256"
	"encoding/pem"
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
// not decode is dropped with a warning; duplicates are dropped silently. A
// bundle that yields no certificate gets a warning too.
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
// ones that do not decode, and re-encodes the rest.
func carefulSystemRoots(s *systemRoots, data []byte) {
	var err error
	blocks, _ := scanPEM(data, isCertType)
	buf := make([]byte, 0, len(data))
	for _, b := range blocks {
		if !isCertType(b.Type) {
			continue
		}
		der := b.DER
		if b.Err == nil {
			der, err = certDER(b)
		}
		if b.Err != nil || err != nil {
			s.Warnings = append(s.Warnings, fmt.Sprintf("system bundle %s: %s does not decode, dropped", s.Path, b.Pos()))
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
// both exist, by identity.
func sameFile(a, b string) bool {
	if filepath.Clean(a) == filepath.Clean(b) {
		return true
	}
	fa, errA := os.Stat(a)
	fb, errB := os.Stat(b)
	return errA == nil && errB == nil && os.SameFile(fa, fb)
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
// and with zero unused bits. It checks what decoding would, without
// decoding: one table look-up per character, OR-ed together, since no
// valid character's value has either of the top two bits set.
func canonicalBase64(body []byte) bool {
	b := body[:len(body)-1] // the final LF
	pad := 0
	for pad < 2 && len(b) > 0 && b[len(b)-1] == '=' {
		b, pad = b[:len(b)-1], pad+1
	}
	b = bytes.TrimSuffix(b, []byte{'\n'}) // padding alone on the last line
	if len(b) == 0 {
		return false
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
	if acc&0xc0 != 0 || (n+pad)%4 != 0 {
		return false
	}
	switch pad {
	case 1:
		return b64Value[last]&0x03 == 0
	case 2:
		return b64Value[last]&0x0f == 0
	}
	return true
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
// canonical base64 in LF-terminated 64-column lines. Such a block is
// copied verbatim, which gives the same bytes as re-encoding it (the
// decoder skips the LFs itself; the DER is still decoded, for the dedup
// key). Anything else makes it return false, and the careful scanner runs
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
		if !pemLines(body) || !canonicalBase64(body) {
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
