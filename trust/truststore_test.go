package trust

import (
	"bytes"
	"encoding/pem"
	"path/filepath"
	"slices"
	"testing"

	"github.com/konveyor/kai-entrypoint/internal/testpki"
	"software.sslmate.com/src/go-pkcs12"
)

// pemDERs returns the DER of every certificate in PEM data, in order.
func pemDERs(data []byte) [][]byte {
	var out [][]byte
	for {
		var b *pem.Block
		if b, data = pem.Decode(data); b == nil {
			return out
		}
		out = append(out, b.Bytes)
	}
}

// TestTrustStore checks that the store decodes, with the library, to
// the certificates of the PEM input, each once, and that the same input
// gives the same bytes (so an unchanged store is not rewritten).
func TestTrustStore(t *testing.T) {
	var cas [][]byte
	for _, cn := range []string{"Java Test A", "Java Test B", "Java Test B"} { // two CAs of one name: distinct aliases
		ca, err := testpki.NewCA(cn)
		if err != nil {
			t.Fatal(err)
		}
		cas = append(cas, ca.PEM)
	}
	key := []byte("-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n")
	tests := []struct {
		name  string
		parts [][]byte
		want  [][]byte // DER, in order
	}{
		{name: "bundle parts: header and system and extras", parts: [][]byte{[]byte(bundleHeader), cas[0], slices.Concat(cas[1], cas[2])},
			want: slices.Concat(pemDERs(cas[0]), pemDERs(cas[1]), pemDERs(cas[2]))},
		{name: "a certificate twice is stored once", parts: [][]byte{cas[0], cas[0]}, want: pemDERs(cas[0])},
		{name: "a block other than a certificate is left out", parts: [][]byte{slices.Concat(key, cas[1])}, want: pemDERs(cas[1])},
		{name: "no certificate: an empty store", parts: [][]byte{[]byte(bundleHeader)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			store, n, err := trustStore(tt.parts...)
			if err != nil {
				t.Fatal(err)
			}
			if n != len(tt.want) {
				t.Errorf("count %d, want %d", n, len(tt.want))
			}
			certs, err := pkcs12.DecodeTrustStore(store, "")
			if err != nil {
				t.Fatal(err)
			}
			var got [][]byte
			for _, c := range certs {
				got = append(got, c.Raw)
			}
			if !slices.EqualFunc(got, tt.want, bytes.Equal) {
				t.Errorf("store holds %d certificates, not the %d of the input in order", len(got), len(tt.want))
			}
			again, _, err := trustStore(tt.parts...)
			if err != nil || !bytes.Equal(again, store) {
				t.Errorf("a second encoding differs (err %v): the store would be rewritten at every start", err)
			}
		})
	}
}

// BenchmarkTrustStore is what a Java trust store (KAI_JAVA_TRUSTSTORE) adds to a start with
// Debian's system bundle and one extra CA: encoding the store, and
// comparing it with the store already in place (the usual restart).
//
//	go test -run '^$' -bench TrustStore -benchmem ./trust/
func BenchmarkTrustStore(b *testing.B) {
	sys, err := ReadSystemRoots(debianBundle)
	if err != nil {
		b.Skip(err)
	}
	ca, err := testpki.NewCA("Java Bench CA")
	if err != nil {
		b.Fatal(err)
	}
	path := filepath.Join(b.TempDir(), "t.p12")
	var n int
	for b.Loop() {
		store, count, err := trustStore([]byte(bundleHeader), sys.PEM, ca.PEM)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := WriteAtomic(path, store); err != nil {
			b.Fatal(err)
		}
		n = count
	}
	b.ReportMetric(float64(n), "certs")
}
