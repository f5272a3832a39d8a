package entrypoint

import (
	"crypto/sha256"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
)

// systemRoots is the system bundle, read without X.509 parsing: it is the
// largest input and is trusted as it is.
type systemRoots struct {
	Path     string   // "" when none was found
	PEM      []byte   // its certificates, cleanly framed
	Count    int      // certificates kept
	Warnings []string // blocks dropped, fallbacks taken
	sums     map[[sha256.Size]byte]bool
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

// readSystemRoots reads path and re-frames its certificate blocks: LF line
// ends, one block after another, a final newline. A block whose base64 does
// not decode is dropped with a warning; duplicates are dropped silently.
func readSystemRoots(path string) (*systemRoots, error) {
	s := &systemRoots{Path: path, sums: map[[sha256.Size]byte]bool{}}
	if path == "" {
		return s, nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading system bundle %s: %v", path, cause(err))
	}
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
			s.Warnings = append(s.Warnings, fmt.Sprintf("system bundle %s: %s does not decode, dropped", path, b.Pos()))
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
	return s, nil
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
