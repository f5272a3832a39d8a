package trust

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"

	"software.sslmate.com/src/go-pkcs12"
)

// TrustStore returns the bundle's certificates as a passwordless PKCS#12
// trust store, the form every JVM reads (see trustStore), and how many it
// holds.
func (b *Bundle) TrustStore() (store []byte, count int, err error) {
	return trustStore(b.parts...)
}

// trustStore encodes every certificate of the PEM data as a
// passwordless PKCS#12 trust store that Java reads with no password flag,
// each certificate once, its alias the start of its SHA-256 fingerprint
// (unique, where subjects are not). With no MAC and no encryption the
// encoding has no salt: the same certificates give the same bytes, so an
// unchanged store is not rewritten.
func trustStore(pemData ...[]byte) (store []byte, count int, err error) {
	var entries []pkcs12.TrustStoreEntry
	seen := map[[32]byte]bool{}
	for _, data := range pemData {
		for {
			var b *pem.Block
			if b, data = pem.Decode(data); b == nil {
				break
			}
			sum := sha256.Sum256(b.Bytes)
			if b.Type != "CERTIFICATE" || seen[sum] {
				continue
			}
			seen[sum] = true
			// The encoder reads only Raw: no need to parse the certificate.
			entries = append(entries, pkcs12.TrustStoreEntry{Cert: &x509.Certificate{Raw: b.Bytes}, FriendlyName: "kai-" + hex.EncodeToString(sum[:8])})
		}
	}
	store, err = pkcs12.Passwordless.EncodeTrustStoreEntries(entries, "")
	return store, len(entries), err
}
