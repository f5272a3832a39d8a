package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"sort"
	"strings"
	"sync"
	"testing"
)

// The "Verified with" tables in docs/clients.md are built from what the suite
// observed: each client's version as it reported it, and which scenarios it
// passed. Set KAI_E2E_TABLE_OUT=file to have it written; with -v it is also
// printed.

var outcomes struct {
	mu       sync.Mutex
	byClient map[string]map[string]bool // client -> scenario -> passed
	order    []string                   // scenarios in first-seen order
	versions map[string]any             // as reported by the stand-in
}

func record(client, scenario string, ok bool) {
	outcomes.mu.Lock()
	defer outcomes.mu.Unlock()
	if outcomes.byClient == nil {
		outcomes.byClient = map[string]map[string]bool{}
	}
	if outcomes.byClient[client] == nil {
		outcomes.byClient[client] = map[string]bool{}
	}
	seen := false
	for _, s := range outcomes.order {
		seen = seen || s == scenario
	}
	if !seen {
		outcomes.order = append(outcomes.order, scenario)
	}
	prev, had := outcomes.byClient[client][scenario]
	outcomes.byClient[client][scenario] = ok && (!had || prev)
}

// recordVersions keeps the client versions the stand-in reported.
func recordVersions(t *testing.T, c *clientsRun) {
	if c.py.docErr != nil || c.py.doc.Versions == nil {
		return
	}
	outcomes.mu.Lock()
	_, seen := outcomes.versions["python"]
	outcomes.mu.Unlock()
	for k, v := range c.py.doc.Versions {
		recordVersion(k, v)
	}
	if !seen {
		t.Logf("client versions: %v, go %s", c.py.doc.Versions, runtime.Version())
	}
}

// recordVersion keeps the version of one client (a versionKey of clientRows).
func recordVersion(key string, v any) {
	outcomes.mu.Lock()
	defer outcomes.mu.Unlock()
	if outcomes.versions == nil {
		outcomes.versions = map[string]any{}
	}
	outcomes.versions[key] = v
}

// clientRows describes each client: how to name its version and the
// variables it reads (docs/clients.md's client table; the suite shows they
// are enough, not that no other is read).
var clientRows = []struct {
	client, label, versionKey, reads string
}{
	{"requests", "requests", "requests", "`http_proxy`/`https_proxy` (either case), `no_proxy`, `REQUESTS_CA_BUNDLE` (not `SSL_CERT_FILE`)"},
	{"httpx", "httpx", "httpx", "`HTTP_PROXY`/`HTTPS_PROXY` (either case), `NO_PROXY`, `SSL_CERT_FILE`"},
	{"aiohttp", "aiohttp (`trust_env=True`)", "aiohttp", "`HTTP_PROXY`/`HTTPS_PROXY` (either case), `NO_PROXY`, `SSL_CERT_FILE`"},
	{"urllib", "urllib.request (Python)", "python", "`http_proxy`/`https_proxy` (lowercase wins), `no_proxy`, `SSL_CERT_FILE`"},
	{"curl", "curl", "curl", "`http_proxy` (lowercase only), `https_proxy`/`HTTPS_PROXY`, `no_proxy`, `CURL_CA_BUNDLE`/`SSL_CERT_FILE`"},
	{"go", "Go net/http", "", "`HTTP_PROXY`/`HTTPS_PROXY` (uppercase wins), `NO_PROXY`, `SSL_CERT_FILE`"},
	{"HttpClient", "Java `HttpClient` (OpenJDK)", "java", "none of the above: `JAVA_TOOL_OPTIONS` with the flags of `KAI_JAVA_TRUSTSTORE` (`-Dhttp(s).proxyHost/Port`, `-Dhttp.nonProxyHosts`, `-Djavax.net.ssl.trustStore`)"},
	{"HttpsURLConnection", "Java `HttpsURLConnection` (OpenJDK)", "java", "as Java `HttpClient`"},
	{"maven", "Maven", "maven", "as Java `HttpClient` (it reads `JAVA_TOOL_OPTIONS` like any JVM; `MAVEN_OPTS` too)"},
}

func verifiedTable() string {
	outcomes.mu.Lock()
	defer outcomes.mu.Unlock()
	if len(outcomes.byClient) == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteString("| Client | Version | Variables it reads | Result |\n|---|---|---|---|\n")
	for _, row := range clientRows {
		version := "?"
		if row.client == "go" {
			version = strings.TrimPrefix(runtime.Version(), "go")
		} else if v, ok := outcomes.versions[row.versionKey]; ok && v != nil {
			version = fmt.Sprint(v)
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", row.label, version, row.reads, results(row.client))
	}
	var extra []string
	if v, ok := outcomes.versions["python"]; ok {
		extra = append(extra, fmt.Sprintf("Python %v (`/usr/bin/python3`)", v))
	}
	if v, ok := outcomes.versions["openssl"]; ok {
		extra = append(extra, fmt.Sprint(v))
	}
	if out, err := exec.Command("mitmdump", "--version").Output(); err == nil {
		for _, line := range strings.Split(string(out), "\n") {
			if strings.HasPrefix(line, "Mitmproxy:") {
				extra = append(extra, "mitmproxy "+strings.TrimSpace(strings.TrimPrefix(line, "Mitmproxy:")))
			}
		}
	}
	sort.Strings(extra)
	fmt.Fprintf(&b, "\nWith %s; Debian %s.\n", strings.Join(extra, ", "), debianVersion())
	if sdk := sdkTable(); sdk != "" {
		b.WriteString("\n" + sdk)
	}
	return b.String()
}

// results lists the scenarios client passed, or those it failed. The
// caller holds outcomes.mu.
func results(client string) string {
	var passed, failed []string
	for _, s := range outcomes.order {
		ok, ran := outcomes.byClient[client][s]
		switch {
		case !ran:
		case ok:
			passed = append(passed, s)
		default:
			failed = append(failed, s)
		}
	}
	if len(failed) > 0 {
		return "**FAIL**: " + strings.Join(failed, ", ")
	}
	return "pass: " + strings.Join(passed, ", ")
}

func debianVersion() string {
	b, err := os.ReadFile("/etc/debian_version")
	if err != nil {
		return "?"
	}
	return strings.TrimSpace(string(b))
}

func writeTable() {
	table := verifiedTable()
	if table == "" {
		return
	}
	if testing.Verbose() {
		fmt.Printf("\nVerified with (from this run):\n\n%s\n", table)
	}
	if p := os.Getenv(tableOut); p != "" {
		if err := os.WriteFile(p, []byte(table), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "e2e: writing the table:", err)
		}
	}
}
