package entrypoint

import (
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/konveyor/kai-entrypoint/trust"
)

// Java is what KAI_JAVA_TRUSTSTORE adds for JVMs, which read none of the
// proxy and CA variables (docs/java.md): a PKCS#12 trust store of the
// combined bundle and the system properties, appended to JAVA_TOOL_OPTIONS,
// that point every JVM (Maven too) at it and at the proxies.
type Java struct {
	Store   string   // KAI_JAVA_TRUSTSTORE
	Certs   int      // certificates in the store; 0 when none is written (no extra CA)
	Size    int      // the store's length in bytes
	Written bool     // false when the store already held these bytes
	Flags   []string // the flags appended to JAVA_TOOL_OPTIONS
}

// checkJavaTrustStore validates KAI_JAVA_TRUSTSTORE=raw and returns the
// path, "" when unset. The path goes into JAVA_TOOL_OPTIONS, which the JVM
// splits at blanks. It must not be the bundle, nor a system bundle (a file
// of trust.SystemFiles or the inherited SSL_CERT_FILE), which every other
// client reads as PEM.
func checkJavaTrustStore(raw, caBundle, sslCertFile string) (string, error) {
	path := strings.TrimSpace(raw)
	if path == "" {
		return "", nil
	}
	example := settingTag("JavaTruststore", "example")
	bad := func(why string) (string, error) {
		return "", fmt.Errorf("%s=%q: %s", javaStoreVar, raw, why)
	}
	for _, f := range append(slices.Clone(trust.SystemFiles), sslCertFile) {
		if f != "" && trust.SameFile(path, f) {
			return bad("is the system CA bundle " + f + ", which the shim must not overwrite; set it to a file of its own such as " + example)
		}
	}
	fi, err := os.Stat(path)
	switch {
	case !filepath.IsAbs(path):
		return bad("must be an absolute path, such as " + example)
	case strings.ContainsFunc(path, func(r rune) bool { return r == ' ' || r == '\t' || r == '\n' || r == '\r' }):
		return bad("must not contain blanks: the JVM splits JAVA_TOOL_OPTIONS at them")
	case strings.HasSuffix(path, "/") || (err == nil && fi.IsDir()):
		return bad("names a folder, not a file: set it to a file path such as " + example)
	case trust.SameFile(path, caBundle):
		return bad("is KAI_CA_BUNDLE: the trust store needs a file of its own, such as " + example)
	}
	return path, nil
}

// javaProxyFlags returns the JVM's proxy properties for the proxies and
// the exported no-proxy list: http.proxyHost/Port from the HTTP proxy,
// https.proxyHost/Port from the HTTPS one, each falling back to ALL_PROXY,
// as Python's clients do. Only an http:// proxy fits these properties.
func javaProxyFlags(proxies []Proxy, noProxy string) (flags, warnings []string) {
	byExport := map[string]Proxy{}
	for _, px := range proxies {
		byExport[px.Exports[0]] = px
	}
	warned := map[string]bool{}
	for _, use := range javaProxyProps {
		px, ok := byExport[use.From]
		if !ok {
			px, ok = byExport["ALL_PROXY"]
		}
		if !ok {
			continue
		}
		if px.URL.Scheme != "http" {
			if !warned[px.Var] {
				warnings = append(warnings, fmt.Sprintf("%s is a %s:// proxy: the JVM's proxy properties take an http:// proxy only, so JVMs get no proxy from it", px.Var, px.URL.Scheme))
				warned[px.Var] = true
			}
			continue
		}
		if px.URL.User != nil && !warned[px.Var] {
			warnings = append(warnings, fmt.Sprintf("%s has credentials, which the JVM cannot take from system properties: Java clients and Maven reach the proxy without authenticating (the credentials are not put in JAVA_TOOL_OPTIONS)", px.Var))
			warned[px.Var] = true
		}
		host, port, _ := net.SplitHostPort(px.URL.Host) // normalised: the port is always there
		flags = append(flags, "-D"+use.Prefix+".proxyHost="+host, "-D"+use.Prefix+".proxyPort="+port)
	}
	if len(flags) > 0 && noProxy != "" {
		hosts, dropped := javaNonProxyHosts(noProxy)
		if len(dropped) > 0 {
			warnings = append(warnings, fmt.Sprintf("the no-proxy IP ranges %s are left out of http.nonProxyHosts: the JVM cannot match IP ranges", strings.Join(dropped, ", ")))
		}
		if hosts != "" {
			flags = append(flags, "-Dhttp.nonProxyHosts="+hosts)
		}
	}
	return flags, warnings
}

// javaNonProxyHosts converts the exported no-proxy list (comma-separated,
// see NoProxyList) to http.nonProxyHosts, whose entries are separated by
// "|" and match whole host names, with "*" at either end as a wildcard:
//
//   - → *                      every host
//     .example.com   → *.example.com          its subdomains
//     example.com    → example.com|*.example.com  as curl, Go and Python read it
//     10.1.2.3       → 10.1.2.3
//     ::1            → [::1]                  the JVM matches IPv6 hosts in brackets
//     10.0.0.0/8     → dropped, returned in dropped
func javaNonProxyHosts(list string) (hosts string, dropped []string) {
	var out []string
	for _, e := range strings.Split(list, ",") {
		if _, err := netip.ParsePrefix(e); err == nil {
			dropped = append(dropped, e)
			continue
		}
		ip, err := netip.ParseAddr(e)
		switch {
		case e == "*" || (err == nil && ip.Is4()):
			out = append(out, e)
		case err == nil:
			out = append(out, "["+e+"]")
		case strings.HasPrefix(e, "."):
			out = append(out, "*"+e)
		default:
			out = append(out, e, "*."+e)
		}
	}
	return strings.Join(out, "|"), dropped
}

// javaToolOptions appends flags to the inherited JAVA_TOOL_OPTIONS value,
// which stays in front, less any word equal to one of flags: a shim run
// again under the shim (a nested start) does not repeat its own flags.
func javaToolOptions(inherited string, flags []string) string {
	var words []string
	for _, w := range strings.Fields(inherited) {
		if !slices.Contains(flags, w) {
			words = append(words, w)
		}
	}
	return strings.Join(append(words, flags...), " ")
}

// SetJava writes, with KAI_JAVA_TRUSTSTORE, the trust store from the
// bundle's certificates (when extra CAs were found; only its folder is
// checked with --check and --probe) and appends the store and proxy flags to
// JAVA_TOOL_OPTIONS. It does nothing once a problem was found.
func (p *Plan) SetJava() {
	if p.Config.JavaTrustStore == "" || p.Err() != nil {
		return
	}
	j := &Java{Store: p.Config.JavaTrustStore}
	p.Java = j
	if b := p.Bundle; b != nil {
		store, n, err := b.TrustStore()
		if err == nil && p.mode != ModeExec {
			err = trust.CheckFolder(filepath.Dir(j.Store))
		}
		if err == nil && p.mode == ModeExec {
			j.Written, err = trust.WriteAtomic(j.Store, store)
		}
		if err != nil {
			p.gather(fmt.Errorf("%s=%q: cannot write the Java trust store: %v; set it to a file in a writable folder, such as %s", javaStoreVar, j.Store, err, settingTag("JavaTruststore", "example")))
			return
		}
		j.Certs, j.Size = n, len(store)
		j.Flags = append(j.Flags, "-Djavax.net.ssl.trustStore="+j.Store, "-Djavax.net.ssl.trustStoreType=PKCS12")
	}
	flags, warnings := javaProxyFlags(p.Proxies, p.NoProxy)
	for _, w := range warnings {
		p.warn(w)
	}
	j.Flags = append(j.Flags, flags...)
	if len(j.Flags) == 0 {
		return
	}
	inherited, _ := p.env.Get("JAVA_TOOL_OPTIONS")
	p.env.Set("JAVA_TOOL_OPTIONS", javaToolOptions(inherited, j.Flags))
	for _, pt := range p.Passthrough {
		if pt.Name == "JAVA_TOOL_OPTIONS" {
			p.warn(pt.Var + " replaces JAVA_TOOL_OPTIONS, so JVMs do not get the trust store and proxy flags of " + javaStoreVar + ": " + strings.Join(j.Flags, " "))
		}
	}
}

// logSummary logs the store and the flags of a normal start.
func (j *Java) logSummary(log *slog.Logger) {
	if j.Certs > 0 {
		msg := "Java trust store written"
		if !j.Written {
			msg = "Java trust store unchanged"
		}
		log.Info(msg, "path", j.Store, "certificates", j.Certs)
	}
	if len(j.Flags) > 0 {
		log.Info("JAVA_TOOL_OPTIONS", "appended", strings.Join(j.Flags, " "))
	}
}
