package trust

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/konveyor/kai-entrypoint/internal/testpki"
)

func TestCheckCert(t *testing.T) {
	t0 := time.Now().Truncate(time.Second)
	day := 24 * time.Hour
	ca := testpki.GenCA(t, "check root")
	sameName := testpki.Gen(t, testpki.Spec{CN: "same name", CA: true})
	date := func(d time.Time) string { return d.UTC().Format(time.DateOnly) }
	const (
		noteSelfSigned = "not a CA but self-signed: it is trusted as a pinned server certificate"
		warnNotCA      = "not a CA and not self-signed: it will not help verification (add the CA that issued it)"
	)
	tests := []struct {
		name string
		cert *testpki.Cert
		want []Issue
	}{
		{name: "normal CA", cert: ca},
		{name: "intermediate CA", cert: testpki.GenIntermediate(t, "check inter", ca)},
		{name: "expires in 31 days", cert: testpki.Gen(t, testpki.Spec{CN: "x", CA: true, NotAfter: t0.Add(31 * day)})},
		{name: "expired", cert: testpki.Gen(t, testpki.Spec{CN: "x", CA: true, NotBefore: t0.Add(-400 * day), NotAfter: t0.Add(-2 * day)}),
			want: []Issue{{true, "expired on " + date(t0.Add(-2*day)) + " (still included)"}}},
		{name: "not yet valid", cert: testpki.Gen(t, testpki.Spec{CN: "x", CA: true, NotBefore: t0.Add(3 * day), NotAfter: t0.Add(400 * day)}),
			want: []Issue{{true, "not valid before " + t0.Add(3*day).UTC().Format(time.DateTime) + " UTC (still included)"}}},
		{name: "expires in 10 days", cert: testpki.Gen(t, testpki.Spec{CN: "x", CA: true, NotAfter: t0.Add(10 * day)}),
			want: []Issue{{true, "expires in 10 days, on " + date(t0.Add(10*day))}}},
		{name: "expires in 29 days", cert: testpki.Gen(t, testpki.Spec{CN: "x", CA: true, NotAfter: t0.Add(29*day + time.Hour)}),
			want: []Issue{{true, "expires in 29 days, on " + date(t0.Add(29*day+time.Hour))}}},
		{name: "expires in an hour", cert: testpki.Gen(t, testpki.Spec{CN: "x", CA: true, NotAfter: t0.Add(time.Hour)}),
			want: []Issue{{true, "expires in 0 days, on " + date(t0.Add(time.Hour))}}},
		{name: "self-signed, not a CA", cert: testpki.GenSelfSignedLeaf(t, "pinned.example"),
			want: []Issue{{false, noteSelfSigned}}},
		{name: "not a CA, not self-signed", cert: testpki.GenLeaf(t, "server.example", ca),
			want: []Issue{{true, warnNotCA}}},
		{name: "not a CA, issuer name equals subject but another key signed it", cert: testpki.Gen(t, testpki.Spec{CN: "same name", Parent: sameName}),
			want: []Issue{{true, warnNotCA}}},
		{name: "expired self-signed server certificate", cert: testpki.Gen(t, testpki.Spec{CN: "old.example", NotBefore: t0.Add(-400 * day), NotAfter: t0.Add(-day)}),
			want: []Issue{{true, "expired on " + date(t0.Add(-day)) + " (still included)"}, {false, noteSelfSigned}}},
		{name: "expiring leaf", cert: testpki.Gen(t, testpki.Spec{CN: "soon.example", NotAfter: t0.Add(10 * day), Parent: ca}),
			want: []Issue{{true, "expires in 10 days, on " + date(t0.Add(10*day))}, {true, warnNotCA}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := CheckCert(tt.cert.Cert, t0)
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("got  %v\nwant %v", got, tt.want)
			}
		})
	}
}

// TestCheckCert_Helpers checks that the testpki generators make what their
// names say, as CheckCert sees them now.
func TestCheckCert_Helpers(t *testing.T) {
	// Read before the certificates are made, and truncated as x509 truncates
	// their times: genExpiring's d then ends no earlier than now+d.
	now := time.Now().Truncate(time.Second)
	for _, tt := range []struct {
		name string
		cert *testpki.Cert
		want string // substring of the only issue; "" for none
	}{
		{name: "genCA", cert: testpki.GenCA(t, "h")},
		{name: "genExpired", cert: testpki.GenExpired(t, "h"), want: "expired on"},
		{name: "genNotYetValid", cert: testpki.GenNotYetValid(t, "h"), want: "not valid before"},
		{name: "genExpiring 10 days", cert: testpki.GenExpiring(t, "h", 10*24*time.Hour), want: "expires in 10 days"},
		{name: "genSelfSignedLeaf", cert: testpki.GenSelfSignedLeaf(t, "h"), want: "not a CA but self-signed"},
		{name: "genLeaf", cert: testpki.GenLeaf(t, "h", testpki.GenCA(t, "i")), want: "not a CA and not self-signed"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := CheckCert(tt.cert.Cert, now)
			if tt.want == "" && len(got) != 0 || tt.want != "" && (len(got) != 1 || !strings.Contains(got[0].Text, tt.want)) {
				t.Errorf("got %v, want %q", got, tt.want)
			}
		})
	}
}

func TestCertFingerprint(t *testing.T) {
	ca := testpki.GenCA(t, "fp")
	sum := ca.Sum()
	c := Cert{X509: ca.Cert, Sum: sum}
	if want := fmt.Sprintf("%x", sum[:])[:16]; c.Fingerprint() != want {
		t.Errorf("Fingerprint() = %s, want %s", c.Fingerprint(), want)
	}
}
