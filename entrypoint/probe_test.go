package entrypoint

import (
	"bytes"
	"log/slog"
	"net/url"
	"strings"
	"testing"
)

// TestProbeDecide: the proxy step says which proxy Go's rules pick from
// the derived environment and why, and where Python's clients differ.
func TestProbeDecide(t *testing.T) {
	const password = "pr0be-pw"
	tests := []struct {
		name      string
		env       []string
		url       string
		wantProxy bool
		want      string // in the logged line
	}{
		{name: "proxied, the setting named", env: []string{"HTTPS_PROXY=http://proxy.corp:3128", "NO_PROXY=localhost"}, url: "https://llm.example/v1",
			wantProxy: true, want: "through the proxy http://proxy.corp:3128, from KAI_PROXY_HTTPS (HTTPS_PROXY): no NO_PROXY entry matches llm.example"},
		{name: "password never printed", env: []string{"HTTPS_PROXY=http://kai:" + password + "@proxy.corp:3128"}, url: "https://llm.example/",
			wantProxy: true, want: "through the proxy http://xxxxx@proxy.corp:3128"},
		{name: "dotted entry: the domain itself proxied by Go only", env: []string{"HTTPS_PROXY=http://proxy.corp:3128", "NO_PROXY=.corp.example"}, url: "https://corp.example/",
			wantProxy: true, want: "no NO_PROXY entry matches corp.example for Go; requests, urllib, aiohttp and curl would go direct: they read the entry .corp.example as corp.example too"},
		{name: "domain entry bypasses", env: []string{"HTTPS_PROXY=http://proxy.corp:3128", "NO_PROXY=localhost,.corp.example"}, url: "https://llm.corp.example/",
			want: "direct: the NO_PROXY entry .corp.example bypasses the proxy"},
		{name: "IPv4 range: requests agrees, httpx does not", env: []string{"HTTPS_PROXY=http://proxy.corp:3128", "NO_PROXY=10.0.0.0/8"}, url: "https://10.1.2.3/",
			want: "direct: the NO_PROXY entry 10.0.0.0/8 bypasses the proxy; requests and boto3 bypass it too, but httpx (the openai and ollama SDKs), urllib and aiohttp ignore IP ranges and would use the proxy"},
		{name: "IPv6 range: no Python client agrees", env: []string{"HTTPS_PROXY=http://proxy.corp:3128", "NO_PROXY=fd00::/8"}, url: "https://[fd00::1]/",
			want: "none of them matches an IPv6 range"},
		{name: "range and host entry: no difference", env: []string{"HTTPS_PROXY=http://proxy.corp:3128", "NO_PROXY=10.0.0.0/8,10.1.2.3"}, url: "https://10.1.2.3/",
			want: "direct: the NO_PROXY entry 10.0.0.0/8, 10.1.2.3 bypasses the proxy\""},
		{name: "loopback never proxied by Go", env: []string{"HTTPS_PROXY=http://proxy.corp:3128"}, url: "https://127.0.0.2/",
			want: "direct: Go never proxies localhost or a loopback address"},
		{name: "no proxy for the scheme", env: []string{"HTTPS_PROXY=http://proxy.corp:3128"}, url: "http://llm.example/",
			want: "direct: no proxy is set for http:// URLs"},
		{name: "ALL_PROXY alone: Go ignores it", env: []string{"ALL_PROXY=socks5h://proxy.corp:1080"}, url: "https://llm.example/",
			want: "Go ignores ALL_PROXY, but requests, httpx and curl would use socks5h://proxy.corp:1080"},
	}
	px, err := ParseProxy("KAI_PROXY_HTTPS", "http://proxy.corp:3128")
	if err != nil {
		t.Fatal(err)
	}
	px.Exports = []string{"HTTPS_PROXY", "https_proxy"}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			u, _ := url.Parse(tt.url)
			pr := &probe{
				o:   &ProbeOptions{Env: tt.env, Proxies: []Proxy{px}, Redact: strings.NewReplacer(password, "xxxxx").Replace},
				url: u, log: slog.New(slog.NewTextHandler(&out, nil)),
			}
			proxy, ok := pr.decide()
			if !ok || (proxy != nil) != tt.wantProxy {
				t.Errorf("decide() = %v, %v; want a proxy: %v", proxy, ok, tt.wantProxy)
			}
			got := strings.ReplaceAll(out.String(), `\"`, `"`)
			if !strings.Contains(got, tt.want) {
				t.Errorf("logged\n%s\nwant it to hold %q", got, tt.want)
			}
			if strings.Contains(got, password) {
				t.Errorf("the password is in the output:\n%s", got)
			}
		})
	}
}
