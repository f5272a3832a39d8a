package entrypoint

import (
	"io"

	"github.com/kelseyhightower/envconfig"
)

// usageHead and usageTail frame the variable table, which envconfig
// generates from Settings' desc, default and example tags.
const usageHead = `Usage: kai-entrypoint [--check] [--] COMMAND [ARG...]
       kai-entrypoint --check
       kai-entrypoint --probe URL [--probe URL...] [--probe-save DIR] [--probe-timeout DURATION]
       kai-entrypoint --help | --version

Derives the proxy and CA environment every client of the Kai server needs,
writes one CA bundle (system roots plus extra CAs), then execs COMMAND with
that environment. Its own flags come before COMMAND; everything from the
first other word (or after --) is the command, passed on untouched.

  --check    validate, print what would be set, exit 0 (valid) or 78;
             no waiting, no file written, no exec
  --probe URL
             try URL (repeatable) with the derived proxies and the combined
             CA bundle, held in memory, step by step: proxy choice, DNS and
             TCP, CONNECT, TLS, one GET; exit 0 (all answered) or 69; KAI_WAIT
             applies; no file written, no exec
  --probe-save DIR
             save the root certificate of an untrusted chain into DIR
  --probe-timeout DURATION
             the time each URL may take (default 10s)
  --help     this text
  --version  the version

Variables:
`

const usageTail = `  KAI_ENV_<NAME>=<value>
        sets <NAME>=<value> for the command, spelling kept; wins over
        everything the shim derives
        e.g.  KAI_ENV_no_proxy=llm.internal   KAI_ENV_OPENAI_API_BASE=https://llm.internal/v1
  KAI_SECRET_<NAME>=<path>
        sets <NAME> to the contents of the file <path>, less one trailing
        newline; the value is never printed
        e.g.  KAI_SECRET_OPENAI_API_KEY=/run/secrets/openai-api-key

Exported: HTTP_PROXY/http_proxy, HTTPS_PROXY/https_proxy, ALL_PROXY/all_proxy,
NO_PROXY/no_proxy/no_grpc_proxy, OPENAI_PROXY (only from KAI_PROXY_OPENAI),
and, when an extra CA is found, SSL_CERT_FILE, REQUESTS_CA_BUNDLE,
CURL_CA_BUNDLE, AWS_CA_BUNDLE, GRPC_DEFAULT_SSL_ROOTS_FILE_PATH,
NODE_EXTRA_CA_CERTS, PIP_CERT, GIT_SSL_CAINFO, HTTPLIB2_CA_CERTS and
CLOUDSDK_CORE_CUSTOM_CA_CERTS_FILE, all pointing at the bundle.
Inherited HTTP_PROXY, HTTPS_PROXY, ALL_PROXY and NO_PROXY (either spelling)
are adopted, validated and exported the same way where no KAI_PROXY_* is set.
The shim's own variables are removed from the command's environment.

Exit codes: 64 usage, 69 a --probe failed, 78 configuration error (every problem listed),
126 command not executable, 127 command not found, 128+N signal N before exec.

Examples:
  KAI_PROXY_HTTPS=http://proxy.corp:3128 KAI_CERT_DIRS=/etc/kai/certs \
    kai-entrypoint -- python3 -m kai_mcp_solution_server
  KAI_PROXY_HTTPS=mitmproxy:8080 KAI_CERT_DIRS=/etc/kai/mitmproxy/mitmproxy-ca-cert.pem KAI_WAIT=30s \
    kai-entrypoint --check
`

// usageTable is an envconfig.Usagef template over Settings' fields.
const usageTable = `{{range .}}  {{usage_key .}}
        {{usage_description .}}{{if usage_default .}} (default {{usage_default .}}){{end}}
        e.g.  {{usage_key .}}={{.Tags.Get "example"}}
{{end}}`

// WriteUsage writes the --help text.
func WriteUsage(w io.Writer) error {
	if _, err := io.WriteString(w, usageHead); err != nil {
		return err
	}
	var s Settings
	if err := envconfig.Usagef(Prefix, &s, w, usageTable); err != nil {
		return err
	}
	_, err := io.WriteString(w, usageTail)
	return err
}
