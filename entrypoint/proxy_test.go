package entrypoint

import (
	"strings"
	"testing"
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
		{name: "ipv4", raw: "10.0.0.1:3128", want: "http://10.0.0.1:3128"},
		{name: "ipv6 keeps brackets", raw: "http://[FD00::1]:3128", want: "http://[fd00::1]:3128"},
		{name: "ipv6 default port", raw: "http://[::1]", want: "http://[::1]:80"},
		{name: "credentials kept encoded", raw: "http://user:p%40ss%3Aw0rd@proxy:3128",
			want: "http://user:p%40ss%3Aw0rd@proxy:3128", wantRedacted: "http://user:xxxxx@proxy:3128"},
		{name: "user without password", raw: "http://user@proxy:3128", want: "http://user@proxy:3128", wantRedacted: "http://user@proxy:3128"},
		{name: "surrounding blanks trimmed by caller", raw: "proxy:1", want: "http://proxy:1"},

		{name: "unsupported scheme", raw: "ftp://proxy:21", wantErr: `KAI_PROXY_HTTPS="ftp://proxy:21": unsupported scheme "ftp"`},
		{name: "missing host", raw: "http://:3128", wantErr: `KAI_PROXY_HTTPS="http://:3128": missing host`},
		{name: "missing host with credentials redacted", raw: "http://u:secret@:3128", wantErr: `KAI_PROXY_HTTPS="http://u:xxxxx@:3128": missing host`},
		{name: "path", raw: "http://proxy:3128/path", wantErr: `unexpected path "/path"`},
		{name: "query", raw: "http://proxy:3128/?x=1", wantErr: `unexpected query "x=1"`},
		{name: "fragment", raw: "http://proxy:3128#frag", wantErr: `unexpected fragment "frag"`},
		{name: "port out of range", raw: "http://proxy:70000", wantErr: `invalid port "70000"`},
		{name: "port zero", raw: "http://proxy:0", wantErr: `invalid port "0"`},
		{name: "empty port", raw: "http://proxy:", wantErr: "empty port"},
		{name: "port not a number", raw: "http://proxy:abc", wantErr: `KAI_PROXY_HTTPS="http://proxy:abc": not a valid URL`},
		{name: "unparsable keeps password hidden", raw: "http://u:s%zzret@proxy:1", wantErr: `KAI_PROXY_HTTPS="http://u:xxxxx@proxy:1": not a valid URL`},
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
			if strings.Join(p.Exports, ",") != "HTTPS_PROXY,https_proxy" {
				t.Errorf("Exports = %v", p.Exports)
			}
		})
	}
}

func TestRedactURL(t *testing.T) {
	tests := []struct{ in, want string }{
		{"http://u:pw@h:1", "http://u:xxxxx@h:1"},
		{"u:pw@h:1", "u:xxxxx@h:1"},
		{"http://u:p/w?@h:1", "http://u:xxxxx@h:1"},
		{"http://u:p@w@h:1", "http://u:xxxxx@h:1"},
		{"http://h:1", "http://h:1"},
		{"http://u@h:1", "http://u@h:1"},
		// An @ after a slash may end a password holding an unencoded /: hiding
		// too much is the safe side.
		{"http://h:1/a@b", "http://h:xxxxx@b"},
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
	}{
		{"empty without loopback", "", false, ""},
		{"empty with loopback", "", true, "localhost,127.0.0.1,::1"},
		{"trimmed, empties dropped", " a.com , ,b.com,", false, "a.com,b.com"},
		{"duplicates case-insensitive, first kept", "A.com,a.com,b.com,B.COM", false, "A.com,b.com"},
		{"loopback appended where missing", "llm.internal,LOCALHOST", true, "llm.internal,LOCALHOST,127.0.0.1,::1"},
		{"star kept", "*", true, "*,localhost,127.0.0.1,::1"},
		{"cidr and dot kept", ".corp.example,10.0.0.0/8", false, ".corp.example,10.0.0.0/8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := NoProxyList(tt.raw, tt.loopback); got != tt.want {
				t.Errorf("NoProxyList(%q, %v) = %q, want %q", tt.raw, tt.loopback, got, tt.want)
			}
		})
	}
}
