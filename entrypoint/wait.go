package entrypoint

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"time"

	"github.com/hashicorp/go-multierror"
	"github.com/konveyor/kai-entrypoint/trust"
)

// waitPoll is how often the wait looks again. mitmproxy writes its CA
// about a second after it starts, and non-atomically.
var waitPoll = 100 * time.Millisecond

// Wait waits, with KAI_WAIT, until every cert source KAI_CERT_DIRS lists
// and every proxy is ready (see waitFor). It never waits with --check, nor
// with problems already found: it returns them (KAI_CA_BUNDLE included,
// when KAI_CERT_DIRS is set), so that a broken configuration fails at once.
// It returns a configuration error on timeout, and ctx.Err() when ctx
// ends first (a signal).
func (p *Plan) Wait(ctx context.Context) error {
	cfg := p.Config
	if cfg.Wait == 0 || p.mode == ModeCheck {
		return nil
	}
	if cfg.CertExplicit {
		p.checkBundlePath()
	}
	if err := p.Err(); err != nil {
		return err
	}
	var wanted []string
	if cfg.CertExplicit {
		wanted = cfg.CertSources
	}
	var err error
	p.waited, err = waitFor(ctx, cfg.Wait, wanted, cfg.Proxies, p.log)
	return err
}

// waitFor waits up to d until every listed cert source is ready (exists,
// every certificate in it parses, at least one) and every proxy accepts a
// TCP connection. A file still being written fails to parse and so is not
// ready yet. It returns the sources as read when everything was ready, or
// on timeout a configuration error listing what was still missing, or
// ctx.Err() when ctx ends first (a signal).
//
// The proxies are dialled directly: net.Dial never reads the proxy
// variables the shim is about to export.
func waitFor(ctx context.Context, d time.Duration, sources []string, proxies []Proxy, log *slog.Logger) (map[string]trust.Source, error) {
	var what []string
	for _, s := range sources {
		what = append(what, "cert source "+s)
	}
	proxies = distinctAddrs(proxies)
	for _, p := range proxies {
		what = append(what, "proxy "+p.HostPort())
	}
	if len(what) == 0 {
		return map[string]trust.Source{}, nil // KAI_WAIT with nothing listed to wait for
	}
	log.Info("waiting for sidecars", "timeout", d.String(), "for", strings.Join(what, ", "))
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	deadline, _ := ctx.Deadline()
	dialer := net.Dialer{Timeout: time.Second}
	results := map[string]trust.Source{}
	lastDialErr := map[string]string{}
	for {
		var missing []error
		for _, s := range sources {
			if r, ok := results[s]; ok && r.Ready() {
				continue
			}
			r := trust.ReadSource(s)
			results[s] = r
			if !r.Ready() {
				missing = append(missing, fmt.Errorf("KAI_CERT_DIRS entry %q: %s", s, notReadyReason(r)))
			}
		}
		for _, p := range proxies {
			c, err := dialer.DialContext(ctx, "tcp", p.HostPort())
			if err != nil {
				reason := dialCause(err)
				// Cut short by the deadline (whose timer in the poller can fire
				// before ctx's own): say why it failed before.
				if !time.Now().Before(deadline) && lastDialErr[p.Var] != "" {
					reason = lastDialErr[p.Var]
				}
				lastDialErr[p.Var] = reason
				missing = append(missing, fmt.Errorf("%s: proxy %s does not accept connections: %v", p.Var, p.HostPort(), reason))
				continue
			}
			c.Close()
		}
		if len(missing) == 0 {
			log.Info("ready after " + time.Since(start).Round(time.Millisecond).String())
			return results, nil
		}
		select {
		case <-ctx.Done():
			if ctx.Err() == context.DeadlineExceeded {
				var errs *multierror.Error
				for _, m := range missing {
					errs = multierror.Append(errs, fmt.Errorf("KAI_WAIT=%s: still not ready: %w", d, m))
				}
				return nil, asConfigError(errs)
			}
			return nil, ctx.Err()
		case <-time.After(waitPoll):
			log.Debug("still waiting", "missing", len(missing))
		}
	}
}

func notReadyReason(r trust.Source) string {
	switch {
	case r.Missing:
		return "does not exist"
	case len(r.Errs) > 0:
		return r.Errs[0].Error()
	}
	return "no certificate yet"
}

// dialCause returns why a dial failed, without the operation and the
// address the message repeats: "connection refused", "no such host",
// "i/o timeout".
func dialCause(err error) string {
	var se *os.SyscallError
	var de *net.DNSError
	var oe *net.OpError
	switch {
	case errors.As(err, &se):
		return se.Err.Error()
	case errors.As(err, &de):
		return de.Err
	case errors.As(err, &oe):
		return oe.Err.Error()
	}
	return err.Error()
}
