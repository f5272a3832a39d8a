package entrypoint

import (
	"bytes"
	"strings"
	"testing"

	"github.com/konveyor/kai-entrypoint/internal/testpki"
)

// TestBuildBundleStrict: an extra CA that strict clients reject is still
// included, with one warning naming the file, the subject, the rule and
// who rejects it, in a run and in --check, whose summary also lists the
// finding under the CA; a compliant CA gets none.
func TestBuildBundleStrict(t *testing.T) {
	old := testpki.Gen(t, testpki.Spec{CN: "Old Corp CA", CA: true, NoSKI: true})
	good := testpki.GenCA(t, "Good Corp CA")
	const finding = "Python 3.13+ clients (httpx, openai, aiohttp) will reject chains through this CA: it has no Subject Key Identifier"
	for _, check := range []bool{false, true} {
		c := runCase{check: check, env: map[string]string{"KAI_CERT_DIRS": "$DIR/certs"},
			files: map[string]string{"certs/old.pem": string(old.PEM()), "certs/good.pem": string(good.PEM())}}
		p, err := c.run(t)
		if err != nil {
			t.Fatalf("check=%v: %v", check, err)
		}
		if len(p.Bundle.Extras) != 2 {
			t.Errorf("check=%v: %d extra CAs in the bundle, want both", check, len(p.Bundle.Extras))
		}
		var got []string
		for _, w := range p.Warnings {
			if strings.Contains(w, "Corp CA") {
				got = append(got, w)
			}
		}
		want := `extra CA "CN=Old Corp CA,O=kai-entrypoint tests" from ` + p.Bundle.Extras[1].Source + ": " + finding
		if len(got) != 1 || got[0] != want || !strings.HasSuffix(p.Bundle.Extras[1].Source, "/certs/old.pem") {
			t.Errorf("check=%v: warnings about the CAs %q\nwant only %q", check, got, want)
		}
		if !check {
			continue
		}
		var out bytes.Buffer
		if err := p.WriteSummary(&out); err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(out.String(), "\n")
		for i, l := range lines {
			switch {
			case strings.HasPrefix(l, "    CN=Old Corp CA") && (i+1 == len(lines) || lines[i+1] != "      "+finding):
				t.Errorf("--check: no finding under %q:\n%s", l, out.String())
			case strings.HasPrefix(l, "    CN=Good Corp CA") && strings.HasPrefix(lines[i+1], "      "):
				t.Errorf("--check: a finding under the compliant CA:\n%s", out.String())
			}
		}
		if !strings.Contains(out.String(), "    CN=Old Corp CA") {
			t.Errorf("--check lists no Old Corp CA:\n%s", out.String())
		}
	}
}
