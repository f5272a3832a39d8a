// Package testpki makes the throwaway certificate authorities, server
// certificates and keys every test uses (ECDSA P-256 unless a key is given,
// valid from an hour ago for a year unless told otherwise), so that no test
// depends on a fixture that expires. The shim itself never imports it.
package testpki

import (
	"crypto/ecdsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"time"
)

// CA is a throwaway certificate authority.
type CA struct {
	Cert *x509.Certificate
	Key  *ecdsa.PrivateKey
	PEM  []byte // the certificate, PEM-encoded
}

// NewCA makes a self-signed CA named cn (see Gen).
func NewCA(cn string) (*CA, error) {
	c, err := generate(Spec{CN: cn, CA: true})
	if err != nil {
		return nil, err
	}
	return &CA{Cert: c.Cert, Key: c.Key.(*ecdsa.PrivateKey), PEM: c.PEM()}, nil
}

// KeyPEM returns the CA's private key, PEM-encoded, as mitmproxy keeps it
// next to its certificate.
func (ca *CA) KeyPEM() []byte {
	der, err := x509.MarshalECPrivateKey(ca.Key)
	if err != nil {
		panic(err) // a P-256 key always marshals
	}
	return pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der})
}

// Server issues a server certificate for names, each a DNS name or an IP,
// valid from an hour ago for a year.
func (ca *CA) Server(names ...string) (tls.Certificate, error) {
	return ca.ServerValid(time.Time{}, time.Time{}, names...)
}

// ServerValid issues a server certificate for names valid from notBefore
// to notAfter (zero: the defaults of Spec): an expired one, for a test of
// the expiry.
func (ca *CA) ServerValid(notBefore, notAfter time.Time, names ...string) (tls.Certificate, error) {
	c, err := generate(Spec{CN: names[0], Names: names, NotBefore: notBefore, NotAfter: notAfter, Parent: &Cert{Cert: ca.Cert, Key: ca.Key}})
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{c.Cert.Raw}, PrivateKey: c.Key}, nil
}
