package trust

import (
	"bytes"
	"crypto/x509"
	"fmt"
	"time"
)

// Issue is a finding about an extra CA that does not stop it from being
// included.
type Issue struct {
	Warn bool // a warning; otherwise a note
	Text string
}

// CheckCert reports why an extra CA may not do what the user expects,
// including the rules of strict clients it breaks (Strict).
func CheckCert(c *x509.Certificate, now time.Time) []Issue {
	var out []Issue
	switch {
	case now.After(c.NotAfter):
		out = append(out, Issue{true, "expired on " + c.NotAfter.UTC().Format(time.DateOnly) + " (still included)"})
	case now.Before(c.NotBefore):
		out = append(out, Issue{true, "not valid before " + c.NotBefore.UTC().Format(time.DateTime) + " UTC (still included)"})
	case c.NotAfter.Sub(now) < 30*24*time.Hour:
		out = append(out, Issue{true, fmt.Sprintf("expires in %d days, on %s", int(c.NotAfter.Sub(now).Hours()/24), c.NotAfter.UTC().Format(time.DateOnly))})
	}
	if !(c.BasicConstraintsValid && c.IsCA) {
		if SelfSigned(c) {
			out = append(out, Issue{false, "not a CA but self-signed: it is trusted as a pinned server certificate"})
		} else {
			out = append(out, Issue{true, "not a CA and not self-signed: it will not help verification (add the CA that issued it)"})
		}
	}
	return append(out, Strict(c)...)
}

// SelfSigned reports whether c is signed by its own key.
func SelfSigned(c *x509.Certificate) bool {
	if !bytes.Equal(c.RawIssuer, c.RawSubject) {
		return false
	}
	return c.CheckSignature(c.SignatureAlgorithm, c.RawTBSCertificate, c.Signature) == nil
}
