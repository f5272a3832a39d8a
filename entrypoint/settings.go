package entrypoint

import (
	"fmt"
	"log/slog"
	"reflect"
	"strings"
	"time"

	"github.com/hashicorp/go-multierror"
	"github.com/kelseyhightower/envconfig"
)

// Prefix is the envconfig prefix of every variable the shim reads itself.
const Prefix = "KAI"

// Settings are the shim's own variables, decoded by envconfig from the
// process environment (KAI_PROXY_HTTP, KAI_CERT_DIRS, ...).
//
// Every field is a string on purpose: envconfig stops at the first value it
// cannot decode, and every problem must be reported at once, so parsing and
// checking happen in Validate. No field has an `envconfig:"..."` tag, because
// with one envconfig falls back to the unprefixed name (PROXY_HTTP).
// The default tags are the one place defaults are written: envconfig and
// --help read them, and so does Validate (defaultOf), because envconfig
// lets a set-but-empty value beat a default, and here an empty value always
// counts as unset.
type Settings struct {
	ProxyHTTP   string `split_words:"true" desc:"proxy for http:// URLs, exported as HTTP_PROXY and http_proxy" example:"http://proxy.corp:3128"`
	ProxyHTTPS  string `split_words:"true" desc:"proxy for https:// URLs, exported as HTTPS_PROXY and https_proxy" example:"http://user:p%40ss@proxy.corp:3128"`
	ProxyAll    string `split_words:"true" desc:"proxy for every scheme, exported as ALL_PROXY and all_proxy" example:"socks5h://proxy.corp:1080"`
	ProxyNo     string `split_words:"true" desc:"hosts that bypass the proxy, exported as NO_PROXY, no_proxy and no_grpc_proxy (loopback added when a proxy is set)" example:"llm.internal,.corp.example,10.0.0.0/8"`
	ProxyOpenai string `split_words:"true" desc:"exported as OPENAI_PROXY for langchain-openai; usually wrong, see docs/proxies.md" example:"http://proxy.corp:3128"`
	// The image bakes the repository's certs/ folder at CertDirs' default.
	CertDirs string `split_words:"true" desc:"comma-separated folders or files with extra CA certificates" default:"/etc/kai/certs" example:"/etc/kai/certs,/run/secrets/corp-ca.crt"`
	// CABundle's default is under /tmp, which stays writable under
	// OpenShift's read-only root file system (an emptyDir).
	CABundle string `split_words:"true" desc:"where the combined bundle (system roots + extra CAs) is written" default:"/tmp/kai-entrypoint/ca-bundle.pem" example:"/tmp/kai-entrypoint/ca-bundle.pem"`
	Wait     string `split_words:"true" desc:"how long to wait for listed cert sources and proxies to be ready (Go duration, 0 = no wait)" default:"0s" example:"30s"`

	JavaTruststore string `split_words:"true" desc:"opt in for JVMs and Maven: where to write a PKCS#12 trust store of the bundle; JAVA_TOOL_OPTIONS then gets it and the proxy flags" example:"/tmp/kai-entrypoint/truststore.p12"`

	EntrypointLogLevel  string `split_words:"true" desc:"debug, info, warn or error" default:"info" example:"debug"`
	EntrypointLogFormat string `split_words:"true" desc:"text or json" default:"text" example:"json"`
}

// Config is Settings after validation: parsed, defaulted and normalised.
type Config struct {
	Proxies     []Proxy // in the order of proxyVars, set or adopted ones only
	ProxyNo     string  // raw KAI_PROXY_NO or the adopted list, "" when neither
	ProxyNoFrom string  // where ProxyNo came from: KAI_PROXY_NO or "inherited NAME"
	// KubernetesHost is the inherited KUBERNETES_SERVICE_HOST: in a pod,
	// the cluster's own names bypass the proxy.
	KubernetesHost string
	CertSources    []string
	CertExplicit   bool // KAI_CERT_DIRS was set, so every entry must exist
	CABundle       string
	Wait           time.Duration
	LogLevel       slog.Level
	LogFormat      string
	JavaTrustStore string   // KAI_JAVA_TRUSTSTORE, "" when unset
	Warnings       []string // near misses of the shim's names, passed through

	err error // the problems Validate found, for NewPlan
}

// LoadSettings reads the shim's variables from the process environment.
func LoadSettings() Settings {
	var s Settings
	envconfig.Process(Prefix, &s) // string fields only: no value can fail
	return s
}

// settingTag returns the tag key (default, example) of the Settings field
// named field.
func settingTag(field, key string) string {
	f, _ := reflect.TypeFor[Settings]().FieldByName(field)
	return f.Tag.Get(key)
}

// Validate checks every setting and the names of the shim's variables in
// environ, and returns the Config with every problem at once. An empty
// setting gets its default.
func (s Settings) Validate(environ []string) (*Config, error) {
	var errs *multierror.Error
	c := &Config{}
	v := reflect.ValueOf(&s).Elem()
	for i := range v.NumField() {
		if strings.TrimSpace(v.Field(i).String()) == "" {
			v.Field(i).SetString(v.Type().Field(i).Tag.Get("default"))
		}
	}

	// A proxy variable the environment already has (OLM injects upper-case
	// ones only) is adopted where no KAI_PROXY_* setting replaces it.
	inherited := NewEnv(environ)
	for _, pv := range proxyVars {
		from, raw := pv.Name, strings.TrimSpace(pv.setting(s))
		if raw == "" && pv.Inherit {
			from, raw = c.adopt(inherited, pv.Exports)
		}
		if raw == "" {
			continue
		}
		p, err := ParseProxy(from, raw)
		if err != nil {
			errs = multierror.Append(errs, err)
			continue
		}
		p.Exports = pv.Exports
		c.Proxies = append(c.Proxies, p)
	}
	c.ProxyNoFrom, c.ProxyNo = "KAI_PROXY_NO", strings.TrimSpace(s.ProxyNo)
	if c.ProxyNo == "" {
		c.ProxyNoFrom, c.ProxyNo = c.adopt(inherited, noProxyExports[:2])
	}
	c.KubernetesHost, _ = inherited.Get("KUBERNETES_SERVICE_HOST")

	// The default is filled in above, so whether the list was given is
	// read from environ: only a given list must exist.
	c.CertSources = splitList(s.CertDirs)
	if len(c.CertSources) == 0 { // a list of blanks and commas
		c.CertSources = splitList(settingTag("CertDirs", "default"))
	}
	given, _ := inherited.Get("KAI_CERT_DIRS")
	c.CertExplicit = strings.TrimSpace(given) != ""

	c.CABundle = strings.TrimSpace(s.CABundle)
	sslCertFile, _ := inherited.Get("SSL_CERT_FILE")
	javaStore, err := checkJavaTrustStore(s.JavaTruststore, c.CABundle, sslCertFile)
	if err != nil {
		errs = multierror.Append(errs, err)
	}
	c.JavaTrustStore = javaStore
	if !strings.HasPrefix(c.CABundle, "/") {
		errs = multierror.Append(errs, fmt.Errorf("KAI_CA_BUNDLE=%q: must be an absolute path", s.CABundle))
	}

	d, err := time.ParseDuration(strings.TrimSpace(s.Wait))
	switch {
	case err != nil:
		errs = multierror.Append(errs, fmt.Errorf("KAI_WAIT=%q: not a duration (examples: 30s, 2m)", s.Wait))
	case d < 0:
		errs = multierror.Append(errs, fmt.Errorf("KAI_WAIT=%q: must not be negative", s.Wait))
	default:
		c.Wait = d
	}

	switch lvl := strings.ToLower(strings.TrimSpace(s.EntrypointLogLevel)); lvl {
	case "info":
		c.LogLevel = slog.LevelInfo
	case "debug":
		c.LogLevel = slog.LevelDebug
	case "warn", "warning":
		c.LogLevel = slog.LevelWarn
	case "error":
		c.LogLevel = slog.LevelError
	default:
		errs = multierror.Append(errs, fmt.Errorf("KAI_ENTRYPOINT_LOG_LEVEL=%q: must be debug, info, warn or error", s.EntrypointLogLevel))
	}
	switch f := strings.ToLower(strings.TrimSpace(s.EntrypointLogFormat)); f {
	case "text":
		c.LogFormat = "text"
	case "json":
		c.LogFormat = "json"
	default:
		errs = multierror.Append(errs, fmt.Errorf("KAI_ENTRYPOINT_LOG_FORMAT=%q: must be text or json", s.EntrypointLogFormat))
	}

	// An unknown name under a strict prefix is an error (a proxy typo must
	// not start the server without its proxy), with the names it is a near
	// miss of; any other near miss is a warning.
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		like := strings.Join(nearMisses(name), " or ")
		switch {
		case isUnknownShimName(name):
			guess := ""
			if like != "" {
				guess = "; did you mean " + like + "?"
			}
			errs = multierror.Append(errs, fmt.Errorf("%s: unknown variable%s (known: %s)", name, guess, strings.Join(knownNamesLike(name), ", ")))
		case like != "":
			c.Warnings = append(c.Warnings, fmt.Sprintf("%s is not a kai-entrypoint variable (did you mean %s?); passed through to the command unchanged", name, like))
		}
	}
	c.err = asConfigError(errs)
	return c, c.err
}

// adopt returns the inherited value of a variable that has an upper- and
// a lower-case spelling (names: upper first), as "inherited NAME" and the
// value. An empty value counts as unset. When both are set and differ the
// lower-case one wins, as in CPython and curl, with a warning.
func (c *Config) adopt(env *Env, names []string) (from, value string) {
	upper, _ := env.Get(names[0])
	lower, _ := env.Get(names[1])
	upper, lower = strings.TrimSpace(upper), strings.TrimSpace(lower)
	switch {
	case lower != "" && upper != "" && lower != upper:
		c.Warnings = append(c.Warnings, fmt.Sprintf("inherited %s=%q and %s=%q differ: using %s, as Python and curl do", names[1], RedactURL(lower), names[0], RedactURL(upper), names[1]))
		fallthrough
	case lower != "":
		return "inherited " + names[1], lower
	case upper != "":
		return "inherited " + names[0], upper
	}
	return "", ""
}

// splitList splits a comma-separated list, trims every entry and drops
// empty ones.
func splitList(s string) []string {
	var out []string
	for _, e := range strings.Split(s, ",") {
		if e = strings.TrimSpace(e); e != "" {
			out = append(out, e)
		}
	}
	return out
}
