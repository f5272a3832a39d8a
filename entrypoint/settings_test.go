package entrypoint

import (
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
			s, err := LoadSettings()
			if err != nil {
				t.Fatal(err)
			}
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
		s, err := LoadSettings()
		if err != nil {
			t.Fatal(err)
		}
		c, err := s.Validate(nil)
		if err != nil {
			t.Fatalf("empty=%v: %v", empty, err)
		}
		if c.CABundle != DefaultCABundle || len(c.CertSources) != 1 || c.CertSources[0] != DefaultCertDir || c.CertExplicit ||
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
