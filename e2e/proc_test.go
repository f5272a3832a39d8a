package e2e

import (
	"cmp"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/konveyor/kai-entrypoint/internal/testio"
)

// syncBuffer is a testio.SyncBuffer that can also wait for its contents.
type syncBuffer struct{ testio.SyncBuffer }

// waitFor polls until the output contains want (case-insensitively) or the
// process ends or the timeout passes.
func (b *syncBuffer) waitFor(want string, timeout time.Duration, done <-chan struct{}) bool {
	deadline := time.Now().Add(timeout)
	for {
		if strings.Contains(strings.ToLower(b.String()), strings.ToLower(want)) {
			return true
		}
		select {
		case <-done:
			return strings.Contains(strings.ToLower(b.String()), strings.ToLower(want))
		default:
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// proc is a background process in its own process group, so that stopping
// it also stops whatever it started (curl under the stand-in, for one).
type proc struct {
	name           string
	cmd            *exec.Cmd
	stdout, stderr syncBuffer
	done           chan struct{}
	exitCode       int
	waitErr        error
}

// vars is a child environment. Children never inherit this process's
// environment: the machine presets SSL_CERT_FILE, REQUESTS_CA_BUNDLE and
// friends, which would hide exactly the failures the suite looks for.
type vars map[string]string

func (v vars) list() []string {
	out := make([]string, 0, len(v))
	for k, val := range v {
		out = append(out, k+"="+val)
	}
	sort.Strings(out)
	return out
}

func (v vars) with(kv vars) vars {
	out := vars{}
	for k, val := range v {
		out[k] = val
	}
	for k, val := range kv {
		out[k] = val
	}
	return out
}

// startProc starts argv with env. With merge, stderr goes to the stdout
// buffer too, so that one offset into it marks a point in time.
func startProc(name string, env vars, merge bool, argv ...string) (*proc, error) {
	p := &proc{name: name, done: make(chan struct{})}
	p.cmd = exec.Command(argv[0], argv[1:]...)
	p.cmd.Env = env.list()
	p.cmd.Stdout, p.cmd.Stderr = &p.stdout, &p.stderr
	if merge {
		p.cmd.Stderr = &p.stdout
	}
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	p.cmd.WaitDelay = 2 * time.Second
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	go func() {
		p.waitErr = p.cmd.Wait()
		p.exitCode = p.cmd.ProcessState.ExitCode()
		close(p.done)
	}()
	return p, nil
}

// startT starts a process that is stopped when the test ends. If the test
// failed, its output is logged, unless name is "" (the caller shows it).
func startT(t *testing.T, name string, env vars, argv ...string) *proc {
	t.Helper()
	p, err := startProc(cmp.Or(name, argv[0]), env, false, argv...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		p.stop()
		if t.Failed() && name != "" {
			t.Logf("%s: %q\n--- stdout ---\n%s--- stderr ---\n%s", p.name, argv, p.stdout.String(), p.stderr.String())
		}
	})
	return p
}

// wait waits for the process to exit; false if it is still running after
// timeout.
func (p *proc) wait(timeout time.Duration) bool {
	select {
	case <-p.done:
		return true
	case <-time.After(timeout):
		return false
	}
}

func (p *proc) running() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// stop sends SIGTERM to the process group, then SIGKILL after 5 s. It also
// kills the group when the leader has already exited, in case a child is
// left.
func (p *proc) stop() {
	pgid := p.cmd.Process.Pid
	if p.running() {
		syscall.Kill(-pgid, syscall.SIGTERM)
		if !p.wait(5 * time.Second) {
			syscall.Kill(-pgid, syscall.SIGKILL)
			p.wait(5 * time.Second)
		}
	}
	syscall.Kill(-pgid, syscall.SIGKILL)
}

// startBudget is how long a process may take to get ready. mitmdump
// needs 1-2 s here, but a 2-core machine shared with container builds has
// been seen to run 15 times slower.
const startBudget = 60 * time.Second

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	_, port, err := net.SplitHostPort(ln.Addr().String())
	return port, err
}

// mitm is a running mitmdump.
type mitm struct {
	*proc
	port    string
	confdir string
}

type mitmOpts struct {
	confdir   string   // created if missing; an empty one makes a new CA
	port      string   // "" picks a free one
	proxyauth string   // "user:pass" for --proxyauth
	args      []string // more options, such as --certs or --ignore-hosts
}

// startMitm starts mitmdump on 127.0.0.1. It trusts only the upstream's CA
// for upstream connections, and stamps every proxied request with
// X-Via-Mitm: 1, which the upstream echoes.
func startMitm(o mitmOpts) (*mitm, error) {
	if err := os.MkdirAll(o.confdir, 0o700); err != nil {
		return nil, err
	}
	if o.port == "" {
		var err error
		if o.port, err = freePort(); err != nil {
			return nil, err
		}
	}
	argv := []string{"mitmdump", "--listen-host", "127.0.0.1", "-p", o.port,
		"--set", "confdir=" + o.confdir,
		"--set", "ssl_verify_upstream_trusted_ca=" + S.upstream.caFile,
		"--modify-headers", "/~q/X-Via-Mitm/1"}
	if o.proxyauth != "" {
		argv = append(argv, "--proxyauth", o.proxyauth)
	}
	argv = append(argv, o.args...)
	env := vars{
		"PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
		"HOME": o.confdir,
		"LANG": "C.UTF-8",
		// The flow log is read while mitmdump runs: no block buffering.
		"PYTHONUNBUFFERED": "1",
	}
	p, err := startProc("mitmdump", env, true, argv...)
	if err != nil {
		return nil, fmt.Errorf("%w (Debian package: mitmproxy)", err)
	}
	return &mitm{proc: p, port: o.port, confdir: o.confdir}, nil
}

// waitReady waits until mitmdump's CA certificate file holds a certificate
// that parses (mitmproxy writes it non-atomically) and its port accepts
// connections.
func (m *mitm) waitReady(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		_, caErr := m.caCert()
		var dialErr error
		if caErr == nil {
			var c net.Conn
			if c, dialErr = net.DialTimeout("tcp", m.addr(), time.Second); dialErr == nil {
				c.Close()
				return nil
			}
		}
		if !m.running() {
			return fmt.Errorf("mitmdump exited (code %d) before it was ready:\n%s", m.exitCode, m.log())
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("mitmdump not ready after %s (CA: %v, port: %v):\n%s", timeout, caErr, dialErr, m.log())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (m *mitm) addr() string { return net.JoinHostPort("127.0.0.1", m.port) }

// proxyURL returns the proxy URL for KAI_PROXY_*, with user info if given.
func (m *mitm) proxyURL(user *url.Userinfo) string {
	u := url.URL{Scheme: "http", Host: m.addr(), User: user}
	return u.String()
}

// caCert returns mitmproxy's CA certificate from its confdir.
func (m *mitm) caCert() (*x509.Certificate, error) {
	b, err := os.ReadFile(filepath.Join(m.confdir, "mitmproxy-ca-cert.pem"))
	if err != nil {
		return nil, err
	}
	block, _ := pem.Decode(b)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, errors.New("mitmproxy-ca-cert.pem holds no complete CERTIFICATE block yet")
	}
	return x509.ParseCertificate(block.Bytes)
}

// log returns mitmdump's output so far (its flow log, stderr included).
func (m *mitm) log() string { return m.stdout.String() }

var shared struct {
	once sync.Once
	m    *mitm
	err  error
}

// sharedMitm returns the mitmdump used by the scenarios that need no
// special proxy, started on first use and stopped by TestMain.
func sharedMitm(t *testing.T) *mitm {
	t.Helper()
	shared.once.Do(func() {
		start := time.Now()
		shared.m, shared.err = startMitm(mitmOpts{confdir: filepath.Join(S.dir, "mitmproxy-conf")})
		if shared.err == nil {
			shared.err = shared.m.waitReady(startBudget)
		}
		if shared.err == nil {
			t.Logf("shared mitmdump ready on %s after %s", shared.m.addr(), time.Since(start).Round(time.Millisecond))
		}
	})
	if shared.err != nil {
		t.Fatalf("starting the shared mitmdump: %v", shared.err)
	}
	if !shared.m.running() {
		t.Fatalf("the shared mitmdump has exited (code %d):\n%s", shared.m.exitCode, shared.m.log())
	}
	return shared.m
}

func stopSharedMitm() {
	if shared.m != nil {
		shared.m.stop()
	}
}

// startMitmT starts a mitmdump owned by one test and waits until it is
// ready.
func startMitmT(t *testing.T, o mitmOpts) *mitm {
	t.Helper()
	m, err := startMitm(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		m.stop()
		if t.Failed() {
			t.Logf("mitmdump on %s:\n%s", m.addr(), m.log())
		}
	})
	if err := m.waitReady(startBudget); err != nil {
		t.Fatal(err)
	}
	return m
}
