package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// pythonClients are the stand-in's clients, in its output order; "go" is
// the test binary's own net/http client.
var (
	pythonClients = []string{"requests", "httpx", "aiohttp", "urllib", "curl"}
	allClients    = append(append([]string(nil), pythonClients...), "go")
)

// report is the JSON document printed by kai-standin.py and the Go client.
type report struct {
	Standin  string            `json:"standin"`
	OK       bool              `json:"ok"`
	Versions map[string]any    `json:"versions"`
	Env      map[string]string `json:"env,omitempty"`
	Results  []result          `json:"results"`
}

type result struct {
	Client     string          `json:"client"`
	URL        string          `json:"url"`
	Method     string          `json:"method"`
	OK         bool            `json:"ok"`
	Status     int             `json:"status"`
	XViaMitm   *string         `json:"x_via_mitm"`
	Body       json.RawMessage `json:"body"`
	ErrorClass string          `json:"error_class"`
	Error      string          `json:"error"`
	ExitCode   int             `json:"exit_code"`
	Seconds    float64         `json:"seconds"`
}

func (r result) String() string {
	if r.Error != "" {
		s := fmt.Sprintf("%s: %s", r.ErrorClass, r.Error)
		if r.Client == "curl" {
			s = fmt.Sprintf("curl exit %d: %s", r.ExitCode, r.Error)
		}
		return s
	}
	via := "<absent>"
	if r.XViaMitm != nil {
		via = strconv.Quote(*r.XViaMitm)
	}
	var compact bytes.Buffer
	body := string(r.Body)
	if json.Compact(&compact, r.Body) == nil {
		body = compact.String()
	}
	if len(body) > 300 {
		body = body[:300] + "..."
	}
	return fmt.Sprintf("HTTP %d, x_via_mitm=%s, body %s", r.Status, via, body)
}

// shimRun is one kai-entrypoint process and what it printed.
type shimRun struct {
	argv           []string
	env            vars
	exitCode       int
	stdout, stderr string
	bundle         string // its KAI_CA_BUNDLE
	doc            report
	docErr         error
	shown          bool // output already in the test log
}

func (r *shimRun) String() string {
	return fmt.Sprintf("kai-entrypoint exit %d\nenv: %q\nargv: %q\n--- stderr ---\n%s--- stdout ---\n%s",
		r.exitCode, r.env.list(), r.argv, r.stderr, r.stdout)
}

// baseEnv is what every kai-entrypoint run gets: a PATH, a HOME and a
// bundle path in the test's temp dir. No CA or proxy variable.
func baseEnv(t *testing.T) vars {
	return vars{
		"PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
		"HOME": t.TempDir(),
		"LANG": "C.UTF-8",
	}
}

// startShim starts kai-entrypoint -- argv with env, with its own bundle
// path under dir.
func startShim(t *testing.T, env vars, dir string, argv ...string) (*proc, *shimRun) {
	t.Helper()
	run := &shimRun{bundle: filepath.Join(dir, "ca-bundle.pem")}
	run.env = env.with(vars{"KAI_CA_BUNDLE": run.bundle})
	run.argv = append([]string{S.entrypoint, "--"}, argv...)
	return startT(t, "", run.env, run.argv...), run
}

// finish waits for a started shim and parses its stdout as a report.
func (r *shimRun) finish(t *testing.T, p *proc, timeout time.Duration) {
	t.Helper()
	if !p.wait(timeout) {
		p.stop()
		t.Fatalf("kai-entrypoint still running after %s; stopped it\n%s", timeout, r.withOutput(p))
	}
	r.exitCode = p.exitCode
	r.stdout, r.stderr = p.stdout.String(), p.stderr.String()
	if r.docErr = json.Unmarshal([]byte(r.stdout), &r.doc); r.docErr != nil {
		r.docErr = fmt.Errorf("stdout is not a client report: %v", r.docErr)
	}
}

func (r *shimRun) withOutput(p *proc) string {
	r.stdout, r.stderr = p.stdout.String(), p.stderr.String()
	return r.String()
}

// runShim runs kai-entrypoint -- argv to completion.
func runShim(t *testing.T, env vars, argv ...string) *shimRun {
	t.Helper()
	p, run := startShim(t, env, t.TempDir(), argv...)
	run.finish(t, p, 90*time.Second)
	return run
}

// clientsRun is the Python stand-in and the Go client, each started
// through its own kai-entrypoint with the same environment.
type clientsRun struct {
	py, golang *shimRun
}

func standinArgv(urls []string) []string {
	argv := []string{python, S.standin, "clients"}
	for _, u := range urls {
		argv = append(argv, "--url", u)
	}
	return argv
}

// startClients starts both shims (Python stand-in and Go client) at once.
func startClients(t *testing.T, env vars, urls ...string) func(timeout time.Duration) *clientsRun {
	t.Helper()
	pyProc, py := startShim(t, env, t.TempDir(), standinArgv(urls)...)
	goProc, golang := startShim(t, env.with(vars{goClientMarker: "1"}), t.TempDir(), append([]string{S.self}, urls...)...)
	return func(timeout time.Duration) *clientsRun {
		var wg sync.WaitGroup
		wg.Add(2)
		go func() { defer wg.Done(); py.finish(t, pyProc, timeout) }()
		go func() { defer wg.Done(); golang.finish(t, goProc, timeout) }()
		wg.Wait()
		c := &clientsRun{py: py, golang: golang}
		recordVersions(t, c)
		return c
	}
}

// runClients runs every client through kai-entrypoint against urls.
func runClients(t *testing.T, env vars, urls ...string) *clientsRun {
	t.Helper()
	return startClients(t, env, urls...)(90 * time.Second)
}

func (c *clientsRun) runs() []*shimRun { return []*shimRun{c.py, c.golang} }

// showIfFailed logs kai-entrypoint's stderr (its log, then the client's
// stderr) for each run not shown yet, if the test has failed.
func (c *clientsRun) showIfFailed(t *testing.T) {
	t.Helper()
	if !t.Failed() {
		return
	}
	for _, run := range c.runs() {
		if !run.shown {
			run.shown = true
			t.Logf("kai-entrypoint exit %d, env %q, argv %q\n--- stderr ---\n%s", run.exitCode, run.env.list(), run.argv, run.stderr)
		}
	}
}

// find returns client's result for url, or fails the test saying why
// there is none.
func (c *clientsRun) find(t *testing.T, client, url string) (result, bool) {
	t.Helper()
	run := c.py
	if client == "go" {
		run = c.golang
	}
	if run.docErr != nil {
		if !run.shown {
			run.shown = true
			t.Errorf("%v\n%s", run.docErr, run)
		}
		t.Errorf("client %s, %s: no result (kai-entrypoint exit %d, output above)", client, url, run.exitCode)
		return result{}, false
	}
	for _, r := range run.doc.Results {
		if r.Client == client && r.URL == url {
			return r, true
		}
	}
	t.Errorf("client %s, %s: missing from the report\n%s", client, url, run)
	return result{}, false
}

// expectOK checks that every client got HTTP 200 from url, with the given
// proxy stamp echoed ("1" through mitmdump, "" direct), and for chat URLs
// the fixed completion. It records the outcome for the Verified-with table in docs/clients.md.
func expectOK(t *testing.T, c *clientsRun, scenario, url, stamp string) {
	t.Helper()
	for _, client := range allClients {
		r, found := c.find(t, client, url)
		if !found {
			record(client, scenario, false)
			continue
		}
		ok := true
		switch {
		case !r.OK || r.Status != 200:
			t.Errorf("client %s, %s %s: want HTTP 200, got %s", client, r.Method, url, r)
			ok = false
		case r.XViaMitm == nil || *r.XViaMitm != stamp:
			t.Errorf("client %s, %s %s: want x_via_mitm=%q (%s), got %s", client, r.Method, url, stamp, via(stamp), r)
			ok = false
		case strings.HasSuffix(url, "/chat/completions") && !strings.Contains(string(r.Body), completion):
			t.Errorf("client %s, POST %s: the completion %q is not in the body: %s", client, url, completion, r)
			ok = false
		}
		record(client, scenario, ok)
	}
	c.showIfFailed(t)
}

func via(stamp string) string {
	if stamp == "" {
		return "direct, not through mitmdump"
	}
	return "through mitmdump"
}

// certErrors is the certificate-verification failure each client must
// report when it does not trust the server's CA: error class and a
// fragment of the message. curl's is exit code 60.
var certErrors = map[string]struct{ class, text string }{
	"requests": {"requests.exceptions.SSLError", "CERTIFICATE_VERIFY_FAILED"},
	"httpx":    {"httpx.ConnectError", "CERTIFICATE_VERIFY_FAILED"},
	"aiohttp":  {"aiohttp.client_exceptions.ClientConnectorCertificateError", "CERTIFICATE_VERIFY_FAILED"},
	"urllib":   {"urllib.error.URLError", "CERTIFICATE_VERIFY_FAILED"},
	"curl":     {"CurlError", "SSL certificate problem"},
	"go":       {"*url.Error", "x509: certificate signed by unknown authority"},
}

// expectCertError checks that every client failed on url with its
// certificate-verification error.
func expectCertError(t *testing.T, c *clientsRun, scenario, url string) {
	t.Helper()
	for _, client := range allClients {
		r, found := c.find(t, client, url)
		if !found {
			record(client, scenario, false)
			continue
		}
		want := certErrors[client]
		ok := r.Error != "" && strings.HasSuffix(r.ErrorClass, want.class) && strings.Contains(r.Error, want.text)
		if client == "curl" {
			ok = ok && r.ExitCode == 60
		}
		if !ok {
			wantText := fmt.Sprintf("%s containing %q", want.class, want.text)
			if client == "curl" {
				wantText = fmt.Sprintf("curl exit 60 containing %q", want.text)
			}
			t.Errorf("client %s, %s %s: want the certificate-verification error %s, got %s", client, r.Method, url, wantText, r)
		}
		record(client, scenario, ok)
	}
	c.showIfFailed(t)
}

// flowsFor returns the lines of a mitmdump log that mention hostPort.
func flowsFor(log, hostPort string) []string {
	var out []string
	for _, line := range strings.Split(log, "\n") {
		if strings.Contains(line, hostPort) {
			out = append(out, line)
		}
	}
	return out
}

// waitFlows waits briefly for mitmdump to log flows to hostPort after
// offset, and returns them.
func waitFlows(m *mitm, offset int, hostPort string, settle time.Duration) []string {
	deadline := time.Now().Add(settle)
	for {
		flows := flowsFor(m.log()[offset:], hostPort)
		if len(flows) > 0 || time.Now().After(deadline) {
			return flows
		}
		time.Sleep(50 * time.Millisecond)
	}
}

var logCount = regexp.MustCompile(`\b(certificates|system|extra)=(\d+)\b`)

// loggedCounts returns the certificates=, system= and extra= numbers of
// the shim's bundle log line, or nil.
func loggedCounts(stderr string) map[string]int {
	for _, line := range strings.Split(stderr, "\n") {
		if !strings.Contains(line, "certificates=") {
			continue
		}
		out := map[string]int{}
		for _, m := range logCount.FindAllStringSubmatch(line, -1) {
			out[m[1]], _ = strconv.Atoi(m[2])
		}
		return out
	}
	return nil
}
