package entrypoint

import (
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
)

// Proxy is one validated KAI_PROXY_* setting.
type Proxy struct {
	Var     string   // the shim's variable, e.g. KAI_PROXY_HTTPS
	Exports []string // the variables it is exported as
	URL     *url.URL // normalised: scheme://[user[:password]@]host:port
}

// String returns the exported form, credentials included.
func (p Proxy) String() string { return proxyString(p.URL, false) }

// Redacted returns the exported form with the password replaced by xxxxx.
func (p Proxy) Redacted() string { return proxyString(p.URL, true) }

// HostPort returns the proxy's host:port, for the wait.
func (p Proxy) HostPort() string { return p.URL.Host }

func proxyString(u *url.URL, redact bool) string {
	var b strings.Builder
	b.WriteString(u.Scheme)
	b.WriteString("://")
	if u.User != nil {
		if pw, ok := u.User.Password(); ok && redact && pw != "" {
			b.WriteString(url.User(u.User.Username()).String())
			b.WriteString(":xxxxx")
		} else {
			b.WriteString(u.User.String())
		}
		b.WriteString("@")
	}
	b.WriteString(u.Host)
	return b.String()
}

// ParseProxy validates and normalises the proxy value of the variable name,
// following what the clients agree on (shared/docs/clients.md):
//   - a bare host:port gets http:// (aiohttp rejects a URL without scheme);
//   - the scheme must be http, https, socks4, socks4a, socks5 or socks5h;
//   - the host must be present; a missing port is made explicit from the
//     scheme, because clients disagree on the default;
//   - a path other than "/", a query or a fragment is an error;
//   - scheme and host are lower-cased, and there is no trailing slash.
//
// Errors name the variable and the value with its password redacted.
func ParseProxy(name, raw string) (Proxy, error) {
	p := Proxy{Var: name}
	for _, pv := range proxyVars {
		if pv.Name == name {
			p.Exports = pv.Exports
		}
	}
	fail := func(why string, args ...any) (Proxy, error) {
		return Proxy{}, fmt.Errorf("%s=%q: %s", name, RedactURL(raw), fmt.Sprintf(why, args...))
	}
	s := raw
	if !strings.Contains(s, "://") {
		s = "http://" + s
	}
	u, err := url.Parse(s)
	if err != nil {
		// url.Error repeats the whole URL, password included: never show it.
		return fail("not a valid URL")
	}
	u.Scheme = strings.ToLower(u.Scheme)
	defPort, ok := proxySchemes[u.Scheme]
	if !ok {
		return fail("unsupported scheme %q (use http, https, socks4, socks4a, socks5 or socks5h)", u.Scheme)
	}
	if u.Opaque != "" {
		return fail("not a valid URL")
	}
	host := strings.ToLower(u.Hostname())
	if host == "" {
		return fail("missing host")
	}
	port := u.Port()
	if port == "" {
		if strings.HasSuffix(u.Host, ":") {
			return fail("empty port")
		}
		port = defPort
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return fail("invalid port %q", port)
	}
	if u.Path != "" && u.Path != "/" {
		return fail("unexpected path %q (a proxy URL is scheme://[user:password@]host:port)", u.Path)
	}
	if u.RawQuery != "" || u.ForceQuery {
		return fail("unexpected query %q", u.RawQuery)
	}
	if u.Fragment != "" || strings.Contains(s, "#") {
		return fail("unexpected fragment %q", u.Fragment)
	}
	p.URL = &url.URL{Scheme: u.Scheme, User: u.User, Host: net.JoinHostPort(host, port)}
	return p, nil
}

// RedactURL hides the password of a URL-like value, even one that does not
// parse: everything between the first ':' after the scheme and the last '@'
// of the authority becomes xxxxx.
func RedactURL(s string) string {
	start := 0
	if i := strings.Index(s, "://"); i >= 0 {
		start = i + 3
	}
	authEnd := len(s)
	if i := strings.IndexAny(s[start:], "/?"); i >= 0 {
		authEnd = start + i
	}
	at := strings.LastIndex(s[start:authEnd], "@")
	if at < 0 {
		// A password holding '/' or '?' ends the authority early; look
		// for an '@' anywhere after the scheme instead.
		at = strings.LastIndex(s[start:], "@")
		if at < 0 {
			return s
		}
	}
	at += start
	colon := strings.Index(s[start:at], ":")
	if colon < 0 {
		return s
	}
	colon += start
	return s[:colon+1] + "xxxxx" + s[at:]
}

// NoProxyList normalises a comma-separated no-proxy list: entries trimmed,
// empty ones dropped, duplicates removed case-insensitively (first kept,
// order kept). With loopback, localhost, 127.0.0.1 and ::1 are appended
// where missing. "*" stays as given.
func NoProxyList(raw string, loopback bool) string {
	var out []string
	seen := map[string]bool{}
	add := func(e string) {
		k := strings.ToLower(e)
		if seen[k] {
			return
		}
		seen[k] = true
		out = append(out, e)
	}
	for _, e := range splitList(raw) {
		add(e)
	}
	if loopback {
		for _, e := range loopbackNoProxy {
			add(e)
		}
	}
	return strings.Join(out, ",")
}

// distinctAddrs keeps the first proxy of each host:port: KAI_PROXY_HTTP and
// KAI_PROXY_HTTPS often name the same one, which is waited for once.
func distinctAddrs(proxies []Proxy) []Proxy {
	var out []Proxy
	seen := map[string]bool{}
	for _, px := range proxies {
		if !seen[px.HostPort()] {
			seen[px.HostPort()] = true
			out = append(out, px)
		}
	}
	return out
}
