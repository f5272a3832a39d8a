package entrypoint

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/konveyor/kai-entrypoint/trust"
)

// WriteSummary writes the --check report: what a run would set, with
// proxy passwords redacted and secret values never shown.
func (p *Plan) WriteSummary(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	pr := func(format string, args ...any) {
		for i, a := range args {
			if s, ok := a.(string); ok {
				args[i] = printable(s)
			}
		}
		fmt.Fprintf(tw, format+"\n", args...)
	}

	pr("kai-entrypoint --check: the configuration is valid")
	pr("")
	if p.Path != "" {
		pr("Command:\t%s", strings.Join(quoteAll(p.redactAll(append([]string{p.Path}, p.Argv[1:]...))), " "))
	} else {
		pr("Command:\t(none given)")
	}

	pr("")
	pr("Proxies:")
	if len(p.Proxies) == 0 && p.NoProxy == "" {
		pr("  (none: no KAI_PROXY_* setting and no inherited proxy variable)")
	}
	for _, px := range p.Proxies {
		pr("  %s\t%s\t(from %s)", strings.Join(px.Exports, ", "), px.Redacted(), px.Var)
	}
	if p.NoProxy != "" {
		from := "added by kai-entrypoint"
		if p.NoProxyFrom != "" {
			from = "from " + p.NoProxyFrom
		}
		pr("  %s\t%s\t(%s)", strings.Join(noProxyExports, ", "), p.NoProxy, from)
	}
	if len(p.Kubernetes) > 0 {
		pr("  (in Kubernetes: %s added, so the cluster's services bypass the proxy)", strings.Join(p.Kubernetes, ", "))
	}

	pr("")
	pr("Passed through:")
	if len(p.Passthrough) == 0 {
		pr("  (none)")
	}
	for _, pt := range p.Passthrough {
		if pt.Secret {
			pr("  %s\tfrom %s\t(secret file %s, value hidden)", pt.Name, pt.Var, pt.Path)
		} else {
			pr("  %s\tfrom %s", pt.Name, pt.Var)
		}
	}

	pr("")
	pr("CA bundle:")
	files := 0
	var srcs []string
	for _, r := range p.Sources {
		files += r.Files
		state := fmt.Sprintf("%d certificates in %d files", len(r.Certs), r.Files)
		if r.Missing {
			state = "not found"
		}
		srcs = append(srcs, fmt.Sprintf("%s (%s)", r.Entry, state))
	}
	pr("  cert sources:\t%s", strings.Join(srcs, ", "))
	for _, wt := range p.Waiting {
		pr("  would wait for:\t%s (KAI_WAIT=%s)", wt, p.Config.Wait)
	}
	b := p.Bundle
	if b == nil && len(p.Waiting) > 0 {
		pr("  no extra CA yet: a run would wait for the above (KAI_WAIT), then build and write the bundle")
	} else if b == nil {
		pr("  no extra CA found: nothing would be written and the CA variables would stay as inherited")
	} else {
		sys := b.SystemPath
		if sys == "" {
			sys = "(none found)"
		}
		pr("  system roots:\t%s (%d certificates)", sys, b.System)
		pr("  extra CAs:\t%d added, %d already in the system bundle, %d duplicates", len(b.Extras), len(b.InSystem), b.Duplicates)
		for _, c := range b.Extras {
			pr("    %s\tsha256:%s\texpires %s\t%s", c.X509.Subject.String(), c.Fingerprint(), c.X509.NotAfter.UTC().Format(time.DateOnly), c.Source)
			for _, is := range trust.Strict(c.X509) {
				pr("      %s", is.Text)
			}
		}
		for _, c := range b.InSystem {
			pr("    %s\tsha256:%s\texpires %s\t%s (already a system root)", c.X509.Subject.String(), c.Fingerprint(), c.X509.NotAfter.UTC().Format(time.DateOnly), c.Source)
			for _, is := range trust.Strict(c.X509) {
				pr("      %s", is.Text)
			}
		}
		pr("  would write:\t%s (%d certificates, %d bytes)", b.Path, b.Total(), b.Size())
		pr("  pointed at it:\t%s", strings.Join(p.CAVars, ", "))
	}
	if j := p.Java; j != nil {
		pr("")
		pr("Java (KAI_JAVA_TRUSTSTORE):")
		if j.Certs > 0 {
			pr("  would write:\t%s (PKCS#12, %d certificates, %d bytes)", j.Store, j.Certs, j.Size)
		} else {
			pr("  no extra CA found: no trust store would be written")
		}
		if len(j.Flags) > 0 {
			pr("  JAVA_TOOL_OPTIONS +=\t%s", p.Redact(strings.Join(j.Flags, " ")))
		}
	}
	if len(p.Warnings) > 0 {
		pr("")
		pr("Warnings:")
		for _, w := range p.Warnings {
			pr("  %s", p.Redact(w))
		}
	}
	return tw.Flush()
}

// printable escapes, Go-style, a string that holds a control character or
// invalid UTF-8, so that input (a certificate subject, a path) can neither
// forge a line nor send escape sequences to a terminal.
func printable(s string) string {
	if utf8.ValidString(s) && strings.IndexFunc(s, func(r rune) bool { return !unicode.IsPrint(r) }) < 0 {
		return s
	}
	q := strconv.Quote(s)
	return q[1 : len(q)-1]
}

func quoteAll(args []string) []string {
	out := make([]string, len(args))
	for i, a := range args {
		out[i] = quote(a)
	}
	return out
}
