package entrypoint

import (
	"bufio"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"net/textproto"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/go-multierror"
	"github.com/konveyor/kai-entrypoint/trust"
	"golang.org/x/net/http/httpproxy"
)

// DefaultProbeTimeout bounds one --probe URL, every step included.
const DefaultProbeTimeout = 10 * time.Second

// Anchor is one certificate a probe trusts and where it came from.
type Anchor struct {
	Cert *x509.Certificate
	From string // "system root (PATH)" or the extra CA's file
}

// ProbeOptions are Probe's inputs: plain values, no settings.
type ProbeOptions struct {
	URLs    []string
	Env     []string // the derived environment: the proxy variables are read from it
	Proxies []Proxy  // to name the variable a proxy came from
	Anchors []Anchor
	Timeout time.Duration
	SaveDir string              // --probe-save: where an untrusted chain's top certificate goes
	Redact  func(string) string // masks every secret value and proxy password
	Logger  *slog.Logger        // one line (text) or object (JSON) per step
}

// ProbeError counts the probes that failed; each failure was logged.
type ProbeError struct{ Failed, Total int }

func (e *ProbeError) Error() string {
	return fmt.Sprintf("%d of %d probe(s) failed", e.Failed, e.Total)
}

// CheckProbeURL reports a --probe value that is not an http or https URL
// with a host.
func CheckProbeURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Hostname() == "" {
		return fmt.Errorf("--probe %q: want an http:// or https:// URL with a host", RedactURL(raw))
	}
	return nil
}

// Probe tries each URL with the proxy Go's rules pick from o.Env and the
// anchors as the only roots, one step after another, and stops a URL at
// its first failure: the proxy decision, DNS and TCP, the proxy's CONNECT
// answer, the TLS handshake, one GET. It returns a *ProbeError when a
// probe failed, or ctx.Err().
func Probe(ctx context.Context, o ProbeOptions) error {
	pool := x509.NewCertPool()
	from := map[string]string{}
	for _, a := range o.Anchors {
		pool.AddCert(a.Cert)
		if _, ok := from[string(a.Cert.Raw)]; !ok {
			from[string(a.Cert.Raw)] = a.From
		}
	}
	failed := 0
	for _, raw := range o.URLs {
		u, _ := url.Parse(raw) // CheckProbeURL passed
		pctx, cancel := context.WithTimeout(ctx, o.Timeout)
		pr := &probe{o: &o, url: u, pool: pool, from: from,
			log: o.Logger.With("url", RedactURL(raw))}
		if !pr.run(pctx) {
			failed++
		}
		cancel()
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	if failed > 0 {
		return &ProbeError{Failed: failed, Total: len(o.URLs)}
	}
	return nil
}

// probe is one URL being probed.
type probe struct {
	o    *ProbeOptions
	url  *url.URL
	log  *slog.Logger
	pool *x509.CertPool
	from map[string]string // anchor DER → where it came from
}

// ok logs the passed step and returns true.
func (pr *probe) ok(step, msg string, args ...any) bool {
	pr.log.Info(pr.o.Redact(msg), append([]any{"step", step}, args...)...)
	return true
}

// fail logs the failed step and returns false, for the caller to return.
func (pr *probe) fail(step, msg string, args ...any) bool {
	pr.log.Error(pr.o.Redact(msg), append([]any{"step", step}, args...)...)
	return false
}

// why says why a network step failed, in words.
func (pr *probe) why(ctx context.Context, err error) string {
	var ne net.Error
	if ctx.Err() != nil || (errors.As(err, &ne) && ne.Timeout()) {
		return fmt.Sprintf("no answer within %s (the probe's timeout)", pr.o.Timeout)
	}
	return dialCause(err)
}

func (pr *probe) run(ctx context.Context) bool {
	u := pr.url
	target := net.JoinHostPort(u.Hostname(), u.Port())
	if u.Port() == "" {
		target = net.JoinHostPort(u.Hostname(), proxySchemes[u.Scheme]) // http and https: their default ports
	}
	proxy, ok := pr.decide()
	if !ok {
		return false
	}

	dial, what := target, "the server"
	if proxy != nil {
		if proxy.Scheme != "http" {
			return pr.fail("proxy", fmt.Sprintf("the probe speaks only to http:// proxies, not %s:// ones", proxy.Scheme))
		}
		dial, what = proxy.Host, "the proxy"
	}
	conn, ok := pr.connect(ctx, dial, what)
	if !ok {
		return false
	}
	defer conn.Close()
	if d, ok := ctx.Deadline(); ok {
		conn.SetDeadline(d)
	}
	rw := bufio.NewReadWriter(bufio.NewReader(conn), bufio.NewWriter(conn))

	auth := "" // the Proxy-Authorization line
	if proxy != nil && proxy.User != nil {
		pw, _ := proxy.User.Password()
		auth = "Proxy-Authorization: Basic " + base64.StdEncoding.EncodeToString([]byte(proxy.User.Username()+":"+pw)) + "\r\n"
	}
	if u.Scheme == "https" {
		if proxy != nil && !pr.tunnel(ctx, rw, target, auth) {
			return false
		}
		tc, ok := pr.handshake(ctx, conn, rw)
		if !ok {
			return false
		}
		rw = bufio.NewReadWriter(bufio.NewReader(tc), bufio.NewWriter(tc))
		auth = "" // the proxy saw only the tunnel
	}
	return pr.get(ctx, rw, proxy != nil && u.Scheme == "http", auth)
}

// decide picks the proxy for the URL as Go's net/http would from the
// derived environment, logs why, and where Python's clients differ.
func (pr *probe) decide() (*url.URL, bool) {
	env := NewEnv(pr.o.Env)
	get := func(names ...string) string { // upper-case first, empty is unset: Go's rule
		for _, n := range names {
			if v, _ := env.Get(n); v != "" {
				return v
			}
		}
		return ""
	}
	cfg := httpproxy.Config{
		HTTPProxy:  get("HTTP_PROXY", "http_proxy"),
		HTTPSProxy: get("HTTPS_PROXY", "https_proxy"),
		NoProxy:    get("NO_PROXY", "no_proxy"),
	}
	proxy, err := cfg.ProxyFunc()(pr.url)
	if err != nil {
		return nil, pr.fail("proxy", "the proxy variable does not parse: "+err.Error())
	}
	scheme := strings.ToUpper(pr.url.Scheme) + "_PROXY"
	if proxy != nil {
		msg := fmt.Sprintf("through the proxy %s, from %s (%s): no NO_PROXY entry matches %s",
			proxyString(proxy, true), pr.proxyVar(proxy, scheme), scheme, pr.url.Hostname())
		for _, e := range strings.Split(cfg.NoProxy, ",") {
			if e = strings.TrimSpace(e); strings.EqualFold(e, "."+pr.url.Hostname()) {
				msg += fmt.Sprintf(" for Go; requests, urllib, aiohttp and curl would go direct: they read the entry %s as %s too", e, e[1:])
			}
		}
		return proxy, pr.ok("proxy", msg, "proxy", proxyString(proxy, true))
	}
	set := cfg
	set.NoProxy = ""
	if p, _ := set.ProxyFunc()(pr.url); p == nil {
		msg := "direct: Go never proxies localhost or a loopback address"
		if get(scheme, strings.ToLower(scheme)) == "" {
			msg = "direct: no proxy is set for " + pr.url.Scheme + ":// URLs"
			if all := get("ALL_PROXY", "all_proxy"); all != "" {
				msg += fmt.Sprintf("; Go ignores ALL_PROXY, but requests, httpx and curl would use %s", RedactURL(all))
			}
		}
		return nil, pr.ok("proxy", msg, "proxy", "none")
	}
	// Which entries bypass it, each tried alone under Go's rule.
	var hits []string
	cidrOnly := true
	for _, e := range strings.Split(cfg.NoProxy, ",") {
		one := set
		one.NoProxy = e
		if p, _ := one.ProxyFunc()(pr.url); p == nil && strings.TrimSpace(e) != "" {
			hits = append(hits, e)
			_, perr := netip.ParsePrefix(strings.TrimSpace(e))
			cidrOnly = cidrOnly && perr == nil
		}
	}
	msg := fmt.Sprintf("direct: the NO_PROXY entry %s bypasses the proxy", strings.Join(hits, ", "))
	if cidrOnly && len(hits) > 0 {
		msg += "; " + pythonOnRanges(pr.url.Hostname())
	}
	return nil, pr.ok("proxy", msg, "proxy", "none", "bypass", strings.Join(hits, ","))
}

// pythonOnRanges says how Python's clients treat an IP range entry that
// Go matched for host.
func pythonOnRanges(host string) string {
	if a, err := netip.ParseAddr(host); err == nil && a.Is4() {
		return "requests and boto3 bypass it too, but httpx (the openai and ollama SDKs), urllib and aiohttp ignore IP ranges and would use the proxy"
	}
	return "Python's clients (requests, httpx, urllib, aiohttp) would use the proxy: none of them matches an IPv6 range"
}

// proxyVar names the setting the proxy came from.
func (pr *probe) proxyVar(proxy *url.URL, exported string) string {
	for _, px := range pr.o.Proxies {
		if px.String() == proxy.String() && strings.Contains(strings.Join(px.Exports, ","), exported) {
			return px.Var
		}
	}
	return exported
}

// connect resolves the host of addr and opens a TCP connection to it.
func (pr *probe) connect(ctx context.Context, addr, what string) (net.Conn, bool) {
	host, _, _ := net.SplitHostPort(addr)
	if _, err := netip.ParseAddr(host); err != nil {
		ips, err := net.DefaultResolver.LookupHost(ctx, host)
		if err != nil {
			return nil, pr.fail("dns", fmt.Sprintf("cannot resolve %s (%s): %s", host, what, pr.why(ctx, err)))
		}
		pr.ok("dns", fmt.Sprintf("%s resolves to %s", host, strings.Join(ips, ", ")))
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, pr.fail("connect", fmt.Sprintf("cannot connect to %s at %s: %s", what, addr, pr.why(ctx, err)))
	}
	pr.ok("connect", fmt.Sprintf("connected to %s at %s", what, addr), "remote", conn.RemoteAddr().String())
	return conn, true
}

// tunnel asks the proxy for a tunnel to target.
func (pr *probe) tunnel(ctx context.Context, rw *bufio.ReadWriter, target, auth string) bool {
	status, code, err := exchange(rw, "CONNECT "+target+" HTTP/1.1\r\nHost: "+target+"\r\n"+auth)
	if err != nil {
		return pr.fail("proxy-connect", "the proxy did not answer CONNECT "+target+": "+pr.why(ctx, err))
	}
	if code != 200 {
		return pr.fail("proxy-connect", pr.proxyRefused("CONNECT "+target, status, code, auth != ""), "status", code)
	}
	return pr.ok("proxy-connect", "the proxy opened a tunnel to "+target+": "+status, "status", code)
}

// proxyRefused explains a proxy's answer other than success.
func (pr *probe) proxyRefused(what, status string, code int, withCreds bool) string {
	setting := "KAI_PROXY_" + strings.ToUpper(pr.url.Scheme)
	switch {
	case code != 407:
		return fmt.Sprintf("the proxy answered %s with %q", what, status)
	case withCreds:
		return fmt.Sprintf("the proxy answered %s with %q: it refused the credentials; check the user and password in %s", what, status, setting)
	}
	return fmt.Sprintf("the proxy answered %s with %q: the proxy wants credentials: put them in %s as user:password@", what, status, setting)
}

// exchange writes a request head (its lines, without the final empty
// line) and reads the answer's status line and header; the body is not
// read.
func exchange(rw *bufio.ReadWriter, head string) (status string, code int, err error) {
	if _, err = rw.WriteString(head + "\r\n"); err == nil {
		err = rw.Flush()
	}
	if err != nil {
		return "", 0, err
	}
	tp := textproto.NewReader(rw.Reader)
	line, err := tp.ReadLine()
	if err != nil {
		return "", 0, err
	}
	proto, rest, _ := strings.Cut(line, " ")
	code, cerr := strconv.Atoi(rest[:min(3, len(rest))])
	if !strings.HasPrefix(proto, "HTTP/") || cerr != nil {
		return "", 0, fmt.Errorf("not an HTTP answer: %q", line)
	}
	_, err = tp.ReadMIMEHeader()
	return line, code, err
}

// handshake does the TLS handshake and verifies the presented chain
// against the anchors alone.
func (pr *probe) handshake(ctx context.Context, conn net.Conn, rw *bufio.ReadWriter) (*tls.Conn, bool) {
	host := pr.url.Hostname()
	// Verified below against the anchors, to report why it fails.
	tc := tls.Client(bufferedConn{conn, rw.Reader}, &tls.Config{ServerName: host, InsecureSkipVerify: true, NextProtos: []string{"http/1.1"}})
	if err := tc.HandshakeContext(ctx); err != nil {
		return nil, pr.fail("tls", "TLS handshake with "+host+" failed: "+pr.why(ctx, err))
	}
	certs := tc.ConnectionState().PeerCertificates
	// Trusted or not, a chain that strict clients reject fails them too.
	for _, c := range certs {
		for _, issue := range trust.Strict(c) {
			pr.log.Warn(fmt.Sprintf("%q: %s", c.Subject.String(), issue.Text), "step", "strict")
		}
	}
	inter := x509.NewCertPool()
	for _, c := range certs[1:] {
		inter.AddCert(c)
	}
	chains, err := certs[0].Verify(x509.VerifyOptions{DNSName: host, Roots: pr.pool, Intermediates: inter})
	if err != nil {
		return nil, pr.distrust(err, certs)
	}
	root := chains[0][len(chains[0])-1]
	return tc, pr.ok("tls", fmt.Sprintf("verified %s: anchored by %q from %s", host, root.Subject.String(), pr.from[string(root.Raw)]),
		"anchor", pr.from[string(root.Raw)], chainAttr(chains[0]))
}

// bufferedConn reads through the reader that may hold bytes read past the
// proxy's answer.
type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c bufferedConn) Read(b []byte) (int, error) { return c.r.Read(b) }

// distrust logs why the presented chain is not trusted and, for an
// unknown authority, which certificate to trust.
func (pr *probe) distrust(err error, certs []*x509.Certificate) bool {
	top := certs[len(certs)-1]
	var ua x509.UnknownAuthorityError
	var ci x509.CertificateInvalidError
	var he x509.HostnameError
	unknown := errors.As(err, &ua)
	var msg string
	switch {
	case unknown:
		msg = "unknown authority: no certificate in the bundle issued this chain; "
		if trust.SelfSigned(top) {
			msg += fmt.Sprintf("trust its top certificate %q (SHA-256 %s)", top.Subject.String(), fingerprint(top))
		} else {
			msg += fmt.Sprintf("trust the CA it names as issuer, %q, which the server did not send", top.Issuer.String())
		}
	case errors.As(err, &ci) && ci.Reason == x509.Expired:
		word := "expired" // x509.Expired stands for "not yet valid" too
		if time.Now().Before(ci.Cert.NotBefore) {
			word = "not yet valid"
		}
		msg = fmt.Sprintf("%s: the certificate %q is valid from %s to %s", word, ci.Cert.Subject.String(),
			ci.Cert.NotBefore.UTC().Format(time.DateTime), ci.Cert.NotAfter.UTC().Format(time.DateTime))
	case errors.As(err, &he):
		msg = fmt.Sprintf("name mismatch: the certificate is for %s, not %s", strings.Join(hostNames(he.Certificate), ", "), he.Host)
	default:
		msg = "not trusted: " + err.Error()
	}
	pr.fail("tls", msg, chainAttr(certs))
	if unknown && pr.o.SaveDir != "" {
		pr.save(top)
	}
	return false
}

// save writes the top certificate of an untrusted chain into the
// --probe-save folder, named after its subject.
func (pr *probe) save(c *x509.Certificate) {
	if !trust.SelfSigned(c) {
		pr.fail("save", fmt.Sprintf("nothing saved: the server sent no root certificate; ask for the CA %q", c.Issuer.String()))
		return
	}
	name := filepath.Join(pr.o.SaveDir, fileName(c)+".pem")
	err := os.MkdirAll(pr.o.SaveDir, 0o755)
	if err == nil {
		err = os.WriteFile(name, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw}), 0o644)
	}
	if err != nil {
		pr.fail("save", fmt.Sprintf("cannot save %s: %v", name, cause(err)))
		return
	}
	msg := fmt.Sprintf("saved %q as %s: add %s (or the file) to KAI_CERT_DIRS", c.Subject.String(), name, pr.o.SaveDir)
	if !(c.BasicConstraintsValid && c.IsCA) {
		msg += "; it is the server's own self-signed certificate, not a CA: trusting it trusts this one server certificate only"
	}
	pr.log.Warn(msg, "step", "save", "file", name)
}

// get sends one GET without a body and reads the status line: to a
// proxy, the whole URL.
func (pr *probe) get(ctx context.Context, rw *bufio.ReadWriter, viaProxy bool, auth string) bool {
	u := *pr.url
	u.User = nil // never sent
	target := u.RequestURI()
	if viaProxy {
		target = u.String()
	}
	status, code, err := exchange(rw, "GET "+target+" HTTP/1.1\r\nHost: "+u.Host+"\r\nUser-Agent: kai-entrypoint-probe\r\nConnection: close\r\n"+auth)
	if err != nil {
		return pr.fail("http", "no answer to GET: "+pr.why(ctx, err))
	}
	if viaProxy && code == 407 {
		return pr.fail("http", pr.proxyRefused("GET", status, code, auth != ""), "status", code)
	}
	return pr.ok("http", "GET answered "+status, "status", code)
}

// chainAttr is a chain as one attribute: subject, issuer, not-after and
// SHA-256 fingerprint of each certificate, leaf first.
func chainAttr(certs []*x509.Certificate) slog.Attr {
	var group []any
	for i, c := range certs {
		group = append(group, slog.Group(fmt.Sprint(i),
			"subject", c.Subject.String(),
			"issuer", c.Issuer.String(),
			"not_after", c.NotAfter.UTC().Format(time.DateTime),
			"sha256", fingerprint(c)))
	}
	return slog.Group("chain", group...)
}

func fingerprint(c *x509.Certificate) string { return fmt.Sprintf("%x", sha256.Sum256(c.Raw)) }

// hostNames lists the DNS names and IP addresses a certificate is for.
func hostNames(c *x509.Certificate) []string {
	names := append([]string(nil), c.DNSNames...)
	for _, ip := range c.IPAddresses {
		names = append(names, ip.String())
	}
	if len(names) == 0 {
		names = []string{"no name (CN " + c.Subject.CommonName + ")"}
	}
	return names
}

// fileName makes a file name of a certificate's subject: its common name,
// or the whole subject, with every character other than a letter, a
// digit, '.', '-' or '_' made '_'.
func fileName(c *x509.Certificate) string {
	s := c.Subject.CommonName
	if s == "" {
		s = c.Subject.String()
	}
	return strings.Map(func(r rune) rune {
		if r < 128 && (r == '.' || r == '-' || r == '_' || 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9') {
			return r
		}
		return '_'
	}, s)
}

// ProbeAnchors returns the certificates a probe trusts: those of the
// combined bundle, or, with no extra CA, the system roots the bundle
// would have held (where the clients' inherited CA variables point).
func (p *Plan) ProbeAnchors() ([]Anchor, error) {
	var sysPath string
	var sysPEM []byte
	var extras []trust.Cert
	if b := p.Bundle; b != nil { // its system roots as BuildBundle read them
		sysPath, sysPEM, extras = b.SystemPath, b.SystemPEM(), b.Extras
	} else {
		sslCertFile, _ := p.inherited.Get("SSL_CERT_FILE")
		sysPath, _ = trust.FindSystemBundle(sslCertFile, p.Config.CABundle, trust.SystemFiles)
		sys, err := trust.ReadSystemRoots(sysPath)
		if err != nil {
			return nil, asConfigError(multierror.Append(nil, err))
		}
		sysPEM = sys.PEM
	}
	var out []Anchor
	for rest := sysPEM; ; {
		var block *pem.Block
		if block, rest = pem.Decode(rest); block == nil {
			break
		}
		if c, err := x509.ParseCertificate(block.Bytes); err == nil {
			out = append(out, Anchor{Cert: c, From: "system root (" + sysPath + ")"})
		}
	}
	for _, c := range extras {
		out = append(out, Anchor{Cert: c.X509, From: c.Source})
	}
	return out, nil
}
