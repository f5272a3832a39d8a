package entrypoint

import (
	"fmt"
	"reflect"
	"testing"
)

// TestSettingsNames checks that envconfig reads exactly the documented
// names: split_words must turn ProxyOpenai into PROXY_OPENAI and CABundle
// into CA_BUNDLE, and no unprefixed fallback (PROXY_HTTP) may be read.
func TestSettingsNames(t *testing.T) {
	want := map[string]func(Settings) string{
		"KAI_PROXY_HTTP":            func(s Settings) string { return s.ProxyHTTP },
		"KAI_PROXY_HTTPS":           func(s Settings) string { return s.ProxyHTTPS },
		"KAI_PROXY_ALL":             func(s Settings) string { return s.ProxyAll },
		"KAI_PROXY_NO":              func(s Settings) string { return s.ProxyNo },
		"KAI_PROXY_OPENAI":          func(s Settings) string { return s.ProxyOpenai },
		"KAI_CERT_DIRS":             func(s Settings) string { return s.CertDirs },
		"KAI_CA_BUNDLE":             func(s Settings) string { return s.CABundle },
		"KAI_WAIT":                  func(s Settings) string { return s.Wait },
		"KAI_JAVA_TRUSTSTORE":       func(s Settings) string { return s.JavaTruststore },
		"KAI_ENTRYPOINT_LOG_LEVEL":  func(s Settings) string { return s.EntrypointLogLevel },
		"KAI_ENTRYPOINT_LOG_FORMAT": func(s Settings) string { return s.EntrypointLogFormat },
	}
	if n := reflect.TypeOf(Settings{}).NumField(); n != len(want) || len(shimVarNames) != len(want) {
		t.Fatalf("Settings has %d fields and shimVarNames %d names; the test knows %d", n, len(shimVarNames), len(want))
	}
	for _, name := range shimVarNames {
		get, ok := want[name]
		if !ok {
			t.Errorf("shimVarNames has %s, which the test does not know", name)
			continue
		}
		t.Run(name, func(t *testing.T) {
			t.Setenv(name, "value-of-"+name)
			t.Setenv(name[len("KAI_"):], "unprefixed") // must be ignored
			s := LoadSettings()
			if got := get(s); got != "value-of-"+name {
				t.Errorf("%s=value-of-%s read as %q", name, name, got)
			}
		})
	}
}

// TestSettingsDefaults: unset and set-but-empty both mean the default.
func TestSettingsDefaults(t *testing.T) {
	for _, empty := range []bool{false, true} {
		if empty {
			for _, n := range shimVarNames {
				t.Setenv(n, "")
			}
		}
		c, err := LoadSettings().Validate(nil)
		if err != nil {
			t.Fatalf("empty=%v: %v", empty, err)
		}
		if c.CABundle != "/tmp/kai-entrypoint/ca-bundle.pem" || len(c.CertSources) != 1 || c.CertSources[0] != "/etc/kai/certs" || c.CertExplicit ||
			c.Wait != 0 || c.LogFormat != "text" || c.LogLevel.String() != "INFO" || len(c.Proxies) != 0 {
			t.Errorf("empty=%v: defaults not applied: %+v", empty, c)
		}
	}
}

func TestNewEnv(t *testing.T) {
	e := NewEnv([]string{"A=1", "B=x=y", "A=2", "noequals", "=bad", "C="})
	if got := e.Slice(); !reflect.DeepEqual(got, []string{"A=1", "B=x=y", "C="}) {
		t.Errorf("Slice() = %q; the first of duplicates must win, malformed entries go", got)
	}
	e.Set("B", "new")
	e.Set("D", "4")
	e.Unset("A")
	if got := e.Slice(); !reflect.DeepEqual(got, []string{"B=new", "C=", "D=4"}) {
		t.Errorf("after Set/Unset: %q", got)
	}
}

// TestValidateNearMisses: a KAI_ name within a couple of edits of one of
// the shim's names, case ignored, is warned about and passed through; under
// KAI_PROXY_ and KAI_ENTRYPOINT_ it stays an error, with the suggestion.
// Kai's own names and the pass-through names are neither.
func TestValidateNearMisses(t *testing.T) {
	const passed = " is not a kai-entrypoint variable (did you mean %s?); passed through to the command unchanged"
	tests := []struct {
		name    string // the variable set
		suggest string // the suggestion of the only warning; "" for no warning
		wantErr string // the only problem; "" for none
	}{
		{name: "KAI_CERT_DIR", suggest: "KAI_CERT_DIRS"},
		{name: "KAI_CERTS_DIR", suggest: "KAI_CERT_DIRS"},
		{name: "kai_cert_dirs", suggest: "KAI_CERT_DIRS"},
		{name: "KAI_CABUNDLE", suggest: "KAI_CA_BUNDLE"},
		{name: "KAI_CA_BUNDEL", suggest: "KAI_CA_BUNDLE"},
		{name: "KAI_WIAT", suggest: "KAI_WAIT"},
		{name: "Kai_Proxy_Https", suggest: "KAI_PROXY_HTTPS"}, // the strict prefixes are upper case
		{name: "KAI_PROXY_HTTPS_", wantErr: "KAI_PROXY_HTTPS_: unknown variable; did you mean KAI_PROXY_HTTPS? (known: KAI_PROXY_HTTP, KAI_PROXY_HTTPS, KAI_PROXY_ALL, KAI_PROXY_NO, KAI_PROXY_OPENAI)"},
		{name: "KAI_PROXY_HTTPX", wantErr: "KAI_PROXY_HTTPX: unknown variable; did you mean KAI_PROXY_HTTP or KAI_PROXY_HTTPS? (known: KAI_PROXY_HTTP, KAI_PROXY_HTTPS, KAI_PROXY_ALL, KAI_PROXY_NO, KAI_PROXY_OPENAI)"},
		{name: "KAI_ENTRYPOINT_LOG_FROMAT", wantErr: "KAI_ENTRYPOINT_LOG_FROMAT: unknown variable; did you mean KAI_ENTRYPOINT_LOG_FORMAT? (known: KAI_ENTRYPOINT_LOG_LEVEL, KAI_ENTRYPOINT_LOG_FORMAT)"},
		{name: "KAI_PROXY_SOCKS", wantErr: "KAI_PROXY_SOCKS: unknown variable (known: KAI_PROXY_HTTP, KAI_PROXY_HTTPS, KAI_PROXY_ALL, KAI_PROXY_NO, KAI_PROXY_OPENAI)"},
		// Kai's own settings (its pydantic settings, prefix kai_; KAI__* in README.md).
		{name: "KAI_DB_DSN"},
		{name: "KAI_LLM_PARAMS"},
		{name: "KAI_DB_DRIVERNAME"},
		{name: "KAI_DB_USERNAME"},
		{name: "KAI_DB_PASSWORD"},
		{name: "KAI_DB_HOST"},
		{name: "KAI_DB_PORT"},
		{name: "KAI_DB_DATABASE"},
		{name: "KAI__LOG_LEVEL"},
		// Pass-through names: this one is 2 edits from KAI_ENTRYPOINT_LOG_LEVEL.
		{name: "KAI_ENV_RYPOINT_LOG_LEVEL"},
		{name: "KAI_SECRET_X"},
		// The shim's own names, and names without the KAI_ prefix.
		{name: "KAI_CERT_DIRS"},
		{name: "KAI_WAIT"},
		{name: "CERT_DIRS"},
		{name: "KAI"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Settings{}.Validate([]string{tt.name + "=x"})
			var want []string
			if tt.suggest != "" {
				want = []string{tt.name + fmt.Sprintf(passed, tt.suggest)}
			}
			if !reflect.DeepEqual(c.Warnings, want) {
				t.Errorf("warnings %q, want %q", c.Warnings, want)
			}
			if got := fmt.Sprint(err); tt.wantErr == "" && err != nil || tt.wantErr != "" && got != tt.wantErr {
				t.Errorf("error %q, want %q", got, tt.wantErr)
			}
		})
	}
}

func TestOSADistance(t *testing.T) {
	tests := []struct {
		a, b string
		want int
	}{
		{a: "", b: "", want: 0},
		{a: "", b: "abc", want: 3},
		{a: "KAI_WAIT", b: "KAI_WAIT", want: 0},
		{a: "KAI_WIAT", b: "KAI_WAIT", want: 1},           // a swap
		{a: "KAI_CA_BUDNEL", b: "KAI_CA_BUNDLE", want: 2}, // two swaps (Levenshtein: 3)
		{a: "KAI_CERTS_DIR", b: "KAI_CERT_DIRS", want: 2}, // a deletion and an insertion
		{a: "KAI_DB_DSN", b: "KAI_WAIT", want: 6},
		{a: "ca", b: "abc", want: 3}, // no byte edited twice (Damerau proper: 2)
	}
	for _, tt := range tests {
		if got := osaDistance(tt.a, tt.b); got != tt.want {
			t.Errorf("osaDistance(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
		if got := osaDistance(tt.b, tt.a); got != tt.want {
			t.Errorf("osaDistance(%q, %q) = %d, want %d", tt.b, tt.a, got, tt.want)
		}
	}
}
