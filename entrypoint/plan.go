package entrypoint

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/hashicorp/go-multierror"
	"github.com/konveyor/kai-entrypoint/trust"
)

// Plan is what the shim decides, step by step (see main.go): the command to
// exec with its environment, and what went into it, for the log and the
// --check summary. The steps never change the process environment and never
// exit; every configuration problem they meet is gathered, and Err returns
// them all at once.
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
	Sources     []trust.Source
	Bundle      *trust.Bundle // nil when no extra CA was found
	Java        *Java         // nil without KAI_JAVA_TRUSTSTORE
	CAVars      []string      // variables pointed at the bundle
	Warnings    []string
	Waiting     []string // --check: what a run would wait for

	mode      Mode
	log       *slog.Logger
	inherited *Env // the environment the shim was given
	env       *Env // the command's environment, being built
	waited    map[string]trust.Source
	errs      *multierror.Error // configuration problems
	cmdErr    error             // a command that cannot be run, when nothing else is wrong
	secrets   []string          // values never to print
}

// Mode is what the plan is for.
type Mode int

const (
	ModeExec  Mode = iota // a run: wait, write the files, exec
	ModeCheck             // --check: no wait, no file written
	ModeProbe             // --probe: wait, but no file written and no exec
)

// NewPlan starts a plan from the validated settings and the inherited
// environment, with the settings' own problems. A nil log discards.
func NewPlan(cfg *Config, environ []string, log *slog.Logger, mode Mode) *Plan {
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	p := &Plan{Config: cfg, mode: mode, log: log, inherited: NewEnv(environ), env: NewEnv(environ)}
	p.gather(cfg.err)
	for _, w := range cfg.Warnings {
		p.warn(w)
	}
	for _, px := range cfg.Proxies {
		p.secrets = append(p.secrets, px.secrets()...)
	}
	for _, n := range p.env.Names() {
		if isShimName(n) {
			p.env.Unset(n)
		}
	}
	return p
}

// Err returns every configuration problem as a *ConfigError, else a
// *CommandError (127, 126), else nil.
func (p *Plan) Err() error {
	if err := asConfigError(p.errs); err != nil {
		return err
	}
	return p.cmdErr
}

// gather adds err, or each problem of a *ConfigError, to the plan's problems.
func (p *Plan) gather(err error) {
	var ce *ConfigError
	if errors.As(err, &ce) {
		p.errs = multierror.Append(p.errs, ce.errs.Errors...)
	} else if err != nil {
		p.errs = multierror.Append(p.errs, err)
	}
}

func (p *Plan) warn(msg string) {
	p.Warnings = append(p.Warnings, msg)
	p.log.Warn(msg)
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

// LogSummary logs the handful of lines of a normal start.
func (p *Plan) LogSummary() {
	log := p.log
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
	if p.Java != nil {
		p.Java.logSummary(log)
	}
	if p.Path != "" {
		log.Info("exec", "path", p.Path, "args", fmt.Sprintf("%q", p.redactAll(p.Argv[1:])))
	}
}
