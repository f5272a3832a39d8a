package trust

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/konveyor/kai-entrypoint/internal/testpki"
)

// Benchmarks, for the per-operation costs in docs/performance.md:
//
//	go test -run '^$' -bench 'SystemRoots|ParseCertFile|BuildBundle|WriteAtomic' -benchmem ./trust/

const debianBundle = "/etc/ssl/certs/ca-certificates.crt"

// BenchmarkReadSystemRoots reads and re-frames Debian's system bundle
// without X.509 parsing, as the shim does at every start.
func BenchmarkReadSystemRoots(b *testing.B) {
	if _, err := os.Stat(debianBundle); err != nil {
		b.Skip(err)
	}
	var n int
	for b.Loop() {
		s, err := ReadSystemRoots(debianBundle)
		if err != nil {
			b.Fatal(err)
		}
		n = s.Count
	}
	b.ReportMetric(float64(n), "certs")
}

// BenchmarkReadSystemRoots_Careful is the same with the careful reader
// only: what fastSystemRoots saves.
func BenchmarkReadSystemRoots_Careful(b *testing.B) {
	if _, err := os.Stat(debianBundle); err != nil {
		b.Skip(err)
	}
	for b.Loop() {
		data, err := os.ReadFile(debianBundle)
		if err != nil {
			b.Fatal(err)
		}
		carefulSystemRoots(&SystemRoots{keys: map[string]bool{}}, data)
	}
}

// BenchmarkSystemRootsFullParse is what full X.509 parsing of the same
// bundle would cost instead (the system roots are trusted as they are, so parsing them must earn its cost).
func BenchmarkSystemRootsFullParse(b *testing.B) {
	data, err := os.ReadFile(debianBundle)
	if err != nil {
		b.Skip(err)
	}
	for b.Loop() {
		data, err := os.ReadFile(debianBundle)
		if err != nil {
			b.Fatal(err)
		}
		for rest := data; ; {
			var blk *pem.Block
			blk, rest = pem.Decode(rest)
			if blk == nil {
				break
			}
			if _, err := x509.ParseCertificate(blk.Bytes); err != nil {
				b.Fatal(err)
			}
		}
	}
	_ = data
}

// BenchmarkParseCertFile parses one extra CA file: a single PEM
// certificate, the same as DER, and a file of 10.
func BenchmarkParseCertFile(b *testing.B) {
	key := testpki.RSAKey(b)
	one := testpki.Gen(b, testpki.Spec{CN: "bench", CA: true, Key: key})
	var ten []byte
	for i := range 10 {
		ten = append(ten, testpki.Gen(b, testpki.Spec{CN: fmt.Sprint("bench ", i), CA: true, Key: key}).PEM()...)
	}
	for _, bc := range []struct {
		name string
		data []byte
		want int
	}{
		{name: "PEM-1", data: one.PEM(), want: 1},
		{name: "DER-1", data: one.DER(), want: 1},
		{name: "PEM-10", data: ten, want: 10},
		{name: "key+PEM-1", data: testpki.Concat(testpki.RSAKeyPEM(key), one.PEM()), want: 1},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.SetBytes(int64(len(bc.data)))
			for b.Loop() {
				certs, _, errs := parseCertFile("/certs/bench.pem", bc.data)
				if len(certs) != bc.want || len(errs) != 0 {
					b.Fatalf("%d certs, %v", len(certs), errs)
				}
			}
		})
	}
}

// BenchmarkBuildBundle joins Debian's roots and 3 extra CAs.
func BenchmarkBuildBundle(b *testing.B) {
	sys, err := ReadSystemRoots(debianBundle)
	if err != nil {
		b.Skip(err)
	}
	var extras []Cert
	for i := range 3 {
		c := testpki.GenCA(b, fmt.Sprint("extra ", i))
		extras = append(extras, Cert{X509: c.Cert, Sum: sha256.Sum256(c.DER())})
	}
	for b.Loop() {
		Build("/tmp/x", sys, extras)
	}
}

// BenchmarkWriteAtomic writes a Debian-sized bundle: unchanged (the usual
// restart) and changed.
func BenchmarkWriteAtomic(b *testing.B) {
	sys, err := ReadSystemRoots(debianBundle)
	if err != nil {
		b.Skip(err)
	}
	path := filepath.Join(b.TempDir(), "ca-bundle.pem")
	b.Run("unchanged", func(b *testing.B) {
		if _, err := WriteAtomic(path, sys.PEM); err != nil {
			b.Fatal(err)
		}
		for b.Loop() {
			if w, err := WriteAtomic(path, sys.PEM); err != nil || w {
				b.Fatal(w, err)
			}
		}
	})
	b.Run("changed", func(b *testing.B) {
		alt := append(append([]byte(nil), sys.PEM...), sys.PEM[:2000]...)
		if _, err := WriteAtomic(path, sys.PEM); err != nil {
			b.Fatal(err)
		}
		d := sys.PEM
		for b.Loop() {
			if bytes.Equal(d, sys.PEM) {
				d = alt
			} else {
				d = sys.PEM
			}
			if w, err := WriteAtomic(path, d); err != nil || !w {
				b.Fatal(w, err)
			}
		}
	})
}
