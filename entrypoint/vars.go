package entrypoint

import "strings"

// This file holds the data the shim works from: which variables it reads
// and which it exports. The defaults are the Settings' default tags. The
// logic lives elsewhere.

const (
	javaStoreVar = "KAI_JAVA_TRUSTSTORE"
	envPrefix    = "KAI_ENV_"
	secretPrefix = "KAI_SECRET_"
)

// proxyVar maps one KAI_PROXY_* setting to the variables it is exported as.
type proxyVar struct {
	Name    string   // the shim's variable
	Exports []string // every spelling some client reads, upper-case first
	Inherit bool     // without the setting, an inherited value is adopted
	setting func(Settings) string
}

// proxyVars lists the proxy settings in the order they are reported.
// Both spellings get the same value: curl reads only lower-case http_proxy,
// gRPC only lower-case names, Go prefers upper-case.
var proxyVars = []proxyVar{
	{"KAI_PROXY_HTTP", []string{"HTTP_PROXY", "http_proxy"}, true, func(s Settings) string { return s.ProxyHTTP }},
	{"KAI_PROXY_HTTPS", []string{"HTTPS_PROXY", "https_proxy"}, true, func(s Settings) string { return s.ProxyHTTPS }},
	{"KAI_PROXY_ALL", []string{"ALL_PROXY", "all_proxy"}, true, func(s Settings) string { return s.ProxyAll }},
	// langchain-openai's ChatOpenAI; only ever from this variable (docs/proxies.md).
	{"KAI_PROXY_OPENAI", []string{"OPENAI_PROXY"}, false, func(s Settings) string { return s.ProxyOpenai }},
}

// noProxyExports are the names the no-proxy list is exported as, the
// upper- and lower-case spellings first. gRPC reads no_grpc_proxy before
// no_proxy.
var noProxyExports = []string{"NO_PROXY", "no_proxy", "no_grpc_proxy"}

// loopbackNoProxy is appended to an owned no-proxy list, so that a local
// model server is never sent through the proxy (konveyor/editor-extensions#1415).
var loopbackNoProxy = []string{"localhost", "127.0.0.1", "::1"}

// kubernetesNoProxy is appended, with the API server's address
// (KUBERNETES_SERVICE_HOST), to a no-proxy list written inside a pod: the
// cluster's services (an LLM gateway, the database) are never sent to a
// corporate proxy.
var kubernetesNoProxy = []string{".svc", ".cluster.local"}

// proxySchemes are the accepted proxy schemes with their default ports.
// Clients disagree on default ports, so the port is always made explicit.
var proxySchemes = map[string]string{
	"http":    "80",
	"https":   "443",
	"socks4":  "1080",
	"socks4a": "1080",
	"socks5":  "1080",
	"socks5h": "1080",
}

// javaProxyProps are the JVM's proxy properties (PREFIX.proxyHost and
// PREFIX.proxyPort), each with the proxy variable it is set from; ALL_PROXY
// stands in for an unset one.
var javaProxyProps = []struct{ Prefix, From string }{
	{"http", "HTTP_PROXY"},
	{"https", "HTTPS_PROXY"},
}

// caVars are pointed at the combined bundle, overriding inherited values:
// each client reads a different one, and each replaces its default store.
var caVars = []struct{ Name, ReadBy string }{
	{"SSL_CERT_FILE", "OpenSSL, Python ssl/urllib, httpx, aiohttp, openai, google-genai, curl, Go"},
	{"REQUESTS_CA_BUNDLE", "requests (ignores SSL_CERT_FILE)"},
	{"CURL_CA_BUNDLE", "curl; requests when REQUESTS_CA_BUNDLE is unset"},
	{"AWS_CA_BUNDLE", "boto3/botocore"},
	{"GRPC_DEFAULT_SSL_ROOTS_FILE_PATH", "grpcio (otherwise its own roots.pem)"},
	{"NODE_EXTRA_CA_CERTS", "Node.js (adds to its store)"},
	{"PIP_CERT", "pip"},
	{"GIT_SSL_CAINFO", "git"},
	{"HTTPLIB2_CA_CERTS", "httplib2 (google-api-python-client)"},
	{"CLOUDSDK_CORE_CUSTOM_CA_CERTS_FILE", "gcloud"},
}

// shimNames are the shim's own variables. They are removed from the
// command's environment, as is every name with one of shimPrefixes.
var shimVarNames = []string{
	"KAI_PROXY_HTTP", "KAI_PROXY_HTTPS", "KAI_PROXY_ALL", "KAI_PROXY_NO", "KAI_PROXY_OPENAI",
	"KAI_CERT_DIRS", "KAI_CA_BUNDLE", "KAI_WAIT", "KAI_JAVA_TRUSTSTORE",
	"KAI_ENTRYPOINT_LOG_LEVEL", "KAI_ENTRYPOINT_LOG_FORMAT",
}

var shimNames = func() map[string]bool {
	m := make(map[string]bool, len(shimVarNames))
	for _, n := range shimVarNames {
		m[n] = true
	}
	return m
}()

var shimPrefixes = []string{"KAI_PROXY_", "KAI_ENV_", "KAI_SECRET_", "KAI_ENTRYPOINT_"}

// nearMissDistance is how many edits (see osaDistance; case ignored) from
// one of shimVarNames a KAI_ name may be to be taken for a typo of it. At 2
// it catches KAI_CERTS_DIR; Kai's own names (KAI_DB_DSN, KAI_LLM_PARAMS,
// KAI_DB_HOST, ...) are at least 6 edits away.
const nearMissDistance = 2

// strictPrefixes are the prefixes under which an unknown name is a typo
// rather than a variable for someone else.
var strictPrefixes = []string{"KAI_PROXY_", "KAI_ENTRYPOINT_"}

// isShimName reports whether name is one of the shim's own variables.
func isShimName(name string) bool {
	if shimNames[name] {
		return true
	}
	for _, p := range shimPrefixes {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

// isUnknownShimName reports a KAI_PROXY_* or KAI_ENTRYPOINT_* name the shim
// does not know, such as the typo KAI_PROXY_HTTP_S.
func isUnknownShimName(name string) bool {
	if shimNames[name] {
		return false
	}
	for _, p := range strictPrefixes {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

// knownNamesLike lists the known names that share name's prefix, for the
// error message.
func knownNamesLike(name string) []string {
	var out []string
	for _, p := range strictPrefixes {
		if !strings.HasPrefix(name, p) {
			continue
		}
		for _, n := range shimVarNames {
			if strings.HasPrefix(n, p) {
				out = append(out, n)
			}
		}
	}
	return out
}
