package main

// Black-box tests: the binary is built once and run as a user would, with
// an explicit environment (never this process's: this machine pre-sets
// SSL_CERT_FILE and friends, which would hide failures).

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/konveyor/kai-entrypoint/internal/testio"
	"github.com/konveyor/kai-entrypoint/internal/testpki"
)

var shim string // the built binary

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "kai-entrypoint-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	shim = filepath.Join(dir, "kai-entrypoint")
	build := exec.Command("go", "build", "-trimpath", "-ldflags", "-X main.version=test-1.2.3", "-o", shim, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building kai-entrypoint: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// result is one run of the shim.
type result struct {
	code           int
	stdout, stderr string // stderr with slog's \" unquoted, for matching
	rawStderr      string
	pid            int
}

// baseEnv is the clean environment every run starts from. KAI_CERT_DIRS
// comes last, so that baseEnv(dir)[:3] leaves it at its default.
func baseEnv(dir string) []string {
	os.MkdirAll(dir+"/certs", 0o755)
	return []string{"PATH=/usr/local/bin:/usr/bin:/bin", "HOME=" + dir, "KAI_CA_BUNDLE=" + dir + "/out/ca-bundle.pem", "KAI_CERT_DIRS=" + dir + "/certs"}
}

func runShim(t *testing.T, env []string, args ...string) result {
	t.Helper()
	cmd := exec.Command(shim, args...)
	cmd.Env = env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	err := cmd.Wait()
	// slog's text format quotes messages; unquote for matching.
	r := result{stdout: stdout.String(), stderr: strings.ReplaceAll(stderr.String(), `\"`, `"`), rawStderr: stderr.String(), pid: pid}
	if ee, ok := err.(*exec.ExitError); ok {
		r.code = ee.ExitCode()
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			r.code = 128 + int(ws.Signal())
		}
	} else if err != nil {
		t.Fatal(err)
	}
	return r
}

// writeCA writes a fresh CA certificate as PEM, with its private key in
// the same file (as mitmproxy-ca.pem has it) when withKey.
func writeCA(t *testing.T, path, cn string, withKey bool) []byte {
	t.Helper()
	ca, err := testpki.NewCA(cn)
	if err != nil {
		t.Fatal(err)
	}
	var out []byte
	if withKey {
		out = ca.KeyPEM()
	}
	out = append(out, ca.PEM...)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, out, 0o644); err != nil {
		t.Fatal(err)
	}
	return out
}

func envOf(stdout string) map[string]string {
	m := map[string]string{}
	for _, l := range strings.Split(stdout, "\n") {
		if k, v, ok := strings.Cut(l, "="); ok {
			m[k] = v
		}
	}
	return m
}

const (
	secretValue   = "tok-5ecr3t-value"
	proxyPassword = "p@ss:w0rd/9"
	proxyEncoded  = "p%40ss%3Aw0rd%2F9"
)

// TestDerivedEnvironmentArrives runs a real command through the shim and
// checks what it receives, and that it runs under the shim's PID.
func TestDerivedEnvironmentArrives(t *testing.T) {
	dir := t.TempDir()
	writeCA(t, dir+"/certs/corp/ca.pem", "Black Box CA", true)
	os.WriteFile(dir+"/token", []byte(secretValue+"\n"), 0o600)
	env := append(baseEnv(dir),
		"KAI_PROXY_HTTPS=user:"+proxyEncoded+"@Proxy.Example:3128",
		"KAI_PROXY_NO=llm.internal",
		"KAI_ENV_FOO=bar baz",
		"KAI_SECRET_API_TOKEN="+dir+"/token",
		"KAI__LOG_LEVEL=debug",
		"SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt",
		"REQUESTS_CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt",
	)
	r := runShim(t, env, "--", "/bin/sh", "-c", `echo "PID=$$"; env`)
	if r.code != 0 {
		t.Fatalf("exit %d\nstderr:\n%s", r.code, r.stderr)
	}
	got := envOf(r.stdout)
	bundle := dir + "/out/ca-bundle.pem"
	want := map[string]string{
		"PID":                strconv.Itoa(r.pid),
		"HTTPS_PROXY":        "http://user:" + proxyEncoded + "@proxy.example:3128",
		"https_proxy":        "http://user:" + proxyEncoded + "@proxy.example:3128",
		"NO_PROXY":           "llm.internal,localhost,127.0.0.1,::1",
		"no_grpc_proxy":      "llm.internal,localhost,127.0.0.1,::1",
		"FOO":                "bar baz",
		"API_TOKEN":          secretValue,
		"KAI__LOG_LEVEL":     "debug",
		"SSL_CERT_FILE":      bundle,
		"REQUESTS_CA_BUNDLE": bundle,
		"AWS_CA_BUNDLE":      bundle,
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s=%q, want %q", k, got[k], v)
		}
	}
	for k := range got {
		if strings.HasPrefix(k, "KAI_") && !strings.HasPrefix(k, "KAI__") {
			t.Errorf("the command sees the shim's variable %s", k)
		}
	}
	b, err := os.ReadFile(bundle)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(b, []byte("PRIVATE KEY")) {
		t.Error("the bundle holds a private key")
	}
	if n := bytes.Count(b, []byte("-----BEGIN CERTIFICATE-----")); n < 2 {
		t.Errorf("bundle has %d certificates, want the system roots plus one", n)
	}
	if !strings.Contains(r.stderr, "kai-entrypoint: ") || !strings.Contains(r.stderr, `msg=exec path=/bin/sh`) {
		t.Errorf("stderr lacks the prefixed summary:\n%s", r.stderr)
	}
}

// TestNearMissPassedThrough: a near miss of a shim's name gets one warning
// and reaches the command unchanged; Kai's own KAI_ variables get neither.
func TestNearMissPassedThrough(t *testing.T) {
	dir := t.TempDir()
	kai := map[string]string{"KAI_CERT_DIR": dir + "/ca.pem", "KAI_DB_DSN": "postgres://kai@db/kai", "KAI_LLM_PARAMS": `{"model":"m"}`, "KAI__LOG_LEVEL": "debug"}
	env := baseEnv(dir)
	for k, v := range kai {
		env = append(env, k+"="+v)
	}
	r := runShim(t, env, "/bin/sh", "-c", "env")
	if r.code != 0 {
		t.Fatalf("exit %d\n%s", r.code, r.stderr)
	}
	got := envOf(r.stdout)
	for k, v := range kai {
		if got[k] != v {
			t.Errorf("the command got %s=%q, want %q", k, got[k], v)
		}
	}
	var warnings []string
	for _, l := range strings.Split(r.stderr, "\n") {
		if strings.Contains(l, "level=WARN") {
			warnings = append(warnings, l)
		}
	}
	want := `kai-entrypoint: level=WARN msg="KAI_CERT_DIR is not a kai-entrypoint variable (did you mean KAI_CERT_DIRS?); passed through to the command unchanged"`
	if len(warnings) != 1 || warnings[0] != want {
		t.Errorf("warnings:\n%s\nwant only:\n%s", strings.Join(warnings, "\n"), want)
	}
}

// TestArgumentsPassedUntouched checks that flags after the command belong
// to the command.
func TestArgumentsPassedUntouched(t *testing.T) {
	dir := t.TempDir()
	for _, args := range [][]string{
		{"/bin/sh", "-c", `printf '%s|' "$@"`, "sh", "--help", "-c", "--", "--check"},
		{"--", "/bin/sh", "-c", `printf '%s|' "$@"`, "sh", "--help", "-c", "--", "--check"},
	} {
		r := runShim(t, baseEnv(dir), args...)
		if r.code != 0 || r.stdout != "--help|-c|--|--check|" {
			t.Errorf("args %q: exit %d, stdout %q, stderr %s", args, r.code, r.stdout, r.stderr)
		}
	}
}

func TestExitCodes(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(dir+"/noexec.sh", []byte("#!/bin/sh\necho hi\n"), 0o644)
	os.WriteFile(dir+"/badinterp.sh", []byte("#!/nonexistent/interpreter\n"), 0o755)
	os.MkdirAll(dir+"/bin", 0o755)
	os.MkdirAll(dir+"/certs", 0o755)
	os.WriteFile(dir+"/bin/my-tool", []byte("#!/bin/sh\necho my-tool ran\n"), 0o755)
	tests := []struct {
		name     string
		env      []string
		args     []string
		wantCode int
		stdout   string // substring
		stderr   string // substring
	}{
		{name: "no command", wantCode: 64, stderr: "no command given"},
		{name: "only --", args: []string{"--"}, wantCode: 64, stderr: "no command given"},
		{name: "unknown flag", args: []string{"--chek", "true"}, wantCode: 64, stderr: `unknown flag "--chek"`},
		{name: "usage error, invalid log format", env: []string{"KAI_ENTRYPOINT_LOG_FORMAT=xml"}, args: []string{"--chek", "true"}, wantCode: 64,
			stderr: `kai-entrypoint: level=ERROR msg="unknown flag "--chek" (the command goes after the flags, or after --)" usage="kai-entrypoint [--check | --probe URL...] [--] COMMAND [ARG...]   (kai-entrypoint --help for more)"` + "\n"},
		{name: "help", args: []string{"--help"}, wantCode: 0, stdout: "KAI_SECRET_<NAME>"},
		{name: "version", args: []string{"--version"}, wantCode: 0, stdout: "kai-entrypoint test-1.2.3"},
		{name: "command exit code", args: []string{"/bin/sh", "-c", "exit 3"}, wantCode: 3},
		{name: "bad configuration", env: []string{"KAI_PROXY_HTTP=ftp://x"}, args: []string{"true"}, wantCode: 78, stderr: `KAI_PROXY_HTTP="ftp://x": unsupported scheme`},
		{name: "not found", args: []string{"no-such-command-kai"}, wantCode: 127, stderr: "command no-such-command-kai: not found in PATH="},
		{name: "not found absolute", args: []string{dir + "/missing"}, wantCode: 127, stderr: "no such file or directory"},
		{name: "not executable", args: []string{dir + "/noexec.sh"}, wantCode: 126, stderr: "permission denied"},
		{name: "directory", args: []string{dir}, wantCode: 126, stderr: "is a directory"},
		{name: "missing interpreter", args: []string{dir + "/badinterp.sh"}, wantCode: 127, stderr: "#! interpreter"},
		{name: "found through KAI_ENV_PATH", env: []string{"KAI_ENV_PATH=" + dir + "/bin:/usr/bin:/bin"}, args: []string{"my-tool"}, wantCode: 0, stdout: "my-tool ran"},
		{name: "check valid without command", args: []string{"--check"}, wantCode: 0, stdout: "the configuration is valid"},
		{name: "check valid with command", env: []string{"KAI_ENV_PATH=" + dir + "/bin"}, args: []string{"--check", "my-tool", "--flag"}, wantCode: 0, stdout: "Command:  " + dir + "/bin/my-tool --flag\n"},
		{name: "check invalid", env: []string{"KAI_WAIT=later"}, args: []string{"--check"}, wantCode: 78, stderr: `KAI_WAIT="later": not a duration`},
		{name: "check with missing command", args: []string{"--check", "no-such-command-kai"}, wantCode: 78, stderr: "command no-such-command-kai: not found"},
		{name: "check does not wait", env: []string{"KAI_WAIT=1h", "KAI_PROXY_HTTPS=127.0.0.1:1"}, args: []string{"--check"}, wantCode: 0, stdout: "would wait for:  proxy 127.0.0.1:1 (KAI_WAIT=1h0m0s)"},
		{name: "check bundle path /", env: []string{"KAI_CA_BUNDLE=/"}, args: []string{"--check"}, wantCode: 78, stderr: `KAI_CA_BUNDLE="/": names a folder, not a file: set it to a file path such as /tmp/kai-entrypoint/ca-bundle.pem`},
		{name: "run bundle path /", env: []string{"KAI_CA_BUNDLE=/"}, args: []string{"true"}, wantCode: 78, stderr: `KAI_CA_BUNDLE="/": names a folder, not a file: set it to a file path such as /tmp/kai-entrypoint/ca-bundle.pem`},
		{name: "check bundle path under a file", env: []string{"KAI_CA_BUNDLE=" + dir + "/noexec.sh/ca.pem"}, args: []string{"--check"}, wantCode: 78, stderr: "cannot write the CA bundle: " + dir + "/noexec.sh: not a directory"},
		{name: "run bundle path under a file", env: []string{"KAI_CA_BUNDLE=" + dir + "/noexec.sh/ca.pem"}, args: []string{"true"}, wantCode: 78, stderr: "cannot write the CA bundle: " + dir + "/noexec.sh: not a directory"},
		{name: "probe without URL", args: []string{"--probe"}, wantCode: 64, stderr: "--probe needs a value"},
		{name: "probe not a web URL", args: []string{"--probe", "ftp://u:pw@llm.example/"}, wantCode: 64, stderr: `--probe "ftp://xxxxx@llm.example/": want an http:// or https:// URL with a host`},
		{name: "probe with check", args: []string{"--check", "--probe", "http://llm.example/"}, wantCode: 64, stderr: "--check and --probe do not go together"},
		{name: "probe-save without probe", args: []string{"--probe-save", dir, "true"}, wantCode: 64, stderr: "--probe-save and --probe-timeout go with --probe URL"},
		{name: "probe-timeout not a duration", args: []string{"--probe", "http://llm.example/", "--probe-timeout", "soon"}, wantCode: 64, stderr: `--probe-timeout "soon": want a positive duration such as 10s`},
		{name: "probe invalid configuration", env: []string{"KAI_WAIT=later"}, args: []string{"--probe", "http://llm.example/"}, wantCode: 78, stderr: `KAI_WAIT="later": not a duration`},
		{name: "probe waits first", env: []string{"KAI_WAIT=300ms", "KAI_PROXY_HTTP=127.0.0.1:1"}, args: []string{"--probe", "http://llm.example/"}, wantCode: 78, stderr: "KAI_WAIT=300ms: still not ready"},
		{name: "probe fails", args: []string{"--probe", "http://127.0.0.1:1/"}, wantCode: 69, stdout: "cannot connect to the server at 127.0.0.1:1: connection refused"},
		// --check only: on a shim that did not refuse it, a run would overwrite the system bundle.
		{name: "check bundle path is the system bundle", env: []string{"KAI_CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt"}, args: []string{"--check"}, wantCode: 78,
			stderr: `KAI_CA_BUNDLE="/etc/ssl/certs/ca-certificates.crt": is the system CA bundle /etc/ssl/certs/ca-certificates.crt, which the shim must not overwrite`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := runShim(t, append(baseEnv(dir), tt.env...), tt.args...)
			if r.code != tt.wantCode {
				t.Errorf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", r.code, tt.wantCode, r.stdout, r.stderr)
			}
			if !strings.Contains(r.stdout, tt.stdout) {
				t.Errorf("stdout lacks %q:\n%s", tt.stdout, r.stdout)
			}
			if !strings.Contains(r.stderr, tt.stderr) {
				t.Errorf("stderr lacks %q:\n%s", tt.stderr, r.stderr)
			}
		})
	}
}

// TestHelpListsEveryVariable keeps --help complete.
func TestHelpListsEveryVariable(t *testing.T) {
	r := runShim(t, nil, "--help")
	for _, v := range []string{"KAI_PROXY_HTTP", "KAI_PROXY_HTTPS", "KAI_PROXY_ALL", "KAI_PROXY_NO", "KAI_PROXY_OPENAI",
		"KAI_CERT_DIRS", "KAI_CA_BUNDLE", "KAI_WAIT", "KAI_ENTRYPOINT_LOG_LEVEL", "KAI_ENTRYPOINT_LOG_FORMAT",
		"KAI_ENV_<NAME>", "KAI_SECRET_<NAME>"} {
		if !strings.Contains(r.stdout, "  "+v+"\n") && !strings.Contains(r.stdout, "  "+v+"=") {
			t.Errorf("--help does not describe %s", v)
		}
		if !strings.Contains(r.stdout, "e.g.  "+strings.TrimSuffix(v, "<NAME>")) {
			t.Errorf("--help has no example for %s", v)
		}
	}
}

// TestOneReportListsEveryProblem: several bad variables, one report.
func TestOneReportListsEveryProblem(t *testing.T) {
	dir := t.TempDir()
	env := append(baseEnv(dir),
		"KAI_PROXY_HTTP=ftp://proxy",
		"KAI_PROXY_HTTPS=http://u:"+proxyEncoded+"@:3128",
		"KAI_PROXY_HTTP_S=x",
		"KAI_ENV_BAD-NAME=1",
		"KAI_SECRET_TOKEN="+dir+"/missing",
		"KAI_ENTRYPOINT_LOG_LEVEL=loud",
	)
	os.Remove(dir + "/certs") // listed in KAI_CERT_DIRS: one more problem
	r := runShim(t, env, "true")
	if r.code != 78 {
		t.Fatalf("exit %d, want 78\n%s", r.code, r.stderr)
	}
	want := []string{
		`KAI_PROXY_HTTP="ftp://proxy": unsupported scheme "ftp"`,
		`KAI_PROXY_HTTPS="http://xxxxx@:3128": missing host`,
		`KAI_PROXY_HTTP_S: unknown variable`,
		`KAI_ENV_BAD-NAME: "BAD-NAME" is not a valid variable name`,
		`KAI_SECRET_TOKEN="` + dir + `/missing": no such file or directory`,
		`KAI_ENTRYPOINT_LOG_LEVEL="loud"`,
		`KAI_CERT_DIRS entry "` + dir + `/certs": no such file or directory`,
	}
	lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
	if !strings.Contains(lines[0], "configuration error: 7 problem(s)") {
		t.Errorf("first line %q does not announce 7 problems", lines[0])
	}
	for _, w := range want {
		n := 0
		for _, l := range lines {
			if strings.Contains(l, w) {
				n++
			}
		}
		if n != 1 {
			t.Errorf("%d lines name %s, want 1:\n%s", n, w, r.stderr)
		}
	}
	if len(lines) != len(want)+1 {
		t.Errorf("%d lines, want %d:\n%s", len(lines), len(want)+1, r.stderr)
	}
}

// TestNoSecretPrinted runs every mode and checks that neither the secret
// file's value nor the proxy password appears anywhere.
func TestNoSecretPrinted(t *testing.T) {
	dir := t.TempDir()
	writeCA(t, dir+"/certs/ca.pem", "Secret Test CA", true)
	os.WriteFile(dir+"/token", []byte(secretValue), 0o600)
	base := append(baseEnv(dir),
		"KAI_PROXY_HTTPS=http://user:"+proxyEncoded+"@proxy.example:3128",
		"KAI_PROXY_HTTP=http://user:"+proxyEncoded+"@proxy.example:3128",
		"KAI_PROXY_OPENAI=http://user:"+proxyEncoded+"@proxy.example:3128",
		"KAI_SECRET_OPENAI_API_KEY="+dir+"/token",
		"KAI_ENV_PYTHONHTTPSVERIFY=0",
	)
	modes := []struct {
		name string
		env  []string
		args []string
	}{
		{name: "run", args: []string{"/bin/true", "--token", secretValue}},
		{name: "run debug text", env: []string{"KAI_ENTRYPOINT_LOG_LEVEL=debug"}, args: []string{"/bin/true"}},
		{name: "run debug json", env: []string{"KAI_ENTRYPOINT_LOG_LEVEL=debug", "KAI_ENTRYPOINT_LOG_FORMAT=json"}, args: []string{"/bin/true"}},
		{name: "check", env: []string{"KAI_ENTRYPOINT_LOG_LEVEL=debug"}, args: []string{"--check", "/bin/true"}},
		{name: "config error", env: []string{"KAI_PROXY_ALL=http://user:" + proxyEncoded + "@:1", "KAI_PROXY_TYPO=1", "KAI_ENTRYPOINT_LOG_LEVEL=debug"}, args: []string{"/bin/true"}},
		{name: "command error", args: []string{"no-such-command", secretValue}},
		{name: "check error", env: []string{"KAI_PROXY_ALL=http://user:" + proxyEncoded + "@:1"}, args: []string{"--check", "no-such-command"}},
	}
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			r := runShim(t, append(append([]string(nil), base...), m.env...), m.args...)
			out := r.stdout + r.stderr
			if out == "" {
				t.Fatal("no output at all: nothing was checked")
			}
			for _, s := range []string{secretValue, proxyPassword, proxyEncoded, "p@ss", "w0rd"} {
				if strings.Contains(out, s) {
					t.Errorf("output (exit %d) contains %q:\n%s", r.code, s, out)
				}
			}
		})
	}
}

// TestSignalBeforeExec sends SIGTERM and SIGINT while the shim waits for a
// proxy that never opens: it ends promptly with 128+N.
func TestSignalBeforeExec(t *testing.T) {
	for _, tt := range []struct {
		name string
		sig  syscall.Signal
		code int
	}{
		{name: "SIGTERM", sig: syscall.SIGTERM, code: 143},
		{name: "SIGINT", sig: syscall.SIGINT, code: 130},
	} {
		t.Run(tt.name, func(t *testing.T) {
			env := append(baseEnv(t.TempDir()), "KAI_WAIT=30s", "KAI_PROXY_HTTPS=127.0.0.1:1", "KAI_CERT_DIRS=")
			code, stderr, took := runSignalled(t, env, tt.sig)
			if code != tt.code {
				t.Errorf("exit %d, want %d\n%s", code, tt.code, stderr)
			}
			if took > 2*time.Second {
				t.Errorf("took %v to stop after the signal", took)
			}
			if want := `msg="` + tt.name + ` received before exec; exiting"`; !strings.Contains(stderr, want) {
				t.Errorf("stderr lacks %s:\n%s", want, stderr)
			}
		})
	}
}

// runSignalled runs the shim with env, which must make it wait, sends sig
// once it logs that it waits, and returns its exit code, its stderr and how
// long it took to end after the signal.
func runSignalled(t *testing.T, env []string, sig syscall.Signal) (code int, stderr string, took time.Duration) {
	t.Helper()
	cmd := exec.Command(shim, "/bin/true")
	cmd.Env = env
	buf := &syncBuffer{}
	cmd.Stderr = buf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(buf.String(), "waiting") {
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatalf("the shim never started waiting:\n%s", buf)
		}
		time.Sleep(10 * time.Millisecond)
	}
	sent := time.Now()
	cmd.Process.Signal(sig)
	err := cmd.Wait()
	ee, ok := err.(*exec.ExitError)
	if !ok {
		t.Fatalf("err = %v, want an exit error\n%s", err, buf)
	}
	return ee.ExitCode(), buf.String(), time.Since(sent)
}

type syncBuffer = testio.SyncBuffer

// TestJSONLogFormat: with KAI_ENTRYPOINT_LOG_FORMAT=json every stderr line
// of every outcome, usage errors and the signal message included, is one
// JSON object naming the logger.
func TestJSONLogFormat(t *testing.T) {
	dir := t.TempDir()
	writeCA(t, dir+"/certs/ca.pem", "JSON Log CA", false)
	for _, tt := range []struct {
		name   string
		env    []string
		args   []string
		signal syscall.Signal // sent once the shim waits; 0 for none
		code   int
		msg    string // a record's msg contains it
		usage  bool   // that record is the only one, an ERROR with the usage line
	}{
		{name: "start", env: []string{"KAI_PROXY_HTTPS=proxy:3128"}, args: []string{"/bin/true"}, msg: "CA bundle written"},
		{name: "near miss", env: []string{"KAI_CERT_DIR=/x"}, args: []string{"/bin/true"}, msg: "did you mean KAI_CERT_DIRS?"},
		{name: "problems", env: []string{"KAI_PROXY_HTTPS=ftp://proxy", "KAI_WAIT=soon"}, args: []string{"/bin/true"}, code: 78, msg: `KAI_WAIT="soon": not a duration`},
		{name: "command not found", args: []string{"no-such-command-kai"}, code: 127, msg: "command no-such-command-kai: not found"},
		{name: "unknown flag", args: []string{"--chek", "true"}, code: 64, msg: `unknown flag "--chek"`, usage: true},
		{name: "no command", code: 64, msg: "no command given", usage: true},
		{name: "signal", env: []string{"KAI_WAIT=30s", "KAI_PROXY_HTTPS=127.0.0.1:1"}, signal: syscall.SIGTERM, code: 143, msg: "SIGTERM received before exec; exiting"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			env := append(append(baseEnv(dir), "KAI_ENTRYPOINT_LOG_FORMAT=json"), tt.env...)
			var code int
			var stderr string
			if tt.signal != 0 {
				code, stderr, _ = runSignalled(t, env, tt.signal)
			} else {
				r := runShim(t, env, tt.args...)
				code, stderr = r.code, r.rawStderr
			}
			if code != tt.code {
				t.Fatalf("exit %d, want %d\n%s", code, tt.code, stderr)
			}
			lines := strings.Split(strings.TrimSuffix(stderr, "\n"), "\n")
			var found map[string]any
			for _, l := range lines {
				var rec map[string]any
				if err := json.Unmarshal([]byte(l), &rec); err != nil {
					t.Errorf("not JSON (%v): %s", err, l)
					continue
				}
				if rec["logger"] != "kai-entrypoint" || rec["msg"] == nil || rec["level"] == nil {
					t.Errorf("record lacks logger, msg or level: %s", l)
				}
				if msg, _ := rec["msg"].(string); strings.Contains(msg, tt.msg) {
					found = rec
				}
			}
			switch {
			case found == nil:
				t.Errorf("no record's msg contains %q:\n%s", tt.msg, stderr)
			case tt.usage && (len(lines) != 1 || found["level"] != "ERROR" || found["usage"] != "kai-entrypoint [--check | --probe URL...] [--] COMMAND [ARG...]   (kai-entrypoint --help for more)"):
				t.Errorf("want one ERROR record with the usage line:\n%s", stderr)
			}
		})
	}
}

// TestSignalAsPID1 runs the shim as PID 1 of a new PID namespace, as in a
// container without an init: there the kernel ignores a signal without a
// handler and a Go process would exit 2, so the shim must still end with
// 143 on SIGTERM.
func TestSignalAsPID1(t *testing.T) {
	requireTool(t, "util-linux", "unshare", "--pid", "--fork", "true")
	dir := t.TempDir()
	cmd := exec.Command("unshare", "--pid", "--fork", shim, "/bin/sh", "-c", `echo "pid=$$"`)
	cmd.Env = append(baseEnv(dir)[:3], "KAI_WAIT=30s", "KAI_PROXY_HTTPS=127.0.0.1:1")
	stderr := &syncBuffer{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(stderr.String(), "waiting") {
		if time.Now().After(deadline) {
			t.Fatalf("the shim never started waiting:\n%s", stderr)
		}
		time.Sleep(10 * time.Millisecond)
	}
	// The shim is unshare's only child; signal it from outside its namespace.
	out, err := exec.Command("pgrep", "-P", strconv.Itoa(cmd.Process.Pid)).Output()
	if err != nil {
		t.Fatalf("finding the shim: %v", err)
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(out)))
	syscall.Kill(pid, syscall.SIGTERM)
	err = cmd.Wait()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	}
	if code != 143 {
		t.Errorf("exit %d (%v), want 143\n%s", code, err, stderr)
	}
}
