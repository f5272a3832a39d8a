package entrypoint

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"

	"github.com/konveyor/kai-entrypoint/internal/testio"
	"github.com/konveyor/kai-entrypoint/internal/testpki"
)

const unset = "<unset>"

// runCase is one table row: an environment, files to create, and what the
// command's environment must (or must not) hold.
type runCase struct {
	name     string
	env      map[string]string // set with t.Setenv and passed as Environ; $DIR is the temp dir
	files    map[string]string // relative to $DIR
	check    bool
	want     map[string]string // expected variables; unset means absent
	wantErr  []string          // every one must appear in the error
	wantWarn []string          // every one must appear among the warnings
	noWarn   bool              // no warning at all
}

// String prints the case as an environment, as httpproxy's tests do.
func (c runCase) String() string {
	var kv []string
	for k, v := range c.env {
		kv = append(kv, k+"="+v)
	}
	sort.Strings(kv)
	return strings.Join(kv, " ")
}

// runTestCA writes a fresh self-signed CA certificate as PEM to path.
func runTestCA(t *testing.T, path, cn string) {
	t.Helper()
	ca, err := testpki.NewCA(cn)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, ca.PEM, 0o644); err != nil {
		t.Fatal(err)
	}
}

func (c runCase) run(t *testing.T) (*Plan, error) {
	t.Helper()
	dir := t.TempDir()
	for name, content := range c.files {
		path := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		switch content {
		case "<ca>":
			runTestCA(t, path, "Run Test CA "+name)
		case "<fifo>":
			if err := syscall.Mkfifo(path, 0o644); err != nil {
				t.Fatal(err)
			}
		case "<dir>":
			if err := os.MkdirAll(path, 0o755); err != nil {
				t.Fatal(err)
			}
		default:
			if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Isolate from this machine: no cert folder and no bundle outside dir.
	env := map[string]string{"KAI_CERT_DIRS": dir + "/no-certs", "KAI_CA_BUNDLE": dir + "/out/ca-bundle.pem", "PATH": "/usr/bin:/bin"}
	if err := os.MkdirAll(dir+"/no-certs", 0o755); err != nil {
		t.Fatal(err)
	}
	for k, v := range c.env {
		env[k] = strings.ReplaceAll(v, "$DIR", dir)
	}
	var environ []string
	for k, v := range env {
		if v == unset {
			continue
		}
		environ = append(environ, k+"="+v)
		if strings.HasPrefix(k, "KAI_") {
			t.Setenv(k, env[k])
		}
	}
	sort.Strings(environ)
	return runSteps(context.Background(), LoadSettings(), environ, []string{"true"}, c.check)
}

// runSteps takes the steps main.go takes, in the same order.
func runSteps(ctx context.Context, s Settings, environ, command []string, check bool) (*Plan, error) {
	mode := ModeExec
	if check {
		mode = ModeCheck
	}
	return runMode(ctx, s, environ, command, mode)
}

// runMode is runSteps for any mode.
func runMode(ctx context.Context, s Settings, environ, command []string, mode Mode) (*Plan, error) {
	cfg, _ := s.Validate(environ)
	p := NewPlan(cfg, environ, nil, mode)
	p.SetProxies()
	p.PassThrough()
	if err := p.Wait(ctx); err != nil {
		return p, err
	}
	p.ReadSources()
	p.BuildBundle()
	p.SetJava()
	p.SetEnvironment()
	p.ResolveCommand(command)
	return p, p.Err()
}

func TestRun(t *testing.T) {
	tests := []runCase{
		// Proxies: both spellings, normalised.
		{name: "http proxy both spellings", env: map[string]string{"KAI_PROXY_HTTP": "Proxy.Corp:3128"},
			want: map[string]string{"HTTP_PROXY": "http://proxy.corp:3128", "http_proxy": "http://proxy.corp:3128", "HTTPS_PROXY": unset}},
		{name: "https proxy both spellings", env: map[string]string{"KAI_PROXY_HTTPS": "http://u:p%40ss@proxy:3128/"},
			want: map[string]string{"HTTPS_PROXY": "http://u:p%40ss@proxy:3128", "https_proxy": "http://u:p%40ss@proxy:3128"}},
		{name: "all proxy both spellings", env: map[string]string{"KAI_PROXY_ALL": "socks5h://proxy"},
			want: map[string]string{"ALL_PROXY": "socks5h://proxy:1080", "all_proxy": "socks5h://proxy:1080"}},
		{name: "empty setting counts as unset: the inherited proxy is adopted", env: map[string]string{"KAI_PROXY_HTTP": "", "HTTP_PROXY": "http://old:1"},
			want: map[string]string{"HTTP_PROXY": "http://old:1", "http_proxy": "http://old:1", "NO_PROXY": "localhost,127.0.0.1,::1"}},

		// Inherited proxy variables are adopted (OLM injects upper-case ones only).
		{name: "inherited proxies adopted under both spellings", env: map[string]string{"HTTP_PROXY": "http://old:1", "https_proxy": "old:2"},
			want: map[string]string{"HTTP_PROXY": "http://old:1", "http_proxy": "http://old:1", "HTTPS_PROXY": "http://old:2", "https_proxy": "http://old:2",
				"no_grpc_proxy": "localhost,127.0.0.1,::1", "ALL_PROXY": unset}},
		{name: "OLM: upper-case only; cluster no-proxy adopted with loopback",
			env: map[string]string{"HTTPS_PROXY": "http://proxy.corp:3128", "HTTP_PROXY": "http://proxy.corp:3128", "NO_PROXY": ".cluster.local,.svc,10.0.0.0/16,localhost"},
			want: map[string]string{"https_proxy": "http://proxy.corp:3128", "http_proxy": "http://proxy.corp:3128",
				"no_proxy": ".cluster.local,.svc,10.0.0.0/16,localhost,127.0.0.1,::1", "no_grpc_proxy": ".cluster.local,.svc,10.0.0.0/16,localhost,127.0.0.1,::1"},
			wantWarn: []string{"inherited NO_PROXY holds the IP ranges 10.0.0.0/16"}},
		{name: "both spellings differ: lower-case wins with a warning",
			env:      map[string]string{"HTTPS_PROXY": "http://u:upper@upper:1", "https_proxy": "http://u:lower@lower:2"},
			want:     map[string]string{"HTTPS_PROXY": "http://u:lower@lower:2", "https_proxy": "http://u:lower@lower:2"},
			wantWarn: []string{`inherited https_proxy="http://xxxxx@lower:2" and HTTPS_PROXY="http://xxxxx@upper:1" differ: using https_proxy`}},
		{name: "empty lower-case spelling counts as unset",
			env:  map[string]string{"HTTPS_PROXY": "http://upper:1", "https_proxy": " "},
			want: map[string]string{"HTTPS_PROXY": "http://upper:1", "https_proxy": "http://upper:1"}, noWarn: true},
		{name: "a KAI_PROXY_ setting wins over an inherited value",
			env:  map[string]string{"KAI_PROXY_HTTPS": "new:3", "https_proxy": "http://old:2", "no_proxy": "old.example", "KAI_PROXY_NO": "new.example"},
			want: map[string]string{"HTTPS_PROXY": "http://new:3", "https_proxy": "http://new:3", "NO_PROXY": "new.example,localhost,127.0.0.1,::1"}},
		{name: "malformed inherited proxy named",
			env:     map[string]string{"HTTPS_PROXY": "http://u:pw@proxy:99999"},
			wantErr: []string{`inherited HTTPS_PROXY="http://xxxxx@proxy:99999": invalid port`}},
		{name: "inside Kubernetes the cluster's names bypass the proxy",
			env: map[string]string{"HTTPS_PROXY": "http://proxy:3128", "KUBERNETES_SERVICE_HOST": "10.96.0.1"},
			want: map[string]string{"NO_PROXY": "localhost,127.0.0.1,::1,.svc,.cluster.local,10.96.0.1",
				"no_grpc_proxy": "localhost,127.0.0.1,::1,.svc,.cluster.local,10.96.0.1"}},
		{name: "inside Kubernetes KAI_PROXY_NO alone gets the cluster's names",
			env:  map[string]string{"KAI_PROXY_NO": "llm.internal", "KUBERNETES_SERVICE_HOST": "10.96.0.1"},
			want: map[string]string{"no_proxy": "llm.internal,.svc,.cluster.local,10.96.0.1", "HTTPS_PROXY": unset}},
		{name: "inside Kubernetes without proxies nothing is written",
			env:  map[string]string{"KUBERNETES_SERVICE_HOST": "10.96.0.1"},
			want: map[string]string{"NO_PROXY": unset, "no_proxy": unset, "no_grpc_proxy": unset}},
		{name: "kai proxy replaces inherited and the other spelling",
			env:  map[string]string{"KAI_PROXY_HTTPS": "new:3", "HTTPS_PROXY": "http://old:1", "https_proxy": "http://old:2", "HTTP_PROXY": "http://keep:4"},
			want: map[string]string{"HTTPS_PROXY": "http://new:3", "https_proxy": "http://new:3", "HTTP_PROXY": "http://keep:4"}},

		// The no-proxy list.
		{name: "owned no proxy from KAI_PROXY_NO plus loopback",
			env:  map[string]string{"KAI_PROXY_HTTPS": "p:1", "KAI_PROXY_NO": " llm.internal, ,LLM.internal,::1", "NO_PROXY": "ignored"},
			want: map[string]string{"NO_PROXY": "llm.internal,::1,localhost,127.0.0.1", "no_proxy": "llm.internal,::1,localhost,127.0.0.1", "no_grpc_proxy": "llm.internal,::1,localhost,127.0.0.1"}},
		{name: "owned no proxy from inherited no_proxy first",
			env:      map[string]string{"KAI_PROXY_HTTP": "p:1", "NO_PROXY": "upper.example", "no_proxy": "lower.example"},
			want:     map[string]string{"NO_PROXY": "lower.example,localhost,127.0.0.1,::1", "no_proxy": "lower.example,localhost,127.0.0.1,::1"},
			wantWarn: []string{`inherited no_proxy="lower.example" and NO_PROXY="upper.example" differ`}},
		{name: "owned no proxy from inherited no_proxy",
			env:  map[string]string{"KAI_PROXY_ALL": "socks5://p", "no_proxy": "lower.example"},
			want: map[string]string{"NO_PROXY": "lower.example,localhost,127.0.0.1,::1", "no_grpc_proxy": "lower.example,localhost,127.0.0.1,::1"}},
		{name: "owned no proxy with nothing inherited is loopback",
			env:  map[string]string{"KAI_PROXY_HTTPS": "p:1"},
			want: map[string]string{"NO_PROXY": "localhost,127.0.0.1,::1", "no_proxy": "localhost,127.0.0.1,::1", "no_grpc_proxy": "localhost,127.0.0.1,::1"}},
		{name: "star is the whole list", env: map[string]string{"KAI_PROXY_HTTPS": "p:1", "KAI_PROXY_NO": "llm.internal,*"},
			want: map[string]string{"NO_PROXY": "*", "no_proxy": "*", "no_grpc_proxy": "*"}},
		{name: "bad inherited no-proxy entry named", env: map[string]string{"KAI_PROXY_HTTPS": "p:1", "no_proxy": "ok.example,https://llm.internal"},
			wantErr: []string{`inherited no_proxy entry "https://llm.internal": a no-proxy entry is a host`}},
		{name: "KAI_PROXY_NO alone: no loopback added",
			env:  map[string]string{"KAI_PROXY_NO": "a.example, b.example", "NO_PROXY": "old"},
			want: map[string]string{"NO_PROXY": "a.example,b.example", "no_proxy": "a.example,b.example", "no_grpc_proxy": "a.example,b.example"}},
		{name: "inherited no proxy alone normalised without loopback",
			env:  map[string]string{"NO_PROXY": " x.example  y.example"},
			want: map[string]string{"NO_PROXY": "x.example,y.example", "no_proxy": "x.example,y.example", "no_grpc_proxy": "x.example,y.example"}},
		{name: "openai proxy does not own the no-proxy list",
			env:  map[string]string{"KAI_PROXY_OPENAI": "p:1", "NO_PROXY": "x"},
			want: map[string]string{"OPENAI_PROXY": "http://p:1", "NO_PROXY": "x", "HTTPS_PROXY": unset}, wantWarn: []string{"langchain-openai", "certifi", "NO_PROXY"}},
		{name: "OPENAI_PROXY only from KAI_PROXY_OPENAI",
			env:  map[string]string{"KAI_PROXY_HTTPS": "p:1"},
			want: map[string]string{"OPENAI_PROXY": unset}, noWarn: true},

		// Pass-through, secrets, precedence.
		{name: "KAI_ENV keeps spelling and beats derived values",
			env:  map[string]string{"KAI_PROXY_HTTPS": "p:1", "KAI_ENV_no_proxy": "only.this", "KAI_ENV_Mixed_Case": "v=1,2"},
			want: map[string]string{"no_proxy": "only.this", "NO_PROXY": "localhost,127.0.0.1,::1", "Mixed_Case": "v=1,2"}},
		{name: "KAI_ENV beats inherited", env: map[string]string{"KAI_ENV_FOO": "new", "FOO": "old"},
			want: map[string]string{"FOO": "new"}},
		{name: "empty KAI_ENV sets an empty variable", env: map[string]string{"KAI_ENV_EMPTY": ""},
			want: map[string]string{"EMPTY": ""}},
		{name: "KAI_ENV can set a kai proxy name for the command", env: map[string]string{"KAI_ENV_KAI_PROXY_HTTP": "x"},
			want: map[string]string{"KAI_PROXY_HTTP": "x", "HTTP_PROXY": unset}},
		{name: "secret file with one trailing newline removed",
			env:   map[string]string{"KAI_SECRET_API_KEY": "$DIR/key", "KAI_SECRET_CRLF": "$DIR/crlf", "KAI_SECRET_TWO": "$DIR/two"},
			files: map[string]string{"key": "s3cr3t\n", "crlf": "tok\r\n", "two": "a\n\n"},
			want:  map[string]string{"API_KEY": "s3cr3t", "CRLF": "tok", "TWO": "a\n"}},
		{name: "secret beats derived", env: map[string]string{"KAI_PROXY_HTTPS": "p:1", "KAI_SECRET_HTTPS_PROXY": "$DIR/p"},
			files: map[string]string{"p": "http://u:pw@other:9"},
			want:  map[string]string{"HTTPS_PROXY": "http://u:pw@other:9", "https_proxy": "http://p:1"}},

		// The command's environment has none of the shim's variables.
		{name: "shim variables stripped and others kept",
			env: map[string]string{"KAI_PROXY_HTTP": "p:1", "KAI_PROXY_NO": "x", "KAI_ENV_A": "1", "KAI_WAIT": "0s",
				"KAI_ENTRYPOINT_LOG_LEVEL": "debug", "KAI_ENTRYPOINT_LOG_FORMAT": "json", "KAI_SECRET_B": "$DIR/b",
				"KAI__LOG_LEVEL": "info", "KAI_DB_DSN": "postgres://x", "KAI_LLM_PARAMS": "{}", "OTHER": "kept"},
			files: map[string]string{"b": "2"},
			want: map[string]string{"KAI_PROXY_HTTP": unset, "KAI_PROXY_NO": unset, "KAI_ENV_A": unset, "KAI_WAIT": unset,
				"KAI_ENTRYPOINT_LOG_LEVEL": unset, "KAI_ENTRYPOINT_LOG_FORMAT": unset, "KAI_SECRET_B": unset,
				"KAI_CERT_DIRS": unset, "KAI_CA_BUNDLE": unset,
				"KAI__LOG_LEVEL": "info", "KAI_DB_DSN": "postgres://x", "KAI_LLM_PARAMS": "{}", "OTHER": "kept", "A": "1", "B": "2"}},

		// Warnings.
		{name: "PYTHONHTTPSVERIFY through KAI_ENV warns", env: map[string]string{"KAI_ENV_PYTHONHTTPSVERIFY": "0"},
			want: map[string]string{"PYTHONHTTPSVERIFY": "0"}, wantWarn: []string{"KAI_ENV_PYTHONHTTPSVERIFY", "no effect on Python 3"}},
		{name: "inherited PYTHONHTTPSVERIFY warns", env: map[string]string{"PYTHONHTTPSVERIFY": "0"},
			want: map[string]string{"PYTHONHTTPSVERIFY": "0"}, wantWarn: []string{"inherited PYTHONHTTPSVERIFY"}},

		// CA variables.
		{name: "no extra CA leaves CA variables as inherited",
			env:  map[string]string{"SSL_CERT_FILE": "/etc/ssl/certs/ca-certificates.crt"},
			want: map[string]string{"SSL_CERT_FILE": "/etc/ssl/certs/ca-certificates.crt", "REQUESTS_CA_BUNDLE": unset}},
		{name: "extra CA points every CA variable at the bundle",
			env:   map[string]string{"KAI_CERT_DIRS": "$DIR/certs", "SSL_CERT_FILE": "/etc/ssl/certs/ca-certificates.crt", "AWS_CA_BUNDLE": "/old"},
			files: map[string]string{"certs/corp.pem": "<ca>"},
			want: map[string]string{"SSL_CERT_FILE": "$DIR/out/ca-bundle.pem", "REQUESTS_CA_BUNDLE": "$DIR/out/ca-bundle.pem",
				"CURL_CA_BUNDLE": "$DIR/out/ca-bundle.pem", "AWS_CA_BUNDLE": "$DIR/out/ca-bundle.pem",
				"GRPC_DEFAULT_SSL_ROOTS_FILE_PATH": "$DIR/out/ca-bundle.pem", "NODE_EXTRA_CA_CERTS": "$DIR/out/ca-bundle.pem",
				"PIP_CERT": "$DIR/out/ca-bundle.pem", "GIT_SSL_CAINFO": "$DIR/out/ca-bundle.pem",
				"HTTPLIB2_CA_CERTS": "$DIR/out/ca-bundle.pem", "CLOUDSDK_CORE_CUSTOM_CA_CERTS_FILE": "$DIR/out/ca-bundle.pem"}},
		{name: "KAI_ENV beats the bundle and warns on a missing path",
			env:      map[string]string{"KAI_CERT_DIRS": "$DIR/certs", "KAI_ENV_REQUESTS_CA_BUNDLE": "/nonexistent.pem"},
			files:    map[string]string{"certs/corp.pem": "<ca>"},
			want:     map[string]string{"REQUESTS_CA_BUNDLE": "/nonexistent.pem", "SSL_CERT_FILE": "$DIR/out/ca-bundle.pem"},
			wantWarn: []string{`KAI_ENV_REQUESTS_CA_BUNDLE="/nonexistent.pem"`, "does not exist"}},
		{name: "files without a certificate make one warning per source",
			env:      map[string]string{"KAI_CERT_DIRS": "$DIR/certs"},
			files:    map[string]string{"certs/ca.pem": "<ca>", "certs/README.md": "# CAs\n", "certs/x.key": "not a cert\n"},
			want:     map[string]string{"SSL_CERT_FILE": "$DIR/out/ca-bundle.pem"},
			wantWarn: []string{"no certificate found in $DIR/certs/README.md, $DIR/certs/x.key, skipped"}},
		{name: "the bundle inside a listed folder is not read back",
			env:   map[string]string{"KAI_CERT_DIRS": "$DIR/out", "KAI_CA_BUNDLE": "$DIR/out/ca-bundle.pem"},
			files: map[string]string{"out/ca-bundle.pem": "<ca>"},
			want:  map[string]string{"SSL_CERT_FILE": unset}},
		{name: "missing default cert folder is fine",
			env:  map[string]string{"KAI_CERT_DIRS": unset},
			want: map[string]string{"SSL_CERT_FILE": unset}},

		// Errors, every one named with its value.
		{name: "unknown KAI_PROXY name", env: map[string]string{"KAI_PROXY_HTTP_S": "p:1"},
			wantErr: []string{"KAI_PROXY_HTTP_S: unknown variable; did you mean KAI_PROXY_HTTPS? (known: KAI_PROXY_HTTP, KAI_PROXY_HTTPS"}},
		{name: "unknown KAI_ENTRYPOINT name", env: map[string]string{"KAI_ENTRYPOINT_LOGLEVEL": "debug"},
			wantErr: []string{"KAI_ENTRYPOINT_LOGLEVEL: unknown variable; did you mean KAI_ENTRYPOINT_LOG_LEVEL? (known: KAI_ENTRYPOINT_LOG_LEVEL, KAI_ENTRYPOINT_LOG_FORMAT)"}},
		{name: "bad KAI_ENV names", env: map[string]string{"KAI_ENV_1X": "a", "KAI_ENV_A-B": "b", "KAI_ENV_": "c"},
			wantErr: []string{`KAI_ENV_1X: "1X" is not a valid variable name`, `KAI_ENV_A-B: "A-B" is not a valid variable name`, `KAI_ENV_: "" is not a valid variable name`}},
		{name: "KAI_ENV and KAI_SECRET for one name", env: map[string]string{"KAI_ENV_TOKEN": "a", "KAI_SECRET_TOKEN": "$DIR/t"},
			files: map[string]string{"t": "x"}, wantErr: []string{"KAI_ENV_TOKEN and KAI_SECRET_TOKEN: both set TOKEN"}},
		{name: "secret file problems", env: map[string]string{"KAI_SECRET_MISSING": "$DIR/nope", "KAI_SECRET_DIR": "$DIR/d",
			"KAI_SECRET_FIFO": "$DIR/fifo", "KAI_SECRET_BIG": "$DIR/big", "KAI_SECRET_EMPTYPATH": ""},
			files: map[string]string{"d": "<dir>", "fifo": "<fifo>", "big": strings.Repeat("x", maxSecretSize+1)},
			wantErr: []string{`KAI_SECRET_MISSING="$DIR/nope": no such file or directory`, `KAI_SECRET_DIR="$DIR/d": not a regular file (a directory)`,
				`KAI_SECRET_FIFO="$DIR/fifo": not a regular file (a FIFO)`, `KAI_SECRET_BIG="$DIR/big": larger than 1 MiB`, `KAI_SECRET_EMPTYPATH="": empty path`}},
		{name: "bad proxies", env: map[string]string{"KAI_PROXY_HTTP": "ftp://p", "KAI_PROXY_HTTPS": "http://u:hunter2@:1", "KAI_PROXY_ALL": "http://p/x"},
			wantErr: []string{`KAI_PROXY_HTTP="ftp://p": unsupported scheme "ftp"`, `KAI_PROXY_HTTPS="http://xxxxx@:1": missing host`, `KAI_PROXY_ALL="http://p/x": unexpected path "/x"`}},
		{name: "bad settings", env: map[string]string{"KAI_WAIT": "soon", "KAI_ENTRYPOINT_LOG_LEVEL": "loud", "KAI_ENTRYPOINT_LOG_FORMAT": "xml", "KAI_CA_BUNDLE": "rel/b.pem"},
			wantErr: []string{`KAI_WAIT="soon": not a duration`, `KAI_ENTRYPOINT_LOG_LEVEL="loud"`, `KAI_ENTRYPOINT_LOG_FORMAT="xml": must be text or json`, `KAI_CA_BUNDLE="rel/b.pem": must be an absolute path`}},
		{name: "negative wait", env: map[string]string{"KAI_WAIT": "-1s"}, wantErr: []string{`KAI_WAIT="-1s": must not be negative`}},
		{name: "listed cert source missing", env: map[string]string{"KAI_CERT_DIRS": "$DIR/a, ,$DIR/b.pem"},
			files: map[string]string{"a/ca.pem": "<ca>"}, wantErr: []string{`KAI_CERT_DIRS entry "$DIR/b.pem": no such file or directory`}},
		{name: "corrupt certificate named by its KAI_CERT_DIRS entry and file", env: map[string]string{"KAI_CERT_DIRS": "$DIR/certs"},
			files:   map[string]string{"certs/bad.pem": "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"},
			wantErr: []string{`KAI_CERT_DIRS entry "$DIR/certs": $DIR/certs/bad.pem: block 1 (CERTIFICATE, line 1): not a valid certificate`}},
		{name: "command not found is a listed problem with --check", check: true, env: map[string]string{"KAI_ENV_PATH": "$DIR/empty"},
			files: map[string]string{"empty/x": "x"}, wantErr: []string{`command true: not found in PATH=$DIR/empty`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := tt.run(t)
			dir := ""
			if p.Config != nil {
				dir = strings.TrimSuffix(p.Config.CABundle, "/out/ca-bundle.pem")
			}
			if len(tt.wantErr) > 0 {
				var ce *ConfigError
				if !errors.As(err, &ce) {
					t.Fatalf("%v: err = %v, want a *ConfigError", tt, err)
				}
				if n := len(ce.Problems()); n != len(tt.wantErr) {
					t.Errorf("%v: %d problems, want %d:\n%v", tt, n, len(tt.wantErr), err)
				}
				for _, w := range tt.wantErr {
					w = strings.ReplaceAll(w, "$DIR", dir)
					if !strings.Contains(err.Error(), w) {
						t.Errorf("%v: error\n%v\nwant it to contain %q", tt, err, w)
					}
				}
				if strings.Contains(err.Error(), "hunter2") {
					t.Errorf("error leaks a password: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("%v: %v", tt, err)
			}
			env := NewEnv(p.Env)
			for k, want := range tt.want {
				want = strings.ReplaceAll(want, "$DIR", dir)
				got, ok := env.Get(k)
				switch {
				case want == unset && ok:
					t.Errorf("%v: %s=%q, want it unset", tt, k, got)
				case want != unset && !ok:
					t.Errorf("%v: %s unset, want %q", tt, k, want)
				case want != unset && got != want:
					t.Errorf("%v: %s=%q, want %q", tt, k, got, want)
				}
			}
			warnings := strings.Join(p.Warnings, "\n")
			for _, w := range tt.wantWarn {
				if !strings.Contains(warnings, strings.ReplaceAll(w, "$DIR", dir)) {
					t.Errorf("%v: warnings\n%s\nwant one containing %q", tt, warnings, w)
				}
			}
			if tt.noWarn && len(p.Warnings) > 0 {
				t.Errorf("%v: unexpected warnings %q", tt, p.Warnings)
			}
		})
	}
}

// TestRunAllProblemsAtOnce checks that problems of every kind are gathered
// into one report rather than the first one stopping the run.
func TestRunAllProblemsAtOnce(t *testing.T) {
	c := runCase{env: map[string]string{
		"KAI_PROXY_HTTPS": "ftp://x", "KAI_PROXY_TYPO": "1", "KAI_ENV_9": "x", "KAI_SECRET_S": "$DIR/missing",
		"KAI_WAIT": "later", "KAI_CERT_DIRS": "$DIR/missing-certs", "KAI_ENV_PATH": "$DIR",
	}}
	_, err := c.run(t)
	var ce *ConfigError
	if !errors.As(err, &ce) {
		t.Fatalf("err = %v, want *ConfigError", err)
	}
	// The wait is invalid, so the cert source is read without waiting and
	// its absence is one more problem, as is the command.
	for _, want := range []string{"KAI_PROXY_HTTPS=", "KAI_PROXY_TYPO: unknown", "KAI_ENV_9:", "KAI_SECRET_S=", "KAI_WAIT=", "KAI_CERT_DIRS entry", "command true"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("report lacks %q:\n%v", want, err)
		}
	}
	if got := len(ce.Problems()); got != 7 {
		t.Errorf("%d problems, want 7:\n%v", got, err)
	}
	if ExitCode(err) != ExitConfig {
		t.Errorf("ExitCode = %d, want %d", ExitCode(err), ExitConfig)
	}
}

// TestRunBundlePath: --check reports every problem a run meets with
// KAI_CA_BUNDLE, in the same words, and neither writes anything.
func TestRunBundlePath(t *testing.T) {
	dir := t.TempDir()
	certs := filepath.Join(dir, "certs")
	runTestCA(t, filepath.Join(certs, "corp.pem"), "Bundle Path CA")
	system := filepath.Join(dir, "etc", "ca.crt") // a well-known system bundle here
	runTestCA(t, system, "System CA")
	swapSystemFiles(t, []string{system})
	inherited := filepath.Join(dir, "inherited.pem")
	runTestCA(t, inherited, "Inherited CA")
	testpki.WriteFile(t, filepath.Join(dir, "file"), []byte("x"))
	for _, d := range []string{"folder", "foreign", "readonly"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	const uid = 1000770000
	asRoot := os.Geteuid() == 0
	if asRoot {
		if err := os.Chown(filepath.Join(dir, "foreign"), 4242, 4242); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(filepath.Join(dir, "readonly"), 0o555); err != nil {
			t.Fatal(err)
		}
		// Let uid read the CA, whatever the umask.
		if err := os.Chmod(filepath.Join(certs, "corp.pem"), 0o644); err != nil {
			t.Fatal(err)
		}
		for d := certs; d != os.TempDir() && d != "/"; d = filepath.Dir(d) {
			if err := os.Chmod(d, 0o755); err != nil {
				t.Fatal(err)
			}
		}
	}
	before := map[string][]byte{}
	for _, f := range []string{system, inherited} {
		before[f], _ = os.ReadFile(f)
	}
	const folder = "names a folder, not a file: set it to a file path such as /tmp/kai-entrypoint/ca-bundle.pem"

	tests := []struct {
		name     string
		bundle   string
		certDirs string // KAI_CERT_DIRS
		defaults bool   // certDirs is the default, not in the environment
		environ  []string
		uid      int // run as this UID on a thread of its own; 0: as this process
		root     bool
		want     string // after KAI_CA_BUNDLE="bundle": ; "" for no problem
	}{
		{name: "root folder", bundle: "/", certDirs: certs, want: folder},
		{name: "trailing slash", bundle: dir + "/out/", certDirs: certs, want: folder},
		{name: "a folder", bundle: dir + "/folder", certDirs: certs, want: folder},
		{name: "under a regular file", bundle: dir + "/file/ca.pem", certDirs: certs,
			want: "cannot write the CA bundle: " + dir + "/file: not a directory"},
		{name: "a system bundle", bundle: system, certDirs: certs, want: "is the system CA bundle " + system},
		{name: "the file of the inherited SSL_CERT_FILE", bundle: inherited, certDirs: certs, environ: []string{"SSL_CERT_FILE=" + inherited},
			want: `is the inherited SSL_CERT_FILE="` + inherited + `", a CA bundle kai-entrypoint did not write`},
		{name: "a folder of another user", bundle: dir + "/foreign/ca.pem", certDirs: certs, root: true,
			want: "cannot write the CA bundle: folder " + dir + "/foreign belongs to uid 4242"},
		{name: "a folder this user cannot write", bundle: dir + "/readonly/kai/ca.pem", certDirs: certs, uid: uid, root: true,
			want: "cannot write the CA bundle: folder " + dir + "/readonly: permission denied"},
		{name: "KAI_CERT_DIRS set but no extra CA: checked", bundle: "/", certDirs: dir + "/folder", want: folder},
		{name: "no extra CA in the default cert folder: not checked, nothing written", bundle: "/", certDirs: dir + "/folder", defaults: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.root && !asRoot {
				t.Skip("needs root to give a folder away or switch UID")
			}
			s := Settings{CertDirs: tt.certDirs, CABundle: tt.bundle}
			environ := append([]string{"PATH=/usr/bin:/bin", "KAI_CA_BUNDLE=" + tt.bundle}, tt.environ...)
			if !tt.defaults {
				environ = append(environ, "KAI_CERT_DIRS="+tt.certDirs)
			}
			var problems [2][]string
			for i, check := range []bool{true, false} {
				var err error
				run := func() {
					_, err = runSteps(context.Background(), s, environ, []string{"true"}, check)
				}
				if tt.uid != 0 {
					if e := testio.OnThreadAs(tt.uid, run); e != nil {
						t.Skip("cannot switch the thread's UID:", e)
					}
				} else {
					run()
				}
				var ce *ConfigError
				if errors.As(err, &ce) {
					problems[i] = ce.Problems()
				} else if err != nil {
					t.Fatalf("check %v: %v", check, err)
				}
			}
			if strings.Join(problems[0], "\n") != strings.Join(problems[1], "\n") {
				t.Errorf("--check and a run disagree:\n--check: %q\nrun:     %q", problems[0], problems[1])
			}
			want := []string{}
			if tt.want != "" {
				want = []string{fmt.Sprintf("KAI_CA_BUNDLE=%q: %s", tt.bundle, tt.want)}
			}
			if len(problems[1]) != len(want) || (len(want) == 1 && !strings.HasPrefix(problems[1][0], want[0])) {
				t.Errorf("problems %q\nwant one starting with %q", problems[1], want)
			}
			for f, b := range before {
				if got, _ := os.ReadFile(f); !bytes.Equal(got, b) {
					t.Errorf("%s was overwritten", f)
					os.WriteFile(f, b, 0o644) // for the next rows
				}
			}
			for _, d := range []string{"out", "readonly/kai", "foreign/ca.pem", "folder/ca-bundle.pem"} {
				if _, err := os.Lstat(filepath.Join(dir, d)); err == nil {
					t.Errorf("%s was created", d)
				}
			}
		})
	}
}

func TestRunCommandErrors(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "noexec"), []byte("#!/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "tool"), []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, cmd, path string
		wantPath        string
		wantCode        int
	}{
		{name: "found on PATH", cmd: "tool", path: "/nonexistent:" + dir, wantPath: dir + "/tool", wantCode: 0},
		{name: "absolute", cmd: dir + "/tool", wantPath: dir + "/tool", wantCode: 0},
		{name: "not found", cmd: "no-such-tool", path: dir, wantCode: ExitNotFound},
		{name: "missing absolute", cmd: dir + "/missing", path: dir, wantCode: ExitNotFound},
		{name: "not executable", cmd: "noexec", path: dir, wantCode: ExitNotExecutable},
		{name: "a directory", cmd: dir, path: dir, wantCode: ExitNotExecutable},
		{name: "empty PATH entry is the working directory", cmd: "tool", path: "/nonexistent:", wantPath: "tool", wantCode: 0},
	}
	t.Chdir(dir)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := LookPath(tt.cmd, tt.path)
			if code := ExitCode(err); code != tt.wantCode {
				t.Fatalf("LookPath(%q, %q) = %q, %v: exit code %d, want %d", tt.cmd, tt.path, got, err, code, tt.wantCode)
			}
			if got != tt.wantPath {
				t.Errorf("LookPath(%q, %q) = %q, want %q", tt.cmd, tt.path, got, tt.wantPath)
			}
		})
	}
}
