package trust

import (
	"bytes"
	"encoding/pem"
	"os"
	"testing"

	"github.com/konveyor/kai-entrypoint/internal/testpki"
)

// slowSystemRoots runs the careful scanner only, for comparison.
func slowSystemRoots(t testing.TB, data []byte) *SystemRoots {
	t.Helper()
	s := &SystemRoots{Path: "test", keys: map[string]bool{}}
	carefulSystemRoots(s, data)
	return s
}

// TestFastSystemRoots_SameAsCareful checks that the copy-as-is path for
// cleanly written bundles gives exactly the careful scanner's result, and
// that it declines anything it cannot copy as it is.
func TestFastSystemRoots_SameAsCareful(t *testing.T) {
	a, b, c := testpki.GenCA(t, "Fast A"), testpki.GenCA(t, "Fast B"), testpki.GenCA(t, "Fast C")
	inputs := map[string][]byte{
		"clean":                  testpki.Concat(a.PEM(), b.PEM(), c.PEM()),
		"clean with a duplicate": testpki.Concat(a.PEM(), b.PEM(), a.PEM(), c.PEM()),
		"text between blocks":    testpki.Concat(a.PEM(), []byte("# comment\n"), b.PEM()),
	}
	if debian, err := os.ReadFile("/etc/ssl/certs/ca-certificates.crt"); err == nil {
		inputs["debian"] = debian
	}
	for name, data := range inputs {
		t.Run(name, func(t *testing.T) {
			fast := &SystemRoots{}
			if !fastSystemRoots(fast, data) {
				t.Fatal("fastSystemRoots declined a cleanly written bundle")
			}
			slow := slowSystemRoots(t, data)
			if !bytes.Equal(fast.PEM, slow.PEM) || fast.Count != slow.Count || len(fast.keys) != len(slow.keys) {
				t.Fatalf("fast path: %d certs, %d bytes; careful: %d certs, %d bytes", fast.Count, len(fast.PEM), slow.Count, len(slow.PEM))
			}
			// Every root the careful scanner found is known to the fast path.
			rest := fast.PEM
			for {
				var blk *pem.Block
				if blk, rest = pem.Decode(rest); blk == nil {
					break
				}
				block := pem.EncodeToMemory(blk)
				if !slow.has(block) || !fast.has(block) {
					t.Fatalf("%s: careful %v, fast %v", block, slow.has(block), fast.has(block))
				}
			}
			if other := testpki.GenCA(t, "not in the bundle"); fast.has(other.PEM()) {
				t.Error("fast path has a certificate that is not in the bundle")
			}
		})
	}
	declined := map[string][]byte{
		"CRLF":                  bytes.ReplaceAll(a.PEM(), []byte("\n"), []byte("\r\n")),
		"other block":           testpki.Concat(a.PEM(), testpki.RSAKeyPEM(testpki.RSAKey(t))),
		"long line":             bytes.Replace(a.PEM(), []byte("\n"), nil, 2),
		"bad base64":            bytes.Replace(a.PEM(), []byte("M"), []byte("!"), 1),
		"padding inside":        bytes.Replace(a.PEM(), []byte("M"), []byte("="), 1),
		"non-zero padding bits": nonCanonicalPadding(t),
		"no final LF":           bytes.TrimSuffix(a.PEM(), []byte("\n")),
		"trusted block":         testpki.TrustedPEM(a),
	}
	for name, data := range declined {
		if fastSystemRoots(&SystemRoots{}, data) {
			t.Errorf("%s: fastSystemRoots accepted what it cannot copy as it is", name)
		}
	}
}

// nonCanonicalPadding returns a block whose last base64 character before
// the padding has its unused bits set: a lenient decoder accepts it and
// gets the same bytes as from the canonical text, so it must not be taken
// as a key. 100 bytes of body give "==" padding.
func nonCanonicalPadding(t testing.TB) []byte {
	t.Helper()
	block := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: bytes.Repeat([]byte{0x30}, 100)})
	i := bytes.Index(block, []byte("=="))
	if i < 1 {
		t.Fatalf("no padding in %s", block)
	}
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	block[i-1] = alphabet[b64Value[block[i-1]]|1]
	return block
}

// FuzzSystemRoots checks that the two readers of the system bundle agree.
// For any input:
//   - the careful reader's output is accepted by the fast reader, which
//     returns it unchanged: a bundle the shim wrote is always clean;
//   - when the fast reader accepts the input itself, the careful reader
//     drops no block with a warning (the fast reader declines instead of
//     dropping), and both give the same bytes and count;
//   - in both cases the fast reader's keys (the base64 texts) are exactly
//     the careful reader's (the DER's SHA-256), one per certificate.
//
// `go test` runs the seeds; fuzz with
//
//	go test -run '^$' -fuzz FuzzSystemRoots ./trust/
func FuzzSystemRoots(f *testing.F) {
	a, b := testpki.GenCA(f, "fuzz a"), testpki.GenCA(f, "fuzz b")
	certBlock := func(der []byte) []byte { return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}) }
	key, _ := pem.Decode(testpki.ECKeyPEM(f, a.Key))
	for _, seed := range [][]byte{
		nil,
		testpki.Concat(a.PEM(), b.PEM()),
		testpki.Concat(a.PEM(), []byte("# comment\n"), b.PEM(), a.PEM()),
		bytes.ReplaceAll(a.PEM(), []byte("\n"), []byte("\r\n")),
		testpki.Concat(testpki.TrustedPEM(b), a.PEM()),
		testpki.Concat(a.PEM(), certBlock(key.Bytes), b.PEM()),
		certBlock(append(a.DER(), 0)),
		certBlock(a.DER()[:100]),
		nonCanonicalPadding(f),
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		careful := slowSystemRoots(t, data)
		again := &SystemRoots{}
		if !fastSystemRoots(again, careful.PEM) {
			t.Fatalf("the fast reader declines the careful reader's output %q", careful.PEM)
		}
		sameRoots(t, again, careful)
		fast := &SystemRoots{}
		if !fastSystemRoots(fast, data) {
			return
		}
		if len(careful.Warnings) > 0 {
			t.Fatalf("the fast reader accepts %q, from which the careful reader drops blocks: %q", data, careful.Warnings)
		}
		sameRoots(t, fast, careful)
	})
}

// sameRoots checks that fast, read by the fast reader, holds the same
// certificates as careful, in the same bytes and with matching keys.
func sameRoots(t *testing.T, fast, careful *SystemRoots) {
	t.Helper()
	if !bytes.Equal(fast.PEM, careful.PEM) || fast.Count != careful.Count {
		t.Fatalf("fast reader: %d certificates\n%s\ncareful reader: %d\n%s", fast.Count, fast.PEM, careful.Count, careful.PEM)
	}
	if len(fast.keys) != fast.Count || len(careful.keys) != careful.Count {
		t.Fatalf("%d and %d keys for %d certificates", len(fast.keys), len(careful.keys), fast.Count)
	}
	for rest := fast.PEM; len(rest) > 0; {
		block := rest[:bytes.Index(rest, certEnd)+len(certEnd)]
		rest = rest[len(block):]
		if !fast.has(block) || !careful.has(block) {
			t.Fatalf("keys differ for\n%s", block)
		}
	}
}
