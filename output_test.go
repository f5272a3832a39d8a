package main

// What the shim prints: never a credential, whatever the value looks like,
// and never a control character taken from its input.

import (
	"os"
	"strings"
	"testing"
)

// TestMalformedProxyNeverPrintsCredentials: values whose credentials hold
// characters that move a URL parser's idea of where they end. Between
// "://" and the last '@' nothing may be printed, in any format, at any
// level, with --check or a real run.
func TestMalformedProxyNeverPrintsCredentials(t *testing.T) {
	values := []struct {
		name, value string
		hidden      []string
	}{
		{name: "slash in the password", value: "http://u9:Pass/word@proxy:3128", hidden: []string{"Pass", "/word", "u9"}},
		{name: "password read as a path", value: "http://u9:1234/SECRET@proxy:3128", hidden: []string{"1234", "SECRET", "u9"}},
		{name: "password read as a port", value: "http://u9:99999/x@proxy:3128", hidden: []string{"99999", "u9"}},
		{name: "hash in the user name", value: "http://us#er:pw99@proxy:3128", hidden: []string{"us#er", "pw99"}},
		{name: "scheme separator in the password", value: "http://u9:pa://ss99@proxy:3128", hidden: []string{"pa:", "ss99", "u9"}},
		{name: "token as user name", value: "http://TOKEN99@proxy:3128", hidden: []string{"TOKEN99"}},
	}
	modes := []struct {
		name string
		env  []string
		args []string
	}{
		{name: "run text debug", env: []string{"KAI_ENTRYPOINT_LOG_LEVEL=debug"}, args: []string{"/bin/true"}},
		{name: "run json debug", env: []string{"KAI_ENTRYPOINT_LOG_LEVEL=debug", "KAI_ENTRYPOINT_LOG_FORMAT=json"}, args: []string{"/bin/true"}},
		{name: "check text", args: []string{"--check", "/bin/true"}},
		{name: "check json", env: []string{"KAI_ENTRYPOINT_LOG_FORMAT=json"}, args: []string{"--check", "/bin/true"}},
	}
	for _, v := range values {
		for _, m := range modes {
			t.Run(v.name+"/"+m.name, func(t *testing.T) {
				dir := t.TempDir()
				env := append(append(baseEnv(dir), "KAI_PROXY_HTTPS="+v.value, "KAI_CERT_DIRS="), m.env...)
				r := runShim(t, env, m.args...)
				out := r.stdout + r.rawStderr
				if !strings.Contains(out, "xxxxx@proxy:3128") {
					t.Errorf("exit %d: the redacted value is not shown:\n%s", r.code, out)
				}
				for _, h := range v.hidden {
					if strings.Contains(out, h) {
						t.Errorf("exit %d: output shows %q:\n%s", r.code, h, out)
					}
				}
			})
		}
	}
}

// TestSecretInArgvMaskedBeforeQuoting: a secret holding '"' or '\' is
// still masked in the exec log line and in --check's Command line, where
// quoting escapes those characters.
func TestSecretInArgvMaskedBeforeQuoting(t *testing.T) {
	const secret = `Qx"Zy\Wv`
	dir := t.TempDir()
	if err := os.WriteFile(dir+"/api-key", []byte(secret), 0o600); err != nil {
		t.Fatal(err)
	}
	env := append(baseEnv(dir), "KAI_SECRET_API_KEY="+dir+"/api-key", "KAI_CERT_DIRS=")
	for _, args := range [][]string{
		{"/bin/true", "--key", secret},
		{"--check", "/bin/true", "--key", secret},
	} {
		r := runShim(t, env, args...)
		out := r.stdout + r.rawStderr
		if r.code != 0 || !strings.Contains(out, "--key xxxxx") && !strings.Contains(out, `\"--key\" \"xxxxx\"`) {
			t.Errorf("%q: exit %d, no masked argument shown:\n%s", args, r.code, out)
		}
		for _, s := range []string{"Qx", "Wv"} {
			if strings.Contains(out, s) {
				t.Errorf("%q: output shows part of the secret (%q):\n%s", args, s, out)
			}
		}
	}
}

// TestCheckEscapesControlCharacters: a certificate subject or a path with
// a newline or an escape sequence can neither forge a line of --check's
// report nor colour the terminal.
func TestCheckEscapesControlCharacters(t *testing.T) {
	dir := t.TempDir()
	certs := dir + "/certs\x1b[31m"
	writeCA(t, certs+"/ca.pem", "Evil CA\nkai-entrypoint: forged line\x1b[0m", false)
	r := runShim(t, append(baseEnv(dir), "KAI_CERT_DIRS="+certs), "--check", "/bin/true")
	if r.code != 0 {
		t.Fatalf("exit %d:\n%s%s", r.code, r.stdout, r.stderr)
	}
	if strings.Contains(r.stdout, "\x1b") {
		t.Errorf("the report holds an escape character:\n%q", r.stdout)
	}
	for _, line := range strings.Split(r.stdout, "\n") {
		if strings.HasPrefix(line, "kai-entrypoint: forged") {
			t.Errorf("the subject forged a line: %q", line)
		}
	}
	if !strings.Contains(r.stdout, `Evil CA\nkai-entrypoint: forged line\x1b[0m`) || !strings.Contains(r.stdout, `certs\x1b[31m`) {
		t.Errorf("the subject or the path is not shown escaped:\n%s", r.stdout)
	}
}

// TestCheckSaysWhereProxiesCameFrom: with OpenShift's proxy as OLM injects
// it (upper-case names only) in a pod, --check names the inherited
// variables as the source and shows the cluster's no-proxy entries.
func TestCheckSaysWhereProxiesCameFrom(t *testing.T) {
	dir := t.TempDir()
	env := append(baseEnv(dir)[:3], "HTTPS_PROXY=http://proxy.corp:3128", "NO_PROXY=.corp.example",
		"KUBERNETES_SERVICE_HOST=172.30.0.1", "KAI_PROXY_HTTP=http://other:8080")
	r := runShim(t, env, "--check")
	report := strings.Join(strings.Fields(r.stdout), " ") // columns aligned with any number of blanks
	for _, want := range []string{
		"HTTPS_PROXY, https_proxy http://proxy.corp:3128 (from inherited HTTPS_PROXY)",
		"HTTP_PROXY, http_proxy http://other:8080 (from KAI_PROXY_HTTP)",
		"NO_PROXY, no_proxy, no_grpc_proxy .corp.example,localhost,127.0.0.1,::1,.svc,.cluster.local,172.30.0.1 (from inherited NO_PROXY)",
		"(in Kubernetes: .svc, .cluster.local, 172.30.0.1 added, so the cluster's services bypass the proxy)",
	} {
		if !strings.Contains(report, want) {
			t.Errorf("exit %d: the report lacks %q:\n%s", r.code, want, r.stdout)
		}
	}
}
