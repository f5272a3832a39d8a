package entrypoint

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/hashicorp/go-multierror"
	"github.com/konveyor/kai-entrypoint/trust"
)

// ReadSources reads every entry of KAI_CERT_DIRS (those Wait read are
// used as it read them) into p.Sources, with their problems and warnings,
// and checks KAI_CA_BUNDLE when the bundle will be written: when
// KAI_CERT_DIRS is set or an extra CA was found, alike in --check and in a
// run, before anything is written.
func (p *Plan) ReadSources() {
	cfg := p.Config
	// --check with KAI_WAIT: a source that is not ready yet would be waited for.
	lenient := p.mode == ModeCheck && cfg.Wait > 0
	done := map[string]bool{}
	for _, s := range cfg.CertSources {
		if done[s] {
			continue
		}
		done[s] = true
		r, ok := p.waited[s]
		if !ok {
			r = trust.ReadSource(s)
		}
		if lenient && cfg.CertExplicit && !r.Ready() {
			p.Waiting = append(p.Waiting, fmt.Sprintf("cert source %s (%s)", s, notReadyReason(r)))
			p.Sources = append(p.Sources, trust.Source{Entry: s, Missing: r.Missing, Files: r.Files}) // nothing used from it
			continue
		}
		switch {
		case r.Missing && cfg.CertExplicit:
			p.gather(fmt.Errorf("KAI_CERT_DIRS entry %q: no such file or directory", s))
		case r.Missing:
			p.log.Debug("default cert folder not found; no extra CAs from it", "path", s)
		}
		r.Certs = p.withoutBundle(r.Certs)
		for _, e := range r.Errs {
			p.gather(fmt.Errorf("KAI_CERT_DIRS entry %q: %w", s, e))
		}
		for _, w := range r.Warnings {
			p.warn(w)
		}
		// One line per source: a whole mitmproxy confdir has three such
		// files (two .p12 files and the DH parameters).
		if len(r.NoCert) > 0 {
			p.warn(fmt.Sprintf("no certificate found in %s, skipped", strings.Join(r.NoCert, ", ")))
		}
		p.Sources = append(p.Sources, r)
	}
	if lenient {
		for _, px := range distinctAddrs(cfg.Proxies) {
			p.Waiting = append(p.Waiting, "proxy "+px.HostPort())
		}
	}
	checkedByWait := cfg.CertExplicit && p.waited != nil
	if (cfg.CertExplicit || p.hasExtras()) && !checkedByWait {
		p.checkBundlePath()
	}
}

// hasExtras reports whether a cert source gave a certificate: the bundle
// is then written.
func (p *Plan) hasExtras() bool {
	for _, r := range p.Sources {
		if len(r.Certs) > 0 {
			return true
		}
	}
	return false
}

// withoutBundle drops the certificates read from the shim's own bundle,
// when a listed folder holds it: its system roots are not extra CAs.
func (p *Plan) withoutBundle(certs []trust.Cert) []trust.Cert {
	out := certs[:0:0]
	verdict := map[string]bool{}
	for _, c := range certs {
		own, ok := verdict[c.Source]
		if !ok {
			own = trust.SameFile(c.Source, p.Config.CABundle)
			verdict[c.Source] = own
			if own {
				p.log.Debug("skipping the shim's own bundle inside KAI_CERT_DIRS", "path", c.Source)
			}
		}
		if !own {
			out = append(out, c)
		}
	}
	return out
}

// BuildBundle builds the combined bundle from the system roots and the
// extra CAs, warns about extra CAs that may not do what the user expects,
// and, unless --check, writes it. It does nothing when a problem was found
// or no extra CA was: the CA variables are then left as inherited.
func (p *Plan) BuildBundle() {
	var extras []trust.Cert
	for _, r := range p.Sources {
		extras = append(extras, r.Certs...)
	}
	cfg := p.Config
	switch {
	case p.Err() != nil:
		return
	case len(extras) == 0:
		if p.mode != ModeCheck { // --check says it in the summary
			p.log.Info("no extra CA certificate found in KAI_CERT_DIRS; CA variables left as inherited", "KAI_CERT_DIRS", strings.Join(cfg.CertSources, ","))
		}
		return
	}
	sslCertFile, _ := p.inherited.Get("SSL_CERT_FILE")
	sysPath, ws := trust.FindSystemBundle(sslCertFile, cfg.CABundle, trust.SystemFiles)
	for _, w := range ws {
		p.warn(w)
	}
	if sysPath == "" {
		p.warn("no system CA bundle found (SSL_CERT_FILE unset and none of " + strings.Join(trust.SystemFiles, ", ") + " exists): the bundle holds only the extra CAs")
	}
	sys, err := trust.ReadSystemRoots(sysPath)
	if err != nil {
		p.gather(err)
		return
	}
	for _, w := range sys.Warnings {
		p.warn(w)
	}
	b := trust.Build(cfg.CABundle, sys, extras)
	now := time.Now()
	for _, c := range append(append([]trust.Cert(nil), b.Extras...), b.InSystem...) {
		for _, issue := range trust.CheckCert(c.X509, now) {
			msg := fmt.Sprintf("extra CA %q from %s: %s", c.X509.Subject.String(), c.Source, issue.Text)
			if issue.Warn {
				p.warn(msg)
			} else {
				p.log.Info(msg)
			}
		}
	}
	p.Bundle = b
	if p.mode == ModeExec {
		if err := b.Write(); err != nil {
			p.gather(writeError(cfg.CABundle, err))
		}
	}
}

// checkBundlePath gathers, before anything is written, every problem
// writing the bundle to KAI_CA_BUNDLE would meet, so that --check and a run
// agree: a path that names a folder, a system bundle (see below), a folder
// path that is another user's symlink or folder, and a nearest existing
// folder that is a file or not writable (trust.CheckFolder). A relative
// path is Validate's to report.
//
// The path must not be a file of trust.SystemFiles, by path or by
// identity: writing over it would replace the OS bundle and make the extra
// CAs "system" roots at the next start. Nor may it be the existing file of
// the inherited SSL_CERT_FILE unless the shim wrote that file: a nested or
// repeated run, or SSL_CERT_FILE set to the bundle path for `kubectl exec`.
func (p *Plan) checkBundlePath() {
	sslCertFile, _ := p.inherited.Get("SSL_CERT_FILE")
	p.gather(checkBundlePath(p.Config.CABundle, sslCertFile))
}

func checkBundlePath(path, sslCertFile string) error {
	if !filepath.IsAbs(path) {
		return nil
	}
	example := settingTag("CABundle", "default")
	fi, err := os.Stat(path)
	if base := filepath.Base(path); strings.HasSuffix(path, "/") || base == "." || base == ".." || (err == nil && fi.IsDir()) {
		return fmt.Errorf("KAI_CA_BUNDLE=%q: names a folder, not a file: set it to a file path such as %s", path, example)
	}
	var errs *multierror.Error
	system := false
	for _, f := range trust.SystemFiles {
		if trust.SameFile(path, f) {
			system = true
			errs = multierror.Append(errs, fmt.Errorf("KAI_CA_BUNDLE=%q: is the system CA bundle %s, which the shim must not overwrite (its extra CAs would count as system roots at the next start); set it to a file of its own such as %s", path, f, example))
		}
	}
	if !system && sslCertFile != "" && trust.SameFile(path, sslCertFile) && trust.IsRegular(sslCertFile) && !trust.WrittenByShim(sslCertFile) {
		errs = multierror.Append(errs, fmt.Errorf("KAI_CA_BUNDLE=%q: is the inherited SSL_CERT_FILE=%q, a CA bundle kai-entrypoint did not write, which it must not overwrite (it is where the system roots come from); set KAI_CA_BUNDLE to a file of its own such as %s", path, sslCertFile, example))
	}
	if err := trust.CheckFolder(filepath.Dir(path)); err != nil {
		errs = multierror.Append(errs, writeError(path, err))
	}
	return asConfigError(errs)
}

func writeError(path string, err error) error {
	return fmt.Errorf("KAI_CA_BUNDLE=%q: cannot write the CA bundle: %v; set KAI_CA_BUNDLE to a file in a writable folder (for example an emptyDir or tmpfs on /tmp)", path, err)
}
