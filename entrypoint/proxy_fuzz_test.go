package entrypoint

import (
	"net/url"
	"strings"
	"testing"
)

// marker stands in a password: no error or redacted form may show it.
const marker = "Zq9PASS"

// FuzzParseProxy_Redaction: whatever surrounds a password, neither an
// error nor the redacted form shows it, and the secrets a plan redacts
// cover it in the exported form.
func FuzzParseProxy_Redaction(f *testing.F) {
	for _, s := range [][4]string{
		{"http://", "u", "", "proxy:3128"},
		{"http://", "u", "Pass/word", "proxy:3128"},
		{"http://", "u", "1234/", "proxy:3128"},
		{"http://", "u", "99999/x", "proxy:3128"},
		{"http://", "us#er", "pw", "proxy:3128"},
		{"http://", "us@er", "pw", "proxy:3128"},
		{"http://", "u", "pa://ss", "proxy:3128"},
		{"", "u", "", "proxy"},
		{"socks5h://", "", "%40", "[::1]:1080"},
		{"http://", "u", "?", "proxy:3128/x@y"},
		{"HTTP://", "u", "x", "proxy:0080#"},
	} {
		f.Add(s[0], s[1], s[2], s[3])
	}
	f.Fuzz(func(t *testing.T, pre, user, pass, post string) {
		raw := pre + user + ":" + pass + marker + "@" + post
		p, err := ParseProxy("KAI_PROXY_HTTPS", raw)
		if err != nil {
			if strings.Contains(err.Error(), marker) {
				t.Fatalf("ParseProxy(%q) error shows the password: %q", raw, err)
			}
			return
		}
		if strings.Contains(p.Redacted(), marker) {
			t.Fatalf("Redacted() = %q shows the password", p.Redacted())
		}
		plan := &Plan{secrets: p.secrets()}
		if got := plan.Redact(p.String()); strings.Contains(got, marker) {
			t.Fatalf("the plan's redaction of %q leaves the password: %q", p.String(), got)
		}
	})
}

// FuzzParseProxy_RoundTrip: an exported proxy value parses back to itself
// with Go's url.Parse, and normalising it again changes nothing.
func FuzzParseProxy_RoundTrip(f *testing.F) {
	for _, s := range []string{
		"proxy:3128", "HTTP://Proxy.CORP:0080/", "http://[FE80::1%25eth0]:3128", "socks5h://u:p%40ss@[::1]",
		"http://TOKEN@10.0.0.1", "https://u:p%2Fw@proxy.", "http://a_b-c.d:65535",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		p, err := ParseProxy("KAI_PROXY_HTTPS", raw)
		if err != nil {
			return
		}
		exported := p.String()
		u, err := url.Parse(exported)
		if err != nil {
			t.Fatalf("ParseProxy(%q) exports %q, which url.Parse refuses: %v", raw, exported, err)
		}
		if back := proxyString(u, false); back != exported {
			t.Fatalf("ParseProxy(%q) exports %q, which url.Parse reads as %q", raw, exported, back)
		}
		again, err := ParseProxy("KAI_PROXY_HTTPS", exported)
		if err != nil || again.String() != exported {
			t.Fatalf("ParseProxy(%q) = %q, %v; want it unchanged", exported, again.String(), err)
		}
	})
}

// FuzzNoProxyList_Idempotent: a normalised no-proxy list normalises to
// itself, without errors.
func FuzzNoProxyList_Idempotent(f *testing.F) {
	for _, s := range []string{
		"", "*", "a.com b.com", "*.example.com,.example.com", "10.0.0.0/8,LOCALHOST", "http://x,host/y,llm",
		" , ,a,,A", "[::1],::1,fd00::/8", "*.", "a,*",
	} {
		f.Add(s, true)
		f.Add(s, false)
	}
	f.Fuzz(func(t *testing.T, raw string, loopback bool) {
		var extra []string
		if loopback {
			extra = append(loopbackNoProxy, kubernetesNoProxy...)
		}
		once, _, _ := NoProxyList("KAI_PROXY_NO", raw, extra)
		twice, _, errs := NoProxyList("KAI_PROXY_NO", once, extra)
		if twice != once || len(errs) > 0 {
			t.Fatalf("NoProxyList(%q) = %q, and again %q (errors %v)", raw, once, twice, errs)
		}
	})
}
