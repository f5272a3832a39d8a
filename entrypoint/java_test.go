package entrypoint

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"software.sslmate.com/src/go-pkcs12"
)

func TestJavaNonProxyHosts(t *testing.T) {
	tests := []struct {
		list, want  string
		wantDropped []string
	}{
		{list: "*", want: "*"},
		{list: ".example.com", want: "*.example.com"},
		{list: "example.com", want: "example.com|*.example.com"},
		{list: "10.1.2.3", want: "10.1.2.3"},
		{list: "::1", want: "[::1]"},
		{list: "fd00::5", want: "[fd00::5]"},
		{list: "10.0.0.0/8,llm.internal,fd00::/8", want: "llm.internal|*.llm.internal", wantDropped: []string{"10.0.0.0/8", "fd00::/8"}},
		{list: ".svc,.cluster.local,10.96.0.1,localhost,127.0.0.1,::1", want: "*.svc|*.cluster.local|10.96.0.1|localhost|*.localhost|127.0.0.1|[::1]"},
	}
	for _, tt := range tests {
		got, dropped := javaNonProxyHosts(tt.list)
		if got != tt.want || !slices.Equal(dropped, tt.wantDropped) {
			t.Errorf("javaNonProxyHosts(%q) = %q, %q; want %q, %q", tt.list, got, dropped, tt.want, tt.wantDropped)
		}
	}
}

// TestRunJava runs the whole plan with KAI_JAVA_TRUSTSTORE: the flags
// JAVA_TOOL_OPTIONS gets for each proxy shape, with and without extra CAs,
// and the configuration errors.
func TestRunJava(t *testing.T) {
	const (
		store    = "-Djavax.net.ssl.trustStore=$DIR/out/t.p12 -Djavax.net.ssl.trustStoreType=PKCS12"
		loopback = "localhost|*.localhost|127.0.0.1|[::1]"
	)
	java := func(kv ...string) map[string]string {
		m := map[string]string{"KAI_JAVA_TRUSTSTORE": "$DIR/out/t.p12"}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	withCA := map[string]string{"certs/ca.pem": "<ca>"}
	tests := []struct {
		name      string
		env       map[string]string
		files     map[string]string
		check     bool
		wantOpts  string // JAVA_TOOL_OPTIONS, or unset
		wantStore bool   // a trust store written at $DIR/out/t.p12
		wantWarn  []string
		wantErr   []string
	}{
		{name: "not set: nothing for JVMs", env: map[string]string{"KAI_CERT_DIRS": "$DIR/certs", "KAI_PROXY_HTTPS": "proxy:3128"}, files: withCA, wantOpts: unset},
		{name: "no extra CA and no proxy: nothing", env: java(), wantOpts: unset},
		{name: "extra CA only: the store", env: java("KAI_CERT_DIRS", "$DIR/certs"), files: withCA, wantOpts: store, wantStore: true},
		{name: "no extra CA: proxy flags only", env: java("KAI_PROXY_HTTPS", "proxy:3128"),
			wantOpts: "-Dhttps.proxyHost=proxy -Dhttps.proxyPort=3128 -Dhttp.nonProxyHosts=" + loopback},
		{name: "http and https proxies and no-proxy list converted", env: java("KAI_CERT_DIRS", "$DIR/certs", "KAI_PROXY_HTTP", "http://p1:8080", "KAI_PROXY_HTTPS", "p2", "KAI_PROXY_NO", ".corp,10.0.0.0/8"),
			files: withCA, wantStore: true,
			wantOpts: store + " -Dhttp.proxyHost=p1 -Dhttp.proxyPort=8080 -Dhttps.proxyHost=p2 -Dhttps.proxyPort=80 -Dhttp.nonProxyHosts=*.corp|" + loopback,
			wantWarn: []string{"the no-proxy IP ranges 10.0.0.0/8 are left out of http.nonProxyHosts"}},
		{name: "inherited proxies adopted", env: java("HTTPS_PROXY", "http://[fd00::1]:3128", "NO_PROXY", "*"),
			wantOpts: "-Dhttps.proxyHost=fd00::1 -Dhttps.proxyPort=3128 -Dhttp.nonProxyHosts=*"},
		{name: "ALL_PROXY stands in for both", env: java("KAI_PROXY_ALL", "http://p:3128", "KAI_PROXY_HTTP", "http://h:1"),
			wantOpts: "-Dhttp.proxyHost=h -Dhttp.proxyPort=1 -Dhttps.proxyHost=p -Dhttps.proxyPort=3128 -Dhttp.nonProxyHosts=" + loopback},
		{name: "a SOCKS proxy is not passed: a warning", env: java("KAI_PROXY_ALL", "socks5h://p"), wantOpts: unset,
			wantWarn: []string{"KAI_PROXY_ALL is a socks5h:// proxy: the JVM's proxy properties take an http:// proxy only"}},
		{name: "credentials: warned and never in the flags", env: java("KAI_PROXY_HTTPS", "http://u:hunter2@p:3128"),
			wantOpts: "-Dhttps.proxyHost=p -Dhttps.proxyPort=3128 -Dhttp.nonProxyHosts=" + loopback,
			wantWarn: []string{"KAI_PROXY_HTTPS has credentials, which the JVM cannot take from system properties"}},
		{name: "KAI_PROXY_OPENAI is not for JVMs", env: java("KAI_PROXY_OPENAI", "http://p:1"), wantOpts: unset},
		{name: "inherited JAVA_TOOL_OPTIONS kept in front", env: java("KAI_PROXY_HTTPS", "p:1", "JAVA_TOOL_OPTIONS", "-Xmx1g  -Dfoo=bar"),
			wantOpts: "-Xmx1g -Dfoo=bar -Dhttps.proxyHost=p -Dhttps.proxyPort=1 -Dhttp.nonProxyHosts=" + loopback},
		{name: "run twice: the shim's own flags not repeated", files: withCA, wantStore: true,
			env: java("KAI_CERT_DIRS", "$DIR/certs", "KAI_PROXY_HTTPS", "p:1",
				"JAVA_TOOL_OPTIONS", "-Xmx1g "+store+" -Dhttps.proxyHost=p -Dhttps.proxyPort=1 -Dhttp.nonProxyHosts="+loopback),
			wantOpts: "-Xmx1g " + store + " -Dhttps.proxyHost=p -Dhttps.proxyPort=1 -Dhttp.nonProxyHosts=" + loopback},
		{name: "KAI_ENV_JAVA_TOOL_OPTIONS wins outright and with a warning", files: withCA, wantStore: true,
			env:      java("KAI_CERT_DIRS", "$DIR/certs", "KAI_PROXY_HTTPS", "p:1", "JAVA_TOOL_OPTIONS", "-Xmx1g", "KAI_ENV_JAVA_TOOL_OPTIONS", "-Xss1m"),
			wantOpts: "-Xss1m", wantWarn: []string{"KAI_ENV_JAVA_TOOL_OPTIONS replaces JAVA_TOOL_OPTIONS"}},
		{name: "--check writes no store", check: true, env: java("KAI_CERT_DIRS", "$DIR/certs"), files: withCA, wantOpts: store},
		{name: "bad values and gathered with the others", files: map[string]string{"d": "<dir>"},
			env:     map[string]string{"KAI_JAVA_TRUSTSTORE": "t.p12", "KAI_WAIT": "soon"},
			wantErr: []string{`KAI_JAVA_TRUSTSTORE="t.p12": must be an absolute path`, `KAI_WAIT="soon"`}},
		{name: "a folder", env: map[string]string{"KAI_JAVA_TRUSTSTORE": "$DIR/d"}, files: map[string]string{"d": "<dir>"},
			wantErr: []string{`KAI_JAVA_TRUSTSTORE="$DIR/d": names a folder`}},
		{name: "blanks", env: map[string]string{"KAI_JAVA_TRUSTSTORE": "$DIR/a b.p12"},
			wantErr: []string{`KAI_JAVA_TRUSTSTORE="$DIR/a b.p12": must not contain blanks`}},
		{name: "the bundle's path", env: map[string]string{"KAI_JAVA_TRUSTSTORE": "$DIR/out/ca-bundle.pem"},
			wantErr: []string{`KAI_JAVA_TRUSTSTORE="$DIR/out/ca-bundle.pem": is KAI_CA_BUNDLE`}},
		{name: "the inherited SSL_CERT_FILE", env: map[string]string{"KAI_JAVA_TRUSTSTORE": "$DIR/sys.pem", "SSL_CERT_FILE": "$DIR/sys.pem"},
			wantErr: []string{`KAI_JAVA_TRUSTSTORE="$DIR/sys.pem": is the system CA bundle $DIR/sys.pem`}},
		{name: "a system bundle", env: map[string]string{"KAI_JAVA_TRUSTSTORE": "/etc/ssl/certs/ca-certificates.crt"},
			wantErr: []string{`KAI_JAVA_TRUSTSTORE="/etc/ssl/certs/ca-certificates.crt": is the system CA bundle /etc/ssl/certs/ca-certificates.crt`}},
		{name: "an unwritable folder and named in --check", check: true, env: java("KAI_CERT_DIRS", "$DIR/certs", "KAI_JAVA_TRUSTSTORE", "$DIR/file/t.p12"),
			files: map[string]string{"certs/ca.pem": "<ca>", "file": "x"}, wantErr: []string{`KAI_JAVA_TRUSTSTORE="$DIR/file/t.p12": cannot write the Java trust store`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := runCase{name: tt.name, env: tt.env, files: tt.files, check: tt.check}
			p, err := c.run(t)
			dir := strings.TrimSuffix(p.Config.CABundle, "/out/ca-bundle.pem")
			expand := func(s string) string { return strings.ReplaceAll(s, "$DIR", dir) }
			var ce *ConfigError
			if len(tt.wantErr) > 0 {
				if !errors.As(err, &ce) || len(ce.Problems()) != len(tt.wantErr) {
					t.Fatalf("err = %v, want %d problems", err, len(tt.wantErr))
				}
				for _, w := range tt.wantErr {
					if !strings.Contains(err.Error(), expand(w)) {
						t.Errorf("error\n%v\nwant it to contain %q", err, expand(w))
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got, ok := NewEnv(p.Env).Get("JAVA_TOOL_OPTIONS")
			if want := expand(tt.wantOpts); (want == unset && ok) || (want != unset && got != want) {
				t.Errorf("JAVA_TOOL_OPTIONS=%q (set %v)\nwant %q", got, ok, want)
			}
			if strings.Contains(got, "hunter2") {
				t.Errorf("JAVA_TOOL_OPTIONS holds the proxy password: %q", got)
			}
			data, err := os.ReadFile(filepath.Join(dir, "out/t.p12"))
			if tt.wantStore != (err == nil) {
				t.Fatalf("store read: %v, want a store %v", err, tt.wantStore)
			}
			if tt.wantStore {
				certs, err := pkcs12.DecodeTrustStore(data, "")
				if err != nil || len(certs) != p.Bundle.Total() || p.Java.Certs != len(certs) {
					t.Errorf("store: %d certificates (err %v), plan says %d, want the bundle's %d", len(certs), err, p.Java.Certs, p.Bundle.Total())
				}
			}
			warnings := strings.Join(p.Warnings, "\n")
			for _, w := range tt.wantWarn {
				if !strings.Contains(warnings, w) {
					t.Errorf("warnings\n%s\nwant one containing %q", warnings, w)
				}
			}
		})
	}
}

// TestRunJavaStoreUnchanged checks that a second start with the same
// certificates leaves the store alone, as the bundle is.
func TestRunJavaStoreUnchanged(t *testing.T) {
	dir := t.TempDir()
	runTestCA(t, dir+"/certs/ca.pem", "Java Unchanged CA")
	c := runCase{env: map[string]string{"KAI_CERT_DIRS": dir + "/certs", "KAI_CA_BUNDLE": dir + "/ca-bundle.pem", "KAI_JAVA_TRUSTSTORE": dir + "/t.p12"}}
	for i, want := range []bool{true, false} {
		p, err := c.run(t)
		if err != nil {
			t.Fatal(err)
		}
		if p.Java.Written != want {
			t.Errorf("start %d: Written = %v, want %v", i+1, p.Java.Written, want)
		}
	}
}

// TestJavaSummary checks the --check section: the store path, its
// certificate count and the flags.
func TestJavaSummary(t *testing.T) {
	tests := []struct {
		name  string
		env   map[string]string
		files map[string]string
		want  []string // lines, $DIR expanded
	}{
		{name: "store and proxy", env: map[string]string{"KAI_CERT_DIRS": "$DIR/certs", "KAI_JAVA_TRUSTSTORE": "$DIR/t.p12", "KAI_PROXY_HTTPS": "http://u:hunter2@p:1"},
			files: map[string]string{"certs/ca.pem": "<ca>"},
			want: []string{"Java (KAI_JAVA_TRUSTSTORE):", "  would write:          $DIR/t.p12 (PKCS#12, %d certificates, ",
				"  JAVA_TOOL_OPTIONS +=  -Djavax.net.ssl.trustStore=$DIR/t.p12 -Djavax.net.ssl.trustStoreType=PKCS12 -Dhttps.proxyHost=p -Dhttps.proxyPort=1 -Dhttp.nonProxyHosts=localhost|*.localhost|127.0.0.1|[::1]\n"}},
		{name: "no extra CA", env: map[string]string{"KAI_JAVA_TRUSTSTORE": "$DIR/t.p12"},
			want: []string{"Java (KAI_JAVA_TRUSTSTORE):\n  no extra CA found: no trust store would be written\n"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := runCase{env: tt.env, files: tt.files, check: true}.run(t)
			if err != nil {
				t.Fatal(err)
			}
			var out strings.Builder
			if err := p.WriteSummary(&out); err != nil {
				t.Fatal(err)
			}
			dir := strings.TrimSuffix(p.Config.CABundle, "/out/ca-bundle.pem")
			for _, w := range tt.want {
				if strings.Contains(w, "%d") {
					w = fmt.Sprintf(w, p.Bundle.Total())
				}
				if w = strings.ReplaceAll(w, "$DIR", dir); !strings.Contains(out.String(), w) {
					t.Errorf("summary\n%s\nwant it to contain %q", out.String(), w)
				}
			}
			if strings.Contains(out.String(), "hunter2") {
				t.Errorf("summary shows the proxy password:\n%s", out.String())
			}
		})
	}
}
