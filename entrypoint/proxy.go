package entrypoint

import (
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/net/idna"
)

// Proxy is one validated KAI_PROXY_* setting or adopted proxy variable.
type Proxy struct {
	Var     string   // where it came from: KAI_PROXY_HTTPS, or "inherited HTTPS_PROXY"
	Exports []string // the variables it is exported as
	URL     *url.URL // normalised: scheme://[user[:password]@]host:port
}

// String returns the exported form, credentials included.
func (p Proxy) String() string { return proxyString(p.URL, false) }

// Redacted returns the exported form with the credentials, user name
// included, replaced by xxxxx.
func (p Proxy) Redacted() string { return proxyString(p.URL, true) }

// HostPort returns the proxy's host:port, for the wait.
func (p Proxy) HostPort() string { return p.URL.Host }

// secrets returns what the proxy's value holds that must never be
// printed: the password, as given and as exported, and a user name that
// stands alone (a token).
func (p Proxy) secrets() []string {
	u := p.URL.User
	if u == nil {
		return nil
	}
	pw, ok := u.Password()
	if !ok {
		pw = u.Username()
	}
	return []string{pw, u.String()}
}

// proxyString writes scheme://[userinfo@]host:port. An IPv6 zone is
// percent-encoded ([fe80::1%25eth0]), the only form url.Parse reads back.
func proxyString(u *url.URL, redact bool) string {
	var b strings.Builder
	b.WriteString(u.Scheme)
	b.WriteString("://")
	if u.User != nil {
		if redact {
			b.WriteString("xxxxx")
		} else {
			b.WriteString(u.User.String())
		}
		b.WriteString("@")
	}
	b.WriteString(strings.Replace(u.Host, "%", "%25", 1))
	return b.String()
}

// ParseProxy validates and normalises the proxy value of the variable name,
// following what the clients agree on:
//   - a bare host:port gets http:// (aiohttp rejects a URL without scheme);
//   - the scheme must be http, https, socks4, socks4a, socks5 or socks5h;
//   - the host must be a DNS name or an IP literal, in ASCII; a missing
//     port is made explicit from the scheme, because clients disagree on
//     the default, and leading zeros are dropped;
//   - a path other than "/", a query or a fragment is an error;
//   - scheme and host are lower-cased, and there is no trailing slash.
//
// Errors name the variable and the value with its credentials redacted.
// Of a value holding credentials they never quote a parsed piece: a
// password with an unencoded '/', '?' or '#' moves the pieces' bounds, so
// a "path" or "port" may be part of the password.
func ParseProxy(name, raw string) (Proxy, error) {
	p := Proxy{Var: name}
	creds := strings.Contains(raw, "@")
	fail := func(why string) (Proxy, error) {
		return Proxy{}, fmt.Errorf("%s=%q: %s", name, RedactURL(raw), why)
	}
	piece := func(what, v string) string {
		if creds {
			return what
		}
		return fmt.Sprintf("%s %q", what, v)
	}
	start := schemeEnd(raw)
	if creds && strings.ContainsAny(raw[start:strings.LastIndex(raw, "@")], "/?#") {
		return fail("the user name or password holds '/', '?' or '#': percent-encode them (%2F, %3F, %23)")
	}
	s := raw
	if start == 0 {
		s = "http://" + s
	}
	u, err := url.Parse(s)
	if err != nil || u.Opaque != "" {
		// url.Error repeats the whole URL, password included: never show it.
		return fail("not a valid URL (a proxy URL is scheme://[user:password@]host:port)")
	}
	u.Scheme = strings.ToLower(u.Scheme)
	defPort, ok := proxySchemes[u.Scheme]
	if !ok {
		return fail(fmt.Sprintf("unsupported scheme %q (use http, https, socks4, socks4a, socks5 or socks5h)", u.Scheme))
	}
	host, err := proxyHost(u)
	if err != nil {
		return fail(err.Error())
	}
	port := u.Port()
	if port == "" {
		if strings.HasSuffix(u.Host, ":") {
			return fail("empty port")
		}
		port = defPort
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 1 || n > 65535 {
		return fail(piece("invalid port", port))
	}
	if u.Path != "" && u.Path != "/" {
		return fail(piece("unexpected path", u.Path) + " (a proxy URL is scheme://[user:password@]host:port)")
	}
	if u.RawQuery != "" || u.ForceQuery {
		return fail(piece("unexpected query", u.RawQuery))
	}
	if u.Fragment != "" || strings.Contains(s, "#") {
		return fail(piece("unexpected fragment", u.Fragment))
	}
	p.URL = &url.URL{Scheme: u.Scheme, User: u.User, Host: net.JoinHostPort(host, strconv.Itoa(n))}
	return p, nil
}

// proxyHost checks u's host and returns it lower-cased: an IPv6 literal in
// brackets (its zone kept as given), an IPv4 address, or a DNS name.
func proxyHost(u *url.URL) (string, error) {
	host := u.Hostname()
	switch {
	case host == "":
		return "", fmt.Errorf("missing host")
	case strings.HasPrefix(u.Host, "["):
		addr, err := netip.ParseAddr(host)
		if err != nil || !addr.Is6() {
			return "", fmt.Errorf("host [%s] is not an IPv6 address", host)
		}
		a, zone, _ := strings.Cut(host, "%")
		if zone != "" {
			zone = "%" + zone
		}
		return strings.ToLower(a) + zone, nil
	}
	for i := 0; i < len(host); i++ {
		if host[i] >= 0x80 {
			if ascii, err := idna.Lookup.ToASCII(host); err == nil {
				return "", fmt.Errorf("host %q is not ASCII: use its punycode form %q", host, ascii)
			}
			return "", fmt.Errorf("host %q is not ASCII and has no punycode form", host)
		}
	}
	host = strings.ToLower(host)
	if strings.Trim(host, "0123456789.") == "" {
		if _, err := netip.ParseAddr(host); err != nil {
			return "", fmt.Errorf("host %q is not a valid IPv4 address", host)
		}
		return host, nil
	}
	for _, label := range strings.Split(strings.TrimSuffix(host, "."), ".") {
		if label == "" || strings.Trim(label, "abcdefghijklmnopqrstuvwxyz0123456789-_") != "" {
			return "", fmt.Errorf("host %q is not a DNS name or an IP address", host)
		}
	}
	return host, nil
}

// schemeEnd returns the index just after the "://" that ends a URL scheme
// at the start of s, or 0 when s does not start with a scheme.
func schemeEnd(s string) int {
	i := strings.Index(s, "://")
	if i <= 0 {
		return 0
	}
	for j, c := range s[:i] {
		letter := 'a' <= c|0x20 && c|0x20 <= 'z'
		if !letter && (j == 0 || !strings.ContainsRune("0123456789+-.", c)) {
			return 0
		}
	}
	return i + 3
}

// RedactURL hides the credentials of a URL-like value, even one that does
// not parse: when it holds an '@', everything between the scheme's "://"
// (or the start) and the last '@' becomes xxxxx. The user name goes too:
// it may be a token, and where a password holds an unencoded ':' or '@'
// no parser can tell where the user name ends.
func RedactURL(s string) string {
	start := schemeEnd(s)
	at := strings.LastIndex(s, "@")
	if at < start {
		return s
	}
	return s[:start] + "xxxxx" + s[at:]
}

// NoProxyList normalises the no-proxy list raw, read from the variable
// name: entries split at commas and blanks, duplicates dropped
// case-insensitively (first kept, order kept) and the extra entries
// appended where missing. The entries are
// made to mean the same to every client:
//   - "*" anywhere makes the list exactly "*": curl, requests and urllib
//     read "*" as "every host" only when it is the whole value;
//   - "*.example.com" becomes ".example.com", with a warning: only Go reads
//     the "*." form, and every client reads ".example.com" as its
//     subdomains;
//   - a CIDR entry is kept with a warning: Go, curl and gRPC honour it,
//     requests and botocore only for IPv4, urllib, httpx and aiohttp not
//     at all;
//   - an entry with a scheme or a path is an error.
func NoProxyList(name, raw string, extra []string) (list string, warnings []string, errs []error) {
	var out, cidrs []string
	seen := map[string]bool{}
	add := func(e string) {
		if k := strings.ToLower(e); !seen[k] {
			seen[k] = true
			out = append(out, e)
		}
	}
	for _, e := range strings.FieldsFunc(raw, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' || r == '\n' }) {
		if e == "*" {
			return "*", nil, nil
		}
		if strings.HasPrefix(e, "*.") {
			warnings = append(warnings, fmt.Sprintf("%s entry %q is exported as %q: only Go reads the \"*.\" form; every client reads the leading dot as \"this domain's subdomains\"", name, e, e[1:]))
			e = e[1:]
		}
		switch {
		case strings.Contains(e, "://"):
			errs = append(errs, fmt.Errorf("%s entry %q: a no-proxy entry is a host, a domain (.example.com) or an IP range, without a scheme", name, e))
			continue
		case strings.Contains(e, "/"):
			if _, err := netip.ParsePrefix(e); err != nil {
				errs = append(errs, fmt.Errorf("%s entry %q: a no-proxy entry is a host, a domain (.example.com) or an IP range (10.0.0.0/8), without a path", name, e))
				continue
			}
			cidrs = append(cidrs, e)
		}
		add(e)
	}
	if len(cidrs) > 0 {
		warnings = append(warnings, fmt.Sprintf("%s holds the IP ranges %s: Go, curl and gRPC honour them, requests and boto3 only for IPv4, but urllib, httpx (so the openai and ollama SDKs) and aiohttp never do: list the hosts or domains too", name, strings.Join(cidrs, ", ")))
	}
	for _, e := range extra {
		add(e)
	}
	return strings.Join(out, ","), warnings, errs
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

// SetProxies exports the proxies under both spellings, and the no-proxy
// list (see NoProxyList) when a proxy or KAI_PROXY_NO is set, logging the
// names of inherited values it changes.
func (p *Plan) SetProxies() {
	var replaced []string
	set := func(name, value string) {
		if old, ok := p.inherited.Get(name); ok && old != value {
			replaced = append(replaced, name)
		}
		p.env.Set(name, value)
	}
	cfg := p.Config
	owned := false // a proxy is set: the shim owns the no-proxy list
	for _, px := range cfg.Proxies {
		p.Proxies = append(p.Proxies, px)
		for _, name := range px.Exports {
			set(name, px.String())
		}
		if px.Var == "KAI_PROXY_OPENAI" {
			p.warn("KAI_PROXY_OPENAI sets OPENAI_PROXY: langchain-openai's ChatOpenAI then builds its own HTTP client that trusts only the certifi bundle (the combined CA bundle is ignored) and sends everything through the proxy regardless of NO_PROXY; without it, the OpenAI client already honours HTTPS_PROXY, NO_PROXY and SSL_CERT_FILE")
		} else {
			owned = true
		}
	}
	if owned || cfg.ProxyNo != "" {
		var extra []string
		if owned {
			extra = loopbackNoProxy
		}
		if h := cfg.KubernetesHost; h != "" {
			p.Kubernetes = append(slices.Clone(kubernetesNoProxy), h)
			extra = append(slices.Clone(extra), p.Kubernetes...)
		}
		list, warnings, bad := NoProxyList(cfg.ProxyNoFrom, cfg.ProxyNo, extra)
		for _, err := range bad {
			p.gather(err)
		}
		for _, w := range warnings {
			p.warn(w)
		}
		p.NoProxy, p.NoProxyFrom = list, cfg.ProxyNoFrom
		for _, name := range noProxyExports {
			set(name, p.NoProxy)
		}
	}
	if len(replaced) > 0 {
		p.log.Info("replacing inherited proxy variables", "names", strings.Join(replaced, ","))
	}
}
