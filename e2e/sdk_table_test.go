package e2e

import (
	"fmt"
	"strings"
)

// sdkKey is the key a Debian 13 client's outcomes are recorded under,
// apart from the Debian 12 clients of the same name.
func sdkKey(client string) string { return "debian13/" + client }

// sdkRows describes each client of the Debian 13 table: its label, and the
// variables it takes its proxy and trust from (docs/clients.md; the suite
// shows the shim's exports are enough, not that no other is read).
var sdkRows = []struct{ client, label, reads string }{
	{"openai", "openai `OpenAI().chat.completions.create`", "`HTTPS_PROXY` (either case), `NO_PROXY`, `SSL_CERT_FILE` (httpx)"},
	{"openai-async", "openai `AsyncOpenAI().chat.completions.create`", "as openai"},
	{"ollama", "ollama `AsyncClient(host=...).chat`", "as openai (httpx); `127.0.0.1` from the shim's loopback entries"},
	{"boto3", "boto3 `bedrock-runtime` `converse` (`endpoint_url`)", "`HTTPS_PROXY` (either case), `NO_PROXY`, `AWS_CA_BUNDLE` (not `SSL_CERT_FILE`)"},
	{"grpc", "grpcio (unary call, TLS)", "lower-case `https_proxy` only, `no_grpc_proxy`/`no_proxy`, `GRPC_DEFAULT_SSL_ROOTS_FILE_PATH`"},
	{"google-auth", "google-auth `AuthorizedSession` (requests transport)", "as requests: `REQUESTS_CA_BUNDLE`"},
	{"httplib2", "httplib2", "`https_proxy` (either case), `no_proxy`, `HTTPLIB2_CA_CERTS`"},
	{"git", "git `ls-remote` and `clone` (dumb HTTP)", "`https_proxy` (either case), `no_proxy`, `GIT_SSL_CAINFO`"},
	{"pip", "pip `download` (simple index)", "`https_proxy` (either case), `no_proxy`, `PIP_CERT`; pip ≥ 24.2 also verifies through the system store (truststore), which follows `SSL_CERT_FILE`"},
	{"requests", "requests", "`https_proxy` (either case), `no_proxy`, `REQUESTS_CA_BUNDLE`"},
	{"httpx", "httpx", "`HTTPS_PROXY` (either case), `NO_PROXY`, `SSL_CERT_FILE`"},
	{"aiohttp", "aiohttp (`trust_env=True`)", "`HTTPS_PROXY` (either case), `NO_PROXY`, `SSL_CERT_FILE`"},
	{"urllib", "urllib.request (Python)", "`https_proxy` (lowercase wins), `no_proxy`, `SSL_CERT_FILE`"},
	{"curl", "curl", "`https_proxy`/`HTTPS_PROXY`, `no_proxy`, `CURL_CA_BUNDLE`/`SSL_CERT_FILE`"},
}

// sdkTable is the Debian 13 table, from the outcomes recorded under
// sdkKey; "" when no SDK test ran. The caller holds outcomes.mu.
func sdkTable() string {
	if S13.versions == nil {
		return ""
	}
	var b strings.Builder
	b.WriteString("Debian 13 (trixie) root file system, Kai's SDK stack (`e2e/sdk_test.go`):\n\n")
	b.WriteString("| Client | Version | Variables it reads | Result |\n|---|---|---|---|\n")
	for _, row := range sdkRows {
		version := "?"
		if v, ok := S13.versions[row.client]; ok && v != nil {
			version = fmt.Sprint(v)
		}
		if row.client == "urllib" {
			version = "Python " + version
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", row.label, version, row.reads, results(sdkKey(row.client)))
	}
	fmt.Fprintf(&b, "\nWith Python %v, %v, botocore %v; the shim and mitmdump as above.\n",
		S13.versions["python"], S13.versions["openssl"], S13.versions["botocore"])
	return b.String()
}
