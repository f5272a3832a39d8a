package trust

import (
	"bytes"
	"encoding/pem"
	"io"
	"os"
)

// Bundle is the combined CA bundle: the system roots, then the extra CAs.
type Bundle struct {
	Path       string // where it is written
	SystemPath string // where the system roots came from, "" if none
	System     int    // system certificates
	Extras     []Cert // extra CAs not already among the system roots
	InSystem   []Cert // extra CAs that the system bundle already has
	Duplicates int    // extra CAs found more than once
	Written    bool   // false when the target already held these bytes

	// The bytes in parts (bundleHeader, the system roots, the extras), so
	// that the system roots (most of them) are never copied: compared with
	// the old bundle and written as they are. Joining them into one buffer
	// and reading the old bundle whole to compare was measured at about
	// 1.5 ms more per start on a 2-vCPU VM (400 interleaved runs: median
	// 17.6 ms against 15.4 ms), most of it faulting in the fresh pages.
	parts [][]byte
}

// Size returns the bundle's length in bytes.
func (b *Bundle) Size() int {
	n := 0
	for _, p := range b.parts {
		n += len(p)
	}
	return n
}

// SystemPEM returns the system roots as the bundle holds them.
func (b *Bundle) SystemPEM() []byte { return b.parts[1] }

// Total is the number of certificates in the bundle.
func (b *Bundle) Total() int { return b.System + len(b.Extras) }

// Build appends the extra CAs, in the order given and each once, to
// the system roots, every one re-encoded as clean PEM: no corrupt block,
// missing newline or DER input can then make OpenSSL reject the file.
func Build(path string, sys *SystemRoots, extras []Cert) *Bundle {
	b := &Bundle{Path: path, SystemPath: sys.Path, System: sys.Count}
	seen := map[[32]byte]bool{}
	var buf bytes.Buffer
	for _, c := range extras {
		if seen[c.Sum] {
			b.Duplicates++
			continue
		}
		seen[c.Sum] = true
		// Encode once: the block is both the output and the key to look
		// it up by among the system roots.
		start := buf.Len()
		pem.Encode(&buf, &pem.Block{Type: "CERTIFICATE", Bytes: c.X509.Raw})
		if sys.has(buf.Bytes()[start:]) {
			buf.Truncate(start)
			b.InSystem = append(b.InSystem, c)
			continue
		}
		b.Extras = append(b.Extras, c)
	}
	b.parts = [][]byte{[]byte(bundleHeader), sys.PEM, buf.Bytes()}
	return b
}

// bundleHeader is the first line of every bundle the shim writes: a file
// that starts with it is the shim's own output. PEM readers skip text
// outside the blocks (RHEL's tls-ca-bundle.pem has a comment before each).
const bundleHeader = "# kai-entrypoint: combined CA bundle (system roots + extra CAs), rewritten at every start\n"

// WrittenByShim reports whether the file at path starts with bundleHeader.
func WrittenByShim(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	head := make([]byte, len(bundleHeader))
	_, err = io.ReadFull(f, head)
	return err == nil && string(head) == bundleHeader
}

// Write writes the bundle to its path (see WriteAtomic) and records
// whether the file changed.
func (b *Bundle) Write() (err error) {
	b.Written, err = WriteAtomic(b.Path, b.parts...)
	return err
}
