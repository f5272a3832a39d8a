package trust

import (
	"bytes"
	"crypto/rsa"
	"crypto/x509"
	"encoding/asn1"
	"fmt"
)

// Who rejects a certificate that breaks a rule.
const (
	// Python 3.13 sets OpenSSL's X509_V_FLAG_X509_STRICT in
	// ssl.create_default_context() (https://github.com/python/cpython/issues/107361).
	strictClients = "Python 3.13+ clients (httpx, openai, aiohttp) will reject %s: %s"
	// OpenSSL refuses such a CA as an issuer in any mode (check_ca in
	// crypto/x509/v3_purp.c).
	opensslClients = "OpenSSL-based clients (Python, curl) reject %s: %s"
	rhelPolicy     = "RHEL 9's DEFAULT crypto policy rejects %s: %s"
)

// role is how the rules see a certificate.
type role struct {
	ca         bool // CA:TRUE, or no basicConstraints but keyCertSign
	selfIssued bool // subject equals issuer: the end of a chain
}

// strictRules are the rules OpenSSL 3 applies under X509_V_FLAG_X509_STRICT
// (check_extensions in crypto/x509/x509_vfy.c) that Go's parser lets
// through, then RHEL 9's DEFAULT policy. Duplicate extensions, explicit EC
// curve parameters and differing signature algorithm fields, which strict
// mode also rejects, already fail Go's parse. A rule returns what is wrong,
// or "".
var strictRules = []struct {
	who  string
	rule func(c *x509.Certificate, r role) string
}{
	{strictClients, func(c *x509.Certificate, r role) string {
		return when(r.ca && !c.BasicConstraintsValid, "it has no basicConstraints extension (a CA needs one, marked critical)")
	}},
	{strictClients, func(c *x509.Certificate, r role) string {
		return when(r.ca && c.BasicConstraintsValid && !critical(c, oidBasicConstraints), "its basicConstraints extension is not marked critical")
	}},
	{strictClients, func(c *x509.Certificate, r role) string {
		return when(r.ca && c.KeyUsage == 0, "it has no keyUsage extension (a CA needs one with keyCertSign)")
	}},
	{opensslClients, func(c *x509.Certificate, r role) string {
		return when(r.ca && c.KeyUsage != 0 && c.KeyUsage&x509.KeyUsageCertSign == 0, "its keyUsage lacks keyCertSign")
	}},
	{strictClients, func(c *x509.Certificate, r role) string {
		return when(r.ca && len(c.SubjectKeyId) == 0, "it has no Subject Key Identifier")
	}},
	{strictClients, func(c *x509.Certificate, r role) string {
		return when(!r.selfIssued && len(c.AuthorityKeyId) == 0, "it has no Authority Key Identifier")
	}},
	{strictClients, func(c *x509.Certificate, r role) string {
		return when(r.ca && len(c.Subject.Names) == 0, "its subject is empty")
	}},
	{rhelPolicy, func(c *x509.Certificate, r role) string {
		if k, ok := c.PublicKey.(*rsa.PublicKey); ok && k.N.BitLen() < 2048 {
			return fmt.Sprintf("its RSA key has %d bits (2048 is the minimum)", k.N.BitLen())
		}
		return ""
	}},
	// A self-issued certificate is an anchor: its own signature is not checked.
	{rhelPolicy, func(c *x509.Certificate, r role) string {
		if !r.selfIssued && weakSignatures[c.SignatureAlgorithm] {
			return "it is signed with " + c.SignatureAlgorithm.String()
		}
		return ""
	}},
}

var weakSignatures = map[x509.SignatureAlgorithm]bool{
	x509.MD2WithRSA: true, x509.MD5WithRSA: true, x509.SHA1WithRSA: true, x509.DSAWithSHA1: true, x509.ECDSAWithSHA1: true,
}

var oidBasicConstraints = asn1.ObjectIdentifier{2, 5, 29, 19}

// Strict reports the rules of strict clients that c breaks, one warning per
// rule naming who rejects it. c may be an extra CA or any certificate of a
// chain a server presents: a server certificate without an Authority Key
// Identifier is what mitmproxy before 10.1.2 issues. A self-issued
// certificate that is not a CA (a pinned server certificate) is a whole
// chain, which strict mode leaves alone: only the key size applies to it.
func Strict(c *x509.Certificate) []Issue {
	r := role{
		ca:         c.BasicConstraintsValid && c.IsCA || !c.BasicConstraintsValid && c.KeyUsage&x509.KeyUsageCertSign != 0,
		selfIssued: bytes.Equal(c.RawSubject, c.RawIssuer),
	}
	this := "chains through this CA"
	if !r.ca {
		this = "this certificate"
	}
	var out []Issue
	for _, s := range strictRules {
		if what := s.rule(c, r); what != "" {
			out = append(out, Issue{true, fmt.Sprintf(s.who, this, what)})
		}
	}
	return out
}

func when(broken bool, what string) string {
	if broken {
		return what
	}
	return ""
}

func critical(c *x509.Certificate, oid asn1.ObjectIdentifier) bool {
	for _, e := range c.Extensions {
		if e.Id.Equal(oid) {
			return e.Critical
		}
	}
	return false
}
