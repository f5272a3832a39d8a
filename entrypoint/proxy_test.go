package entrypoint

import (
	"net/url"
	"strings"
	"testing"

	"golang.org/x/net/http/httpproxy"
)

func TestParseProxy(t *testing.T) {
	tests := []struct {
		name, raw    string
		want         string // exported form
		wantRedacted string
		wantErr      string // substring; "" means no error
	}{
		{name: "bare host:port gets http", raw: "proxy.corp:3128", want: "http://proxy.corp:3128"},
		{name: "scheme and host lower-cased", raw: "HTTP://Proxy.CORP:3128", want: "http://proxy.corp:3128"},
		{name: "trailing slash dropped", raw: "http://proxy:8080/", want: "http://proxy:8080"},
		{name: "http default port", raw: "http://proxy", want: "http://proxy:80"},
		{name: "https default port", raw: "https://proxy", want: "https://proxy:443"},
		{name: "socks5 default port", raw: "socks5://proxy", want: "socks5://proxy:1080"},
		{name: "socks5h default port", raw: "socks5h://proxy", want: "socks5h://proxy:1080"},
		{name: "socks4 default port", raw: "socks4://proxy", want: "socks4://proxy:1080"},
		{name: "socks4a default port", raw: "socks4a://proxy", want: "socks4a://proxy:1080"},
		{name: "leading zeros dropped from the port", raw: "http://proxy:0080", want: "http://proxy:80"},
		{name: "ipv4", raw: "10.0.0.1:3128", want: "http://10.0.0.1:3128"},
		{name: "ipv6 keeps brackets", raw: "http://[FD00::1]:3128", want: "http://[fd00::1]:3128"},
		{name: "ipv6 default port", raw: "http://[::1]", want: "http://[::1]:80"},
		{name: "ipv6 zone exported percent-encoded", raw: "http://[FE80::1%25eth0]:3128", want: "http://[fe80::1%25eth0]:3128"},
		{name: "fully qualified name with its dot", raw: "proxy.corp.:3128", want: "http://proxy.corp.:3128"},
		{name: "underscore in a name", raw: "http://my_proxy:3128", want: "http://my_proxy:3128"},
		{name: "credentials kept encoded, all redacted", raw: "http://user:p%40ss%3Aw0rd@proxy:3128",
			want: "http://user:p%40ss%3Aw0rd@proxy:3128", wantRedacted: "http://xxxxx@proxy:3128"},
		{name: "at sign in the user name encoded", raw: "http://us@er:pw@proxy:3128", want: "http://us%40er:pw@proxy:3128", wantRedacted: "http://xxxxx@proxy:3128"},
		{name: "bare token as user name redacted", raw: "http://TOKEN123@proxy:3128", want: "http://TOKEN123@proxy:3128", wantRedacted: "http://xxxxx@proxy:3128"},

		{name: "unsupported scheme", raw: "ftp://proxy:21", wantErr: `KAI_PROXY_HTTPS="ftp://proxy:21": unsupported scheme "ftp"`},
		{name: "missing host", raw: "http://:3128", wantErr: `KAI_PROXY_HTTPS="http://:3128": missing host`},
		{name: "missing host with credentials redacted", raw: "http://u:secret@:3128", wantErr: `KAI_PROXY_HTTPS="http://xxxxx@:3128": missing host`},
		{name: "path", raw: "http://proxy:3128/path", wantErr: `unexpected path "/path"`},
		{name: "query", raw: "http://proxy:3128/?x=1", wantErr: `unexpected query "x=1"`},
		{name: "fragment", raw: "http://proxy:3128#frag", wantErr: `unexpected fragment "frag"`},
		{name: "port out of range", raw: "http://proxy:70000", wantErr: `invalid port "70000"`},
		{name: "port zero", raw: "http://proxy:0", wantErr: `invalid port "0"`},
		{name: "empty port", raw: "http://proxy:", wantErr: "empty port"},
		{name: "port not a number", raw: "http://proxy:abc", wantErr: `KAI_PROXY_HTTPS="http://proxy:abc": not a valid URL`},
		{name: "unparsable keeps password hidden", raw: "http://u:s%zzret@proxy:1", wantErr: `KAI_PROXY_HTTPS="http://xxxxx@proxy:1": not a valid URL`},
		{name: "star as host", raw: "http://*:3128", wantErr: `host "*" is not a DNS name or an IP address`},
		{name: "semicolon in host", raw: "http://proxy;x:3128", wantErr: `host "proxy;x" is not a DNS name or an IP address`},
		{name: "exclamation mark in host", raw: "http://pro!xy:3128", wantErr: `host "pro!xy" is not a DNS name`},
		{name: "empty label", raw: "http://proxy..corp:3128", wantErr: `host "proxy..corp" is not a DNS name`},
		{name: "impossible ipv4", raw: "http://999.999.999.999:3128", wantErr: `host "999.999.999.999" is not a valid IPv4 address`},
		{name: "ipv4 in brackets", raw: "http://[10.0.0.1]:3128", wantErr: `not a valid URL`},
		{name: "non-ascii host names its punycode form", raw: "http://bücher.example:3128", wantErr: `host "bücher.example" is not ASCII: use its punycode form "xn--bcher-kva.example"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := ParseProxy("KAI_PROXY_HTTPS", tt.raw)
			if tt.wantErr != "" {
				if err == nil {
					t.Fatalf("ParseProxy(%q) = %q, want error containing %q", tt.raw, p.String(), tt.wantErr)
				}
				if !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseProxy(%q) error = %q, want it to contain %q", tt.raw, err, tt.wantErr)
				}
				if strings.Contains(err.Error(), "secret") || strings.Contains(err.Error(), "s%zzret") {
					t.Fatalf("error leaks the password: %q", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseProxy(%q): %v", tt.raw, err)
			}
			if got := p.String(); got != tt.want {
				t.Errorf("ParseProxy(%q) = %q, want %q", tt.raw, got, tt.want)
			}
			wantRed := tt.wantRedacted
			if wantRed == "" {
				wantRed = tt.want
			}
			if got := p.Redacted(); got != wantRed {
				t.Errorf("Redacted() = %q, want %q", got, wantRed)
			}
		})
	}
}

// TestParseProxy_NeverPrintsCredentials: in every value below the
// credentials hold a character that moves url.Parse's idea of where they
// end. No error may show any character between "://" and the last '@'.
func TestParseProxy_NeverPrintsCredentials(t *testing.T) {
	tests := []struct {
		name, raw string
		hidden    []string // none may appear in the error
	}{
		{name: "slash in the password", raw: "http://u:Pass/word@proxy:3128", hidden: []string{"Pass", "/word", "u:"}},
		{name: "password parsed as port and path", raw: "http://u:1234/SECRET@proxy:3128", hidden: []string{"1234", "SECRET"}},
		{name: "password parsed as an invalid port", raw: "http://u:99999/x@proxy:3128", hidden: []string{"99999"}},
		{name: "question mark in the password", raw: "http://u:pa?ss@proxy:3128", hidden: []string{"pa?ss", "ss@"}},
		{name: "hash in the password", raw: "http://u:pa#ss@proxy:3128", hidden: []string{"pa#", "ss@"}},
		{name: "hash in the user name", raw: "http://us#er:pw99@proxy:3128", hidden: []string{"us#er", "pw99"}},
		{name: "scheme separator in the password", raw: "http://u:pa://ss99@proxy:3128", hidden: []string{"pa:", "ss99"}},
		{name: "no scheme, scheme separator in the password", raw: "u:pa://ss99@proxy:3128", hidden: []string{"u:pa", "ss99"}},
		{name: "token with a slash", raw: "https://TOK/EN99@proxy:3128", hidden: []string{"TOK", "EN99"}},
		{name: "bad port after credentials", raw: "http://u:pw99@proxy:99999", hidden: []string{"pw99"}},
		{name: "path after credentials", raw: "http://u:pw99@proxy:3128/x", hidden: []string{"pw99"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := ParseProxy("KAI_PROXY_HTTPS", tt.raw)
			if err == nil {
				t.Fatalf("ParseProxy(%q) = %q, want an error", tt.raw, p.Redacted())
			}
			for _, h := range tt.hidden {
				if strings.Contains(err.Error(), h) {
					t.Errorf("error %q shows %q", err, h)
				}
			}
			if !strings.Contains(err.Error(), "xxxxx@") {
				t.Errorf("error %q does not show the redacted value", err)
			}
		})
	}
}

// TestParseProxy_ZoneReachesGo: the exported form of an IPv6 zone is one
// that Go's proxy-variable reader uses, instead of ignoring it and
// connecting directly.
func TestParseProxy_ZoneReachesGo(t *testing.T) {
	p, err := ParseProxy("KAI_PROXY_HTTPS", "http://[fe80::1%25eth0]:3128")
	if err != nil {
		t.Fatal(err)
	}
	proxy := (&httpproxy.Config{HTTPSProxy: p.String()}).ProxyFunc()
	got, err := proxy(&url.URL{Scheme: "https", Host: "llm.example:443"})
	if err != nil || got == nil || got.Host != "[fe80::1%eth0]:3128" {
		t.Fatalf("Go's proxy for HTTPS_PROXY=%s: %v, %v; want host [fe80::1%%eth0]:3128", p.String(), got, err)
	}
}

func TestValidate_TrimsProxyValues(t *testing.T) {
	cfg, err := Settings{ProxyHTTPS: " \tproxy:1 \n"}.Validate(nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Proxies) != 1 || cfg.Proxies[0].String() != "http://proxy:1" {
		t.Fatalf("proxies = %v, want http://proxy:1", cfg.Proxies)
	}
}

func TestRedactURL(t *testing.T) {
	tests := []struct{ in, want string }{
		{in: "http://u:pw@h:1", want: "http://xxxxx@h:1"},
		{in: "u:pw@h:1", want: "xxxxx@h:1"},
		{in: "http://u:p/w?@h:1", want: "http://xxxxx@h:1"},
		{in: "http://u:p@w@h:1", want: "http://xxxxx@h:1"},
		{in: "http://h:1", want: "http://h:1"},
		{in: "http://TOKEN@h:1", want: "http://xxxxx@h:1"},
		{in: "HTTP+x-y.z://u:pw@h", want: "HTTP+x-y.z://xxxxx@h"},
		{in: "u:pa://ss@h:1", want: "xxxxx@h:1"},
		// An @ after a slash may end a password holding an unencoded /: hiding
		// too much is the safe side.
		{in: "http://h:1/a@b", want: "http://xxxxx@b"},
	}
	for _, tt := range tests {
		if got := RedactURL(tt.in); got != tt.want {
			t.Errorf("RedactURL(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestNoProxyList(t *testing.T) {
	tests := []struct {
		name     string
		raw      string
		loopback bool
		want     string
		warnings []string // substrings, one per warning
		errs     []string // substrings, one per error
	}{
		{name: "empty without loopback", raw: "", want: ""},
		{name: "empty with loopback", raw: "", loopback: true, want: "localhost,127.0.0.1,::1"},
		{name: "trimmed, empties dropped", raw: " a.com , ,b.com,", want: "a.com,b.com"},
		{name: "blanks separate entries", raw: "a.com b.com\tc.com,  d.com", want: "a.com,b.com,c.com,d.com"},
		{name: "duplicates case-insensitive, first kept", raw: "A.com,a.com,b.com,B.COM", want: "A.com,b.com"},
		{name: "loopback appended where missing", raw: "llm.internal,LOCALHOST", loopback: true, want: "llm.internal,LOCALHOST,127.0.0.1,::1"},
		{name: "star alone is everything", raw: "*", loopback: true, want: "*"},
		{name: "star among others is everything", raw: "llm.internal,*,10.0.0.0/8", loopback: true, want: "*"},
		{name: "star-dot becomes dot", raw: "*.example.com,llm", want: ".example.com,llm",
			warnings: []string{`KAI_PROXY_NO entry "*.example.com" is exported as ".example.com": only Go reads`}},
		{name: "star-dot and dot forms are one entry", raw: ".example.com,*.example.com", want: ".example.com",
			warnings: []string{`"*.example.com" is exported as ".example.com"`}},
		{name: "cidr kept with a warning", raw: ".corp.example,10.0.0.0/8,fd00::/8", want: ".corp.example,10.0.0.0/8,fd00::/8",
			warnings: []string{"KAI_PROXY_NO holds the IP ranges 10.0.0.0/8, fd00::/8: Go, curl and gRPC honour them, requests and boto3 only for IPv4, but urllib, httpx (so the openai and ollama SDKs) and aiohttp never do"}},
		{name: "scheme is an error", raw: "llm,http://host", want: "llm",
			errs: []string{`KAI_PROXY_NO entry "http://host": a no-proxy entry is a host, a domain (.example.com) or an IP range, without a scheme`}},
		{name: "path is an error", raw: "host/x,10.0.0.0/33", want: "",
			errs: []string{`KAI_PROXY_NO entry "host/x": `, `KAI_PROXY_NO entry "10.0.0.0/33": `}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var extra []string
			if tt.loopback {
				extra = loopbackNoProxy
			}
			got, warnings, errs := NoProxyList("KAI_PROXY_NO", tt.raw, extra)
			if got != tt.want {
				t.Errorf("NoProxyList(%q, %v) = %q, want %q", tt.raw, tt.loopback, got, tt.want)
			}
			if len(warnings) != len(tt.warnings) {
				t.Errorf("warnings = %q, want %d", warnings, len(tt.warnings))
			}
			for i := range min(len(warnings), len(tt.warnings)) {
				if !strings.Contains(warnings[i], tt.warnings[i]) {
					t.Errorf("warning %q, want it to contain %q", warnings[i], tt.warnings[i])
				}
			}
			if len(errs) != len(tt.errs) {
				t.Errorf("errors = %q, want %d", errs, len(tt.errs))
			}
			for i := range min(len(errs), len(tt.errs)) {
				if !strings.Contains(errs[i].Error(), tt.errs[i]) {
					t.Errorf("error %q, want it to contain %q", errs[i], tt.errs[i])
				}
			}
		})
	}
}
