package trust

import (
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// SystemRoots is the system bundle, read without X.509 parsing: it is the
// largest input and is trusted as it is.
type SystemRoots struct {
	Path     string          // "" when none was found
	PEM      []byte          // its certificates, as pem.Encode writes them
	Count    int             // certificates kept
	Warnings []string        // blocks dropped
	keys     map[string]bool // each block's base64 body, as pem.Encode writes it
}

// has reports whether block, a certificate as pem.Encode writes it, is
// among the system roots.
func (s *SystemRoots) has(block []byte) bool {
	return s.keys[string(block[len(certBegin):len(block)-len(certEnd)])]
}

// FindSystemBundle returns sslCertFile, the inherited SSL_CERT_FILE, when
// it names an existing file other than bundle, the shim's own output (a
// nested or repeated run must not carry old extras forward as system
// roots), else the first existing file of files. It returns "" when there
// is none.
func FindSystemBundle(sslCertFile, bundle string, files []string) (path string, warnings []string) {
	if f := sslCertFile; f != "" {
		switch {
		case SameFile(f, bundle):
			// Our own output from an earlier run: fall back to the system's.
		case IsRegular(f):
			return f, nil
		default:
			warnings = append(warnings, fmt.Sprintf("inherited SSL_CERT_FILE=%q is not a readable file; using the distribution's bundle for the system roots", f))
		}
	}
	for _, f := range files {
		if IsRegular(f) {
			return f, warnings
		}
	}
	return "", warnings
}

// maxSystemBundleSize bounds the system bundle: distributions' bundles are
// well under 1 MiB (Debian's is about 220 KB), so a larger file is a
// mistake (a mounted disk image, a log file).
const maxSystemBundleSize = 16 << 20

// ReadSystemRoots reads path and re-frames its certificate blocks: LF line
// ends, one block after another, a final newline. A block whose base64 does
// not decode, or whose DER is not shaped as a certificate (certShape), is
// dropped with a warning; duplicates are dropped silently. A bundle that
// yields no certificate gets a warning too.
func ReadSystemRoots(path string) (*SystemRoots, error) {
	s := &SystemRoots{Path: path, keys: map[string]bool{}}
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
func carefulSystemRoots(s *SystemRoots, data []byte) {
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
		block := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
		key := string(block[len(certBegin) : len(block)-len(certEnd)])
		if s.keys[key] {
			continue
		}
		s.keys[key] = true
		buf = append(buf, block...)
		s.Count++
	}
	s.PEM = buf
}

// IsRegular reports whether path names a regular file (symlinks followed).
func IsRegular(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular()
}

// SameFile reports whether a and b name the same file, by path or, when
// both exist, by identity. b is not looked at when a does not exist.
func SameFile(a, b string) bool {
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
