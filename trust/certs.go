package trust

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// Cert is one extra CA certificate and where it came from.
type Cert struct {
	X509   *x509.Certificate
	Sum    [sha256.Size]byte // SHA-256 of the DER: the dedup key
	Source string            // the file it was read from
	Block  int               // its block in that file, 0 for a DER file
}

// Fingerprint returns the first 16 hex digits of the SHA-256 fingerprint.
func (c Cert) Fingerprint() string { return fmt.Sprintf("%x", c.Sum[:8]) }

// parseCertFile returns the certificates of one file, read as OpenSSL
// reads a CA file. In PEM, that is every CERTIFICATE, X509 CERTIFICATE and
// TRUSTED CERTIFICATE block and the certificates of every PKCS7 block;
// every other block (private keys, DH parameters, CRLs) is skipped, and so
// is, with a warning, a TRUSTED CERTIFICATE whose trust settings rule out
// server authentication. A file without a BEGIN line is read as DER
// (parseDER). A certificate that does not parse is an error naming the
// file and where in it.
func parseCertFile(path string, data []byte) (certs []Cert, warnings []string, errs []error) {
	blocks, sawBegin := scanPEM(data, holdsCerts)
	if !sawBegin {
		certs, errs = parseDER(path, data)
		return certs, nil, errs
	}
	for _, b := range blocks {
		if !holdsCerts(b.Type) {
			continue
		}
		ders, err := blockCerts(b)
		if errors.Is(err, errNotAnchor) {
			warnings = append(warnings, fmt.Sprintf("%s: %s: %v, skipped", path, b.Pos(), err))
			continue
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %s: %v", path, b.Pos(), err))
			continue
		}
		cs, es := readCerts(path, b.Pos(), b.Index, ders, isPKCS7Type(b.Type))
		certs, errs = append(certs, cs...), append(errs, es...)
	}
	return certs, warnings, errs
}

// holdsCerts reports the PEM block types parseCertFile reads.
func holdsCerts(t string) bool { return isCertType(t) || isPKCS7Type(t) }

// blockCerts returns the certificates' DER of a block that holdsCerts.
func blockCerts(b pemBlock) ([][]byte, error) {
	switch {
	case b.Err != nil:
		return nil, b.Err
	case isPKCS7Type(b.Type):
		return pkcs7Certs(b.DER)
	}
	der, err := certDER(b)
	return [][]byte{der}, err
}

// readCerts parses ders, found at where in the file path. With numbered
// (the certificates of a PKCS#7 bundle) each is named by its number.
func readCerts(path, where string, block int, ders [][]byte, numbered bool) (certs []Cert, errs []error) {
	for i, der := range ders {
		at := where
		if numbered {
			at += fmt.Sprintf(": certificate %d", i+1)
		}
		c, err := readCert(path, at, block, der)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		certs = append(certs, c)
	}
	return certs, errs
}

// readCert parses der, found at where in the file path.
func readCert(path, where string, block int, der []byte) (Cert, error) {
	c, err := x509.ParseCertificate(der)
	if err != nil {
		return Cert{}, fmt.Errorf("%s: %s: not a valid certificate: %v", path, where, strings.TrimPrefix(err.Error(), "x509: "))
	}
	return Cert{X509: c, Sum: sha256.Sum256(c.Raw), Source: path, Block: block}, nil
}

var (
	oidSignedData = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 2}
	oidServerAuth = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 3, 1}
	oidAnyEKU     = asn1.ObjectIdentifier{2, 5, 29, 37, 0}
)

// parseDER reads a file as DER, as OpenSSL reads a .der, .cer or .p7b
// file: certificates and PKCS#7 SignedData one after another, with blanks
// allowed between and after them (a newline after a DER file is common).
// A file whose first element is neither (text, a .p12, a DER key) holds no
// certificate. After the first, anything else is an error naming the byte
// offset, so that a mangled file is not silently read in part.
func parseDER(path string, data []byte) (certs []Cert, errs []error) {
	rest := cryptobyte.String(data)
	for first := true; ; first = false {
		rest = bytes.TrimLeft(rest, " \t\r\n")
		if len(rest) == 0 {
			return certs, errs
		}
		off := len(data) - len(rest)
		var elem cryptobyte.String
		if !rest.ReadASN1Element(&elem, cbasn1.SEQUENCE) {
			if first {
				return nil, nil // text, or not DER
			}
			return certs, append(errs, fmt.Errorf("%s: byte %d: neither a DER certificate nor blanks", path, off))
		}
		switch ders, err := pkcs7Certs(elem); {
		case errors.Is(err, errNotSignedData):
			c, err := readCert(path, fmt.Sprintf("byte %d", off), 0, elem)
			switch {
			case err == nil:
				certs = append(certs, c)
			case first:
				return nil, nil // a .p12, a DER key
			default:
				errs = append(errs, err)
			}
		case err != nil:
			errs = append(errs, fmt.Errorf("%s: PKCS#7 at byte %d: %v", path, off, err))
		default:
			cs, es := readCerts(path, fmt.Sprintf("PKCS#7 at byte %d", off), 0, ders, true)
			certs, errs = append(certs, cs...), append(errs, es...)
		}
	}
}

var (
	// errNotSignedData is pkcs7Certs' answer for DER that is no PKCS#7
	// SignedData at all (a certificate, a key).
	errNotSignedData = errors.New("not a PKCS#7 SignedData")
	errBadSignedData = errors.New("malformed PKCS#7 SignedData")
)

// pkcs7Certs returns the certificates of a PKCS#7 SignedData (RFC 5652
// §5.1), as .p7b files and `openssl crl2pkcs7` hold them:
//
//	ContentInfo ::= SEQUENCE { contentType OBJECT IDENTIFIER (signedData),
//	                           content [0] EXPLICIT SignedData }
//	SignedData ::= SEQUENCE { version INTEGER, digestAlgorithms SET,
//	        encapContentInfo SEQUENCE,
//	        certificates [0] IMPLICIT SET OF CertificateChoices OPTIONAL, ... }
//
// The certificates are the choices that are a SEQUENCE; the others
// (attribute certificates) are skipped.
func pkcs7Certs(der []byte) ([][]byte, error) {
	s := cryptobyte.String(der)
	var ci, content, sd, set cryptobyte.String
	var oid asn1.ObjectIdentifier
	if !s.ReadASN1(&ci, cbasn1.SEQUENCE) || !ci.ReadASN1ObjectIdentifier(&oid) || !oid.Equal(oidSignedData) {
		return nil, errNotSignedData
	}
	if !s.Empty() || !ci.ReadASN1(&content, cbasn1.Tag(0).Constructed().ContextSpecific()) || !ci.Empty() ||
		!content.ReadASN1(&sd, cbasn1.SEQUENCE) || !content.Empty() ||
		!sd.SkipASN1(cbasn1.INTEGER) || !sd.SkipASN1(cbasn1.SET) || !sd.SkipASN1(cbasn1.SEQUENCE) ||
		!sd.ReadOptionalASN1(&set, nil, cbasn1.Tag(0).Constructed().ContextSpecific()) {
		return nil, errBadSignedData
	}
	var certs [][]byte
	for !set.Empty() {
		var c cryptobyte.String
		var tag cbasn1.Tag
		if !set.ReadAnyASN1Element(&c, &tag) {
			return nil, errBadSignedData
		}
		if tag == cbasn1.SEQUENCE {
			certs = append(certs, c)
		}
	}
	return certs, nil
}

var (
	// errNotAnchor marks a TRUSTED CERTIFICATE that OpenSSL would not
	// trust as a root for a TLS server.
	errNotAnchor = errors.New("not trusted for server authentication")
	errBadTrust  = errors.New("malformed OpenSSL trust settings after the certificate")
)

// certDER returns the certificate's DER of a block. A TRUSTED CERTIFICATE
// is the certificate followed by OpenSSL's trust settings, X509_CERT_AUX:
//
//	SEQUENCE { trust SEQUENCE OF OBJECT IDENTIFIER OPTIONAL,
//	           reject [0] IMPLICIT SEQUENCE OF OBJECT IDENTIFIER OPTIONAL,
//	           alias UTF8String OPTIONAL, keyid OCTET STRING OPTIONAL,
//	           other [1] IMPLICIT SEQUENCE OF AlgorithmIdentifier OPTIONAL }
//
// As OpenSSL's obj_trust decides for serverAuth (crypto/x509/x509_trust.c),
// the certificate is no trust anchor, an error wrapping errNotAnchor, when
// the reject list holds serverAuth or anyExtendedKeyUsage, or when a trust
// list is present and holds neither.
func certDER(b pemBlock) ([]byte, error) {
	if b.Type != "TRUSTED CERTIFICATE" {
		return b.DER, nil
	}
	s := cryptobyte.String(b.DER)
	var cert, aux, trust, reject cryptobyte.String
	if !s.ReadASN1Element(&cert, cbasn1.SEQUENCE) {
		return nil, errors.New("not a valid certificate: bad ASN.1")
	}
	if s.Empty() {
		return cert, nil // no trust settings
	}
	var hasTrust bool
	if !s.ReadASN1(&aux, cbasn1.SEQUENCE) || !s.Empty() ||
		!aux.ReadOptionalASN1(&trust, &hasTrust, cbasn1.SEQUENCE) ||
		!aux.ReadOptionalASN1(&reject, nil, cbasn1.Tag(0).Constructed().ContextSpecific()) ||
		!aux.SkipOptionalASN1(cbasn1.UTF8String) || !aux.SkipOptionalASN1(cbasn1.OCTET_STRING) ||
		!aux.SkipOptionalASN1(cbasn1.Tag(1).Constructed().ContextSpecific()) || !aux.Empty() {
		return nil, errBadTrust
	}
	rejected, ok1 := holdsServerAuth(reject)
	trusted, ok2 := holdsServerAuth(trust)
	switch {
	case !ok1 || !ok2:
		return nil, errBadTrust
	case rejected:
		return nil, fmt.Errorf("%w: its OpenSSL trust settings reject it", errNotAnchor)
	case hasTrust && !trusted:
		return nil, fmt.Errorf("%w: its OpenSSL trust settings trust it for other uses only", errNotAnchor)
	}
	return cert, nil
}

// holdsServerAuth reports whether list, the content of a SEQUENCE OF
// OBJECT IDENTIFIER, holds serverAuth or anyExtendedKeyUsage; ok is false
// when it does not parse.
func holdsServerAuth(list cryptobyte.String) (found, ok bool) {
	for !list.Empty() {
		var oid asn1.ObjectIdentifier
		if !list.ReadASN1ObjectIdentifier(&oid) {
			return false, false
		}
		found = found || oid.Equal(oidServerAuth) || oid.Equal(oidAnyEKU)
	}
	return found, true
}
