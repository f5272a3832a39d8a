package entrypoint

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/go-multierror"
)

// defaultPath is searched when the environment has no PATH, as execvp does.
const defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// Options are Run's inputs besides the settings.
type Options struct {
	Check   bool         // --check: validate and report; no wait, no write, no exec
	Probe   bool         // --probe: as a run (KAI_WAIT too) but no write; the caller execs nothing
	Command []string     // COMMAND [ARG...]; may be empty with Check
	Environ []string     // the inherited environment
	Logger  *slog.Logger // nil discards
}

// Plan is what Run decided: the command to exec with its environment, and
// what went into it, for the log and the --check summary.
type Plan struct {
	Path string   // the resolved command
	Argv []string // argv, argv[0] as given
	Env  []string // the command's environment

	Config      *Config
	Proxies     []Proxy
	NoProxy     string   // the exported no-proxy list, "" when none is exported
	NoProxyFrom string   // where its entries came from, "" when only added ones
	Kubernetes  []string // the cluster's entries added to the no-proxy list
	Passthrough []Passthrough
	Sources     []sourceResult
	Bundle      *Bundle  // nil when no extra CA was found
	CAVars      []string // variables pointed at the bundle
	Warnings    []string
	Waiting     []string // --check: what a run would wait for

	secrets []string // values never to print
}

// Redact replaces every secret value and proxy password in s by xxxxx.
func (p *Plan) Redact(s string) string {
	for _, sec := range p.secrets {
		if sec != "" {
			s = strings.ReplaceAll(s, sec, "xxxxx")
		}
	}
	return s
}

// redactAll redacts each of args, before any quoting can change how a
// secret is spelt.
func (p *Plan) redactAll(args []string) []string {
	out := make([]string, len(args))
	for i, a := range args {
		out[i] = p.Redact(a)
	}
	return out
}

func (p *Plan) warn(log *slog.Logger, msg string) {
	p.Warnings = append(p.Warnings, msg)
	log.Warn(msg)
}

// Run derives the command's environment from the settings and the
// inherited environment: proxies, pass-through variables and secrets, and
// the combined CA bundle, which it writes unless o.Check. With KAI_WAIT it
// first waits for the listed cert sources and the proxies, until ctx ends.
//
// It never changes the process environment and never exits: it returns
// the plan, or every configuration problem at once as a *ConfigError, or a
// *CommandError (127, 126), or ctx.Err(). The plan is returned even with an
// error, for its Redact.
func Run(ctx context.Context, s Settings, o Options) (*Plan, error) {
	log := o.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	p := &Plan{}
	var errs *multierror.Error
	gather := func(err error) {
		var ce *ConfigError
		if errors.As(err, &ce) {
			errs = multierror.Append(errs, ce.errs.Errors...)
		} else if err != nil {
			errs = multierror.Append(errs, err)
		}
	}

	cfg, err := s.Validate(o.Environ)
	gather(err)
	p.Config = cfg
	for _, w := range cfg.Warnings {
		p.warn(log, w)
	}
	pass, err := ReadPassthrough(o.Environ)
	gather(err)
	p.Passthrough = pass
	for _, pt := range pass {
		if pt.Secret {
			p.secrets = append(p.secrets, pt.Value)
		}
	}
	for _, px := range cfg.Proxies {
		p.secrets = append(p.secrets, px.secrets()...)
	}

	inherited := NewEnv(o.Environ)
	env := NewEnv(o.Environ)
	for _, n := range env.Names() {
		if isShimName(n) {
			env.Unset(n)
		}
	}
	gather(p.applyProxies(cfg, inherited, env, log))
	for _, pt := range pass {
		if pt.Name == "PYTHONHTTPSVERIFY" {
			p.warn(log, pt.Var+" is set: PYTHONHTTPSVERIFY has no effect on Python 3 (outside some vendor builds); trust a CA through KAI_CERT_DIRS instead")
		}
	}
	if _, ok := inherited.Get("PYTHONHTTPSVERIFY"); ok {
		p.warn(log, "inherited PYTHONHTTPSVERIFY is set: it has no effect on Python 3 (outside some vendor builds); trust a CA through KAI_CERT_DIRS instead")
	}

	// The command is resolved on the PATH the command will get.
	pathEnv, ok := env.Get("PATH")
	for _, pt := range pass {
		if pt.Name == "PATH" {
			pathEnv, ok = pt.Value, true
		}
	}
	if !ok {
		pathEnv = defaultPath
	}
	var cmdErr error
	if len(o.Command) > 0 {
		p.Argv = append([]string(nil), o.Command...)
		p.Path, cmdErr = LookPath(o.Command[0], pathEnv)
		if cmdErr != nil && (o.Check || errs.ErrorOrNil() != nil) {
			gather(cmdErr) // one more listed problem
			cmdErr = nil
		}
	}

	waiting := cfg.Wait > 0 && !o.Check
	// KAI_CA_BUNDLE is checked before anything is written, alike in --check
	// and in a run, when KAI_CERT_DIRS is set or an extra CA was found.
	sslCertFile, _ := inherited.Get("SSL_CERT_FILE")
	if !waiting {
		p.readSources(cfg, o.Check, gather, log)
	}
	if cfg.CertExplicit || p.hasExtras() {
		gather(checkBundlePath(cfg.CABundle, sslCertFile))
	}
	if err := asConfigError(errs); err != nil {
		return p, err
	}
	if cmdErr != nil {
		return p, cmdErr
	}
	if waiting {
		var wanted []string
		if cfg.CertExplicit {
			wanted = cfg.CertSources
		}
		results, err := waitFor(ctx, cfg.Wait, wanted, cfg.Proxies, log)
		if err != nil {
			return p, err
		}
		p.collectSources(cfg, results, false, gather, log)
		if !cfg.CertExplicit && p.hasExtras() {
			gather(checkBundlePath(cfg.CABundle, sslCertFile))
		}
		if err := asConfigError(errs); err != nil {
			return p, err
		}
	}

	var extras []Cert
	for _, r := range p.Sources {
		extras = append(extras, r.Certs...)
	}
	switch {
	case len(extras) > 0:
		if err := p.makeBundle(cfg, inherited, extras, o.Check || o.Probe, log); err != nil {
			return p, err
		}
	case !o.Check: // --check says it in the summary
		log.Info("no extra CA certificate found in KAI_CERT_DIRS; CA variables left as inherited", "KAI_CERT_DIRS", strings.Join(cfg.CertSources, ","))
	}
	if p.Bundle != nil {
		for _, v := range caVars {
			env.Set(v.Name, cfg.CABundle)
			p.CAVars = append(p.CAVars, v.Name)
		}
	}

	// KAI_ENV_* and KAI_SECRET_* last: the explicit escape hatch wins.
	for _, pt := range pass {
		env.Set(pt.Name, pt.Value)
		if !pt.Secret && isCAVar(pt.Name) && !isRegular(pt.Value) {
			p.warn(log, fmt.Sprintf("%s=%q overrides the CA bundle with a file that does not exist: clients such as requests and httpx will fail", pt.Var, pt.Value))
		}
	}
	p.Env = env.Slice()
	for _, err := range p.checkExec(execLimit()) {
		gather(err)
	}
	if err := asConfigError(errs); err != nil {
		return p, err
	}
	if !o.Check && !o.Probe {
		p.logSummary(log)
	}
	return p, ctx.Err()
}

// applyProxies exports the proxies under both spellings and the no-proxy
// list (see NoProxyList), logging the names of inherited values it changes.
func (p *Plan) applyProxies(cfg *Config, inherited, env *Env, log *slog.Logger) error {
	var replaced []string
	set := func(name, value string) {
		if old, ok := inherited.Get(name); ok && old != value {
			replaced = append(replaced, name)
		}
		env.Set(name, value)
	}
	owned := false // a proxy is set: the shim owns the no-proxy list
	for _, px := range cfg.Proxies {
		p.Proxies = append(p.Proxies, px)
		for _, name := range px.Exports {
			set(name, px.String())
		}
		if px.Var == "KAI_PROXY_OPENAI" {
			p.warn(log, "KAI_PROXY_OPENAI sets OPENAI_PROXY: langchain-openai's ChatOpenAI then builds its own HTTP client that trusts only the certifi bundle (the combined CA bundle is ignored) and sends everything through the proxy regardless of NO_PROXY; without it, the OpenAI client already honours HTTPS_PROXY, NO_PROXY and SSL_CERT_FILE")
		} else {
			owned = true
		}
	}
	var errs *multierror.Error
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
		errs = multierror.Append(errs, bad...)
		for _, w := range warnings {
			p.warn(log, w)
		}
		p.NoProxy, p.NoProxyFrom = list, cfg.ProxyNoFrom
		for _, name := range noProxyExports {
			set(name, p.NoProxy)
		}
	}
	if len(replaced) > 0 {
		log.Info("replacing inherited proxy variables", "names", strings.Join(replaced, ","))
	}
	return asConfigError(errs)
}

// readSources reads every cert source now (no wait).
func (p *Plan) readSources(cfg *Config, check bool, gather func(error), log *slog.Logger) {
	results := map[string]sourceResult{}
	for _, s := range cfg.CertSources {
		if _, ok := results[s]; !ok {
			results[s] = readSource(s)
		}
	}
	// --check with KAI_WAIT: a source that is not ready yet would be waited for.
	lenient := check && cfg.Wait > 0
	p.collectSources(cfg, results, lenient, gather, log)
}

// collectSources turns read sources into problems, warnings and p.Sources.
func (p *Plan) collectSources(cfg *Config, results map[string]sourceResult, lenient bool, gather func(error), log *slog.Logger) {
	done := map[string]bool{}
	for _, s := range cfg.CertSources {
		if done[s] {
			continue
		}
		done[s] = true
		r, ok := results[s]
		if !ok {
			r = readSource(s)
		}
		if lenient && cfg.CertExplicit && !r.ready() {
			p.Waiting = append(p.Waiting, fmt.Sprintf("cert source %s (%s)", s, notReadyReason(r)))
			p.Sources = append(p.Sources, sourceResult{Entry: s, Missing: r.Missing, Files: r.Files}) // nothing used from it
			continue
		}
		switch {
		case r.Missing && cfg.CertExplicit:
			gather(fmt.Errorf("KAI_CERT_DIRS entry %q: no such file or directory", s))
		case r.Missing:
			log.Debug("default cert folder not found; no extra CAs from it", "path", s)
		}
		r.Certs = withoutBundle(r.Certs, cfg.CABundle, log)
		for _, e := range r.Errs {
			gather(e)
		}
		for _, w := range r.Warnings {
			p.warn(log, w)
		}
		// One line per source: a whole mitmproxy confdir has three such
		// files (two .p12 files and the DH parameters).
		if len(r.NoCert) > 0 {
			p.warn(log, fmt.Sprintf("no certificate found in %s, skipped", strings.Join(r.NoCert, ", ")))
		}
		p.Sources = append(p.Sources, r)
	}
	if lenient {
		for _, px := range distinctAddrs(cfg.Proxies) {
			p.Waiting = append(p.Waiting, "proxy "+px.HostPort())
		}
	}
}

// makeBundle builds the combined bundle and, unless check, writes it.
func (p *Plan) makeBundle(cfg *Config, inherited *Env, extras []Cert, check bool, log *slog.Logger) error {
	sysPath, ws := findSystemBundle(inherited, cfg.CABundle, certFiles)
	for _, w := range ws {
		p.warn(log, w)
	}
	if sysPath == "" {
		p.warn(log, "no system CA bundle found (SSL_CERT_FILE unset and none of "+strings.Join(certFiles, ", ")+" exists): the bundle holds only the extra CAs")
	}
	sys, err := readSystemRoots(sysPath)
	if err != nil {
		return asConfigError(multierror.Append(nil, err))
	}
	for _, w := range sys.Warnings {
		p.warn(log, w)
	}
	b := buildBundle(cfg.CABundle, sys, extras)
	t := time.Now()
	for _, c := range append(append([]Cert(nil), b.Extras...), b.InSystem...) {
		for _, issue := range checkCert(c.X509, t) {
			msg := fmt.Sprintf("extra CA %q from %s: %s", c.X509.Subject.String(), c.Source, issue.Text)
			if issue.Warn {
				p.warn(log, msg)
			} else {
				log.Info(msg)
			}
		}
	}
	p.Bundle = b
	if check {
		return nil
	}
	b.Written, err = writeAtomic(cfg.CABundle, b.parts...)
	if err != nil {
		return asConfigError(multierror.Append(nil, err))
	}
	return nil
}

// logSummary logs the handful of lines of a normal start.
func (p *Plan) logSummary(log *slog.Logger) {
	for _, px := range p.Proxies {
		log.Info("proxy", "set", strings.Join(px.Exports, ","), "url", px.Redacted(), "from", px.Var)
	}
	if p.NoProxy != "" {
		log.Info("no proxy", "set", strings.Join(noProxyExports, ","), "hosts", p.NoProxy)
	}
	var envNames, secretNames []string
	for _, pt := range p.Passthrough {
		if pt.Secret {
			secretNames = append(secretNames, pt.Name)
		} else {
			envNames = append(envNames, pt.Name)
		}
	}
	if len(envNames) > 0 {
		log.Info("passing through", "names", strings.Join(envNames, ","))
	}
	if len(secretNames) > 0 {
		log.Info("passing through from secret files", "names", strings.Join(secretNames, ","))
	}
	if b := p.Bundle; b != nil {
		msg := "CA bundle written"
		if !b.Written {
			msg = "CA bundle unchanged"
		}
		log.Info(msg, "path", b.Path, "certificates", b.Total(), "system", b.System, "extra", len(b.Extras),
			"already_in_system", len(b.InSystem), "system_bundle", b.SystemPath)
		log.Debug("CA variables set", "names", strings.Join(p.CAVars, ","))
	}
	if p.Path != "" {
		log.Info("exec", "path", p.Path, "args", fmt.Sprintf("%q", p.redactAll(p.Argv[1:])))
	}
}

func isCAVar(name string) bool {
	for _, v := range caVars {
		if v.Name == name {
			return true
		}
	}
	return false
}

// withoutBundle drops the certificates read from the shim's own bundle,
// when a listed folder holds it: its system roots are not extra CAs.
func withoutBundle(certs []Cert, bundle string, log *slog.Logger) []Cert {
	out := certs[:0:0]
	verdict := map[string]bool{}
	for _, c := range certs {
		own, ok := verdict[c.Source]
		if !ok {
			own = sameFile(c.Source, bundle)
			verdict[c.Source] = own
			if own {
				log.Debug("skipping the shim's own bundle inside KAI_CERT_DIRS", "path", c.Source)
			}
		}
		if !own {
			out = append(out, c)
		}
	}
	return out
}
