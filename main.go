// Go 1.23+ refuses certificates with a negative serial number, which
// OpenSSL and so the Python clients still accept: do not refuse a CA that
// every client would trust.
//go:debug x509negativeserial=1

// Command kai-entrypoint derives the proxy and CA environment of the Kai
// server and execs it. See README.md and kai-entrypoint --help.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/konveyor/kai-entrypoint/entrypoint"
)

// version is set with -ldflags "-X main.version=...".
var version string

func main() {
	os.Exit(run(os.Args[1:], os.Environ(), os.Stdout, os.Stderr))
}

// run parses the command line, plans, and execs; it returns an exit code
// only when it does not exec.
func run(args, environ []string, stdout, stderr io.Writer) int {
	f, command, done, err := parseArgs(args, stdout)
	if err != nil {
		// The settings are not validated yet: only the log format is read,
		// and an invalid one means text.
		format, _ := entrypoint.NewEnv(environ).Get("KAI_ENTRYPOINT_LOG_FORMAT")
		log := entrypoint.NewLogger(stderr, strings.ToLower(strings.TrimSpace(format)), slog.LevelInfo)
		log.Error(err.Error(), "usage", shortUsage)
		return entrypoint.ExitUsage
	}
	if done {
		return 0
	}

	cfg, _ := entrypoint.LoadSettings().Validate(environ) // its problems are the plan's
	log := entrypoint.NewLogger(stderr, cfg.LogFormat, cfg.LogLevel)

	ctx, signalled := watchSignals(cfg.Wait > 0 && !f.check, log)

	// The steps, as README.md's "How it works" tells them. Each gathers the
	// problems it finds; once there are any, nothing is waited for or written.
	plan := entrypoint.NewPlan(cfg, environ, log, f.mode())
	plan.SetProxies()
	plan.PassThrough()
	err = plan.Wait(ctx)
	if err == nil {
		plan.ReadSources()
		plan.BuildBundle()
		plan.SetJava()
		plan.SetEnvironment()
		plan.ResolveCommand(command)
		err = plan.Err()
	}
	if code := signalled(); code >= 0 {
		return code
	}
	if err != nil {
		report(log, plan, err)
		return entrypoint.ExitCode(err)
	}
	if f.check {
		if err := plan.WriteSummary(stdout); err != nil {
			return 1
		}
		return 0
	}
	if len(f.probes) > 0 {
		err = probe(ctx, plan, f, entrypoint.NewLogger(stdout, cfg.LogFormat, slog.LevelInfo))
		if code := signalled(); code >= 0 {
			return code
		}
		if err != nil {
			report(log, plan, err)
		}
		return entrypoint.ExitCode(err)
	}
	plan.LogSummary()
	if code := signalled(); code >= 0 {
		return code
	}
	err = entrypoint.Exec(plan)
	report(log, plan, err)
	return entrypoint.ExitCode(err)
}

// watchSignals makes a signal before the exec end the shim with 128+N:
// signalled returns that code once a signal came, else -1, and ctx ends at
// a signal during a wait.
//
// Outside PID 1 the kernel's default action already does that (the shim
// dies of the signal, which shells, Docker and Kubernetes report as 128+N),
// so the handler, whose extra OS thread costs about 0.7 ms of a 5 ms start
// (BenchmarkStartup), is installed only where the default falls short: as
// PID 1, where the kernel ignores the signal and the Go runtime then exits
// 2, and during a KAI_WAIT, which should end at once with 128+N. Handlers
// (unlike ignored signals) are reset by execve, so the command starts with
// default dispositions.
func watchSignals(waiting bool, log *slog.Logger) (ctx context.Context, signalled func() int) {
	sigs := make(chan os.Signal, 1)
	var got atomic.Value
	if waiting || os.Getpid() == 1 {
		signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	}
	ctx = context.Background()
	if waiting {
		var cancel context.CancelFunc
		ctx, cancel = context.WithCancel(ctx)
		go func() {
			s := <-sigs
			got.Store(s)
			cancel()
		}()
	}
	return ctx, func() int {
		select {
		case s := <-sigs:
			got.Store(s)
		default:
		}
		if s, ok := got.Load().(syscall.Signal); ok {
			log.Error(strings.ToUpper(unix(s)) + " received before exec; exiting")
			return entrypoint.ExitSignalBase + int(s)
		}
		return -1
	}
}

// flags are the shim's own command-line flags.
type flags struct {
	check        bool
	probes       []string      // --probe URL, repeatable
	probeSave    string        // --probe-save DIR
	probeTimeout time.Duration // --probe-timeout DURATION
}

// parseArgs takes the shim's flags, which come only before the command.
// done means --help or --version was answered; err is a usage error.
func parseArgs(args []string, stdout io.Writer) (f flags, command []string, done bool, err error) {
	f.probeTimeout = entrypoint.DefaultProbeTimeout
	var errs []error
	timeoutSet := false
	i := 0
	// value returns the value of the flag at i, the next argument.
	value := func() (string, bool) {
		if i+1 >= len(args) {
			errs = append(errs, fmt.Errorf("%s needs a value", args[i]))
			return "", false
		}
		i++
		return args[i], true
	}
loop:
	for ; i < len(args); i++ {
		switch a := args[i]; a {
		case "--":
			command = args[i+1:]
			break loop
		case "--check":
			f.check = true
		case "--probe":
			if u, ok := value(); ok {
				errs = append(errs, entrypoint.CheckProbeURL(u))
				f.probes = append(f.probes, u)
			}
		case "--probe-save":
			f.probeSave, _ = value()
		case "--probe-timeout":
			v, ok := value()
			d, perr := time.ParseDuration(v)
			if ok && (perr != nil || d <= 0) {
				errs = append(errs, fmt.Errorf("--probe-timeout %q: want a positive duration such as 10s", v))
			}
			f.probeTimeout, timeoutSet = d, true
		case "--help", "-h":
			entrypoint.WriteUsage(stdout)
			return flags{}, nil, true, nil
		case "--version":
			fmt.Fprintln(stdout, "kai-entrypoint", entrypoint.Version(version))
			return flags{}, nil, true, nil
		default:
			if strings.HasPrefix(a, "-") {
				return flags{}, nil, false, fmt.Errorf("unknown flag %q (the command goes after the flags, or after --)", a)
			}
			command = args[i:]
			break loop
		}
	}
	switch {
	case f.check && len(f.probes) > 0:
		errs = append(errs, errors.New("--check and --probe do not go together: --probe already validates as a run would"))
	case len(f.probes) == 0 && (f.probeSave != "" || timeoutSet):
		errs = append(errs, errors.New("--probe-save and --probe-timeout go with --probe URL"))
	case len(command) == 0 && !f.check && len(f.probes) == 0:
		errs = append(errs, errors.New("no command given"))
	}
	if err := errors.Join(errs...); err != nil {
		return flags{}, nil, false, err
	}
	return f, command, false, nil
}

// probe probes every --probe URL with the plan's proxies and trust, and
// logs each step on log.
func probe(ctx context.Context, plan *entrypoint.Plan, f flags, log *slog.Logger) error {
	anchors, err := plan.ProbeAnchors()
	if err != nil {
		return err
	}
	return entrypoint.Probe(ctx, entrypoint.ProbeOptions{
		URLs: f.probes, Env: plan.Env, Proxies: plan.Proxies, Anchors: anchors,
		Timeout: f.probeTimeout, SaveDir: f.probeSave, Redact: plan.Redact, Logger: log,
	})
}

// mode is what the flags ask of the plan.
func (f flags) mode() entrypoint.Mode {
	switch {
	case f.check:
		return entrypoint.ModeCheck
	case len(f.probes) > 0:
		return entrypoint.ModeProbe
	}
	return entrypoint.ModeExec
}

// shortUsage goes with a usage error.
const shortUsage = "kai-entrypoint [--check | --probe URL...] [--] COMMAND [ARG...]   (kai-entrypoint --help for more)"

// report prints err: every configuration problem on its own line.
func report(log interface {
	Error(string, ...any)
}, plan *entrypoint.Plan, err error) {
	var lines []string
	if ce, ok := err.(*entrypoint.ConfigError); ok {
		lines = ce.Problems()
		log.Error(fmt.Sprintf("configuration error: %d problem(s); nothing was started", len(lines)))
	} else {
		lines = []string{err.Error()}
	}
	for _, l := range lines {
		if plan != nil {
			l = plan.Redact(l)
		}
		log.Error(l)
	}
}

func unix(s syscall.Signal) string {
	switch s {
	case syscall.SIGTERM:
		return "sigterm"
	case syscall.SIGINT:
		return "sigint"
	}
	return s.String()
}
