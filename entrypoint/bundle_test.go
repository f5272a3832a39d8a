package entrypoint

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/konveyor/kai-entrypoint/internal/testpki"
	"github.com/konveyor/kai-entrypoint/trust"
)

// TestCheckBundlePath: every problem a write to KAI_CA_BUNDLE would meet,
// found before anything is written, and the bundle never a system bundle.
func TestCheckBundlePath(t *testing.T) {
	dir := t.TempDir()
	system := filepath.Join(dir, "etc", "ssl", "ca.crt") // a well-known system bundle here
	testpki.WriteFile(t, system, testpki.GenCA(t, "system").PEM())
	testpki.Symlink(t, filepath.Join(dir, "etc", "ssl"), filepath.Join(dir, "ssl-link"))
	inherited := filepath.Join(dir, "inherited", "ca.pem") // an SSL_CERT_FILE the shim did not write
	testpki.WriteFile(t, inherited, testpki.GenCA(t, "inherited").PEM())
	testpki.Symlink(t, inherited, filepath.Join(dir, "link-to-inherited.pem"))
	own := filepath.Join(dir, "own", "ca-bundle.pem") // one it wrote
	writeOwnBundle(t, own)
	testpki.WriteFile(t, filepath.Join(dir, "file"), []byte("x"))
	swapSystemFiles(t, []string{filepath.Join(dir, "etc", "missing.crt"), system})
	const folder = "names a folder, not a file: set it to a file path such as /tmp/kai-entrypoint/ca-bundle.pem"
	systemErr := func(f string) string {
		return "is the system CA bundle " + f + ", which the shim must not overwrite"
	}
	const inheritedErr = "a CA bundle kai-entrypoint did not write, which it must not overwrite"

	tests := []struct {
		name        string
		path        string // $DIR is the temporary folder
		sslCertFile string
		want        []string // each a problem of its own, after KAI_CA_BUNDLE="path": ; none: valid
	}{
		{name: "new file in new folders", path: "$DIR/new/kai/ca-bundle.pem"},
		{name: "existing folder", path: "$DIR/own/other.pem"},
		{name: "root", path: "/", want: []string{folder}},
		{name: "trailing slash", path: "$DIR/new/", want: []string{folder}},
		{name: "dot-dot", path: "$DIR/new/..", want: []string{folder}},
		{name: "existing folder as the file", path: "$DIR/own", want: []string{folder}},
		{name: "under a regular file", path: "$DIR/file/ca.pem",
			want: []string{"cannot write the CA bundle: $DIR/file: not a directory"}},
		{name: "two levels under a regular file", path: "$DIR/file/kai/ca.pem",
			want: []string{"cannot write the CA bundle: $DIR/file: not a directory"}},
		{name: "well-known system bundle", path: "$DIR/etc/ssl/ca.crt", want: []string{systemErr(system)}},
		{name: "well-known system bundle by an unclean path", path: "$DIR/etc/./ssl//ca.crt", want: []string{systemErr(system)}},
		{name: "well-known system bundle through a symlinked folder", path: "$DIR/ssl-link/ca.crt", want: []string{systemErr(system)}},
		{name: "well-known path that does not exist", path: "$DIR/etc/missing.crt",
			want: []string{systemErr(filepath.Join(dir, "etc", "missing.crt"))}},
		{name: "well-known system bundle that is also SSL_CERT_FILE: one problem", path: "$DIR/etc/ssl/ca.crt",
			sslCertFile: system, want: []string{systemErr(system)}},
		{name: "file of SSL_CERT_FILE the shim did not write", path: "$DIR/inherited/ca.pem", sslCertFile: inherited,
			want: []string{`is the inherited SSL_CERT_FILE="$DIR/inherited/ca.pem", ` + inheritedErr}},
		{name: "file of SSL_CERT_FILE through a symlink", path: "$DIR/inherited/ca.pem", sslCertFile: "$DIR/link-to-inherited.pem",
			want: []string{`is the inherited SSL_CERT_FILE="$DIR/link-to-inherited.pem", ` + inheritedErr}},
		{name: "SSL_CERT_FILE is a bundle the shim wrote: a repeated run", path: "$DIR/own/ca-bundle.pem", sslCertFile: own},
		{name: "SSL_CERT_FILE is the bundle path, not written yet", path: "$DIR/own/next.pem", sslCertFile: "$DIR/own/next.pem"},
		{name: "SSL_CERT_FILE elsewhere", path: "$DIR/own/other.pem", sslCertFile: inherited},
		{name: "relative path left to Validate", path: "rel/ca.pem"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := strings.ReplaceAll(tt.path, "$DIR", dir)
			err := checkBundlePath(path, strings.ReplaceAll(tt.sslCertFile, "$DIR", dir))
			var got []string
			var ce *ConfigError
			switch {
			case errors.As(err, &ce):
				got = ce.Problems()
			case err != nil:
				got = []string{err.Error()}
			}
			if len(got) != len(tt.want) {
				t.Fatalf("%d problems, want %d: %q", len(got), len(tt.want), got)
			}
			for i, w := range tt.want {
				w = fmt.Sprintf("KAI_CA_BUNDLE=%q: %s", path, strings.ReplaceAll(w, "$DIR", dir))
				if !strings.HasPrefix(got[i], w) {
					t.Errorf("problem %q\nwant it to start with %q", got[i], w)
				}
			}
			if _, err := os.Lstat(filepath.Join(dir, "new")); err == nil {
				t.Error("checkBundlePath created a folder")
			}
		})
	}
}

// TestRun_SystemBundle checks what a run makes of a system bundle that gives
// no roots: a warning naming it, or, for one over the size limit, a
// configuration error (exit 78).
func TestRun_SystemBundle(t *testing.T) {
	huge := filepath.Join(t.TempDir(), "huge.crt")
	testpki.WriteFile(t, huge, nil)
	if err := os.Truncate(huge, 16<<20+1); err != nil { // sparse: cheap
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		c    runCase
	}{
		{name: "bundle without a certificate", c: runCase{env: map[string]string{"SSL_CERT_FILE": "$DIR/empty.crt", "KAI_CERT_DIRS": "$DIR/certs"},
			files:    map[string]string{"empty.crt": "# no roots here\n", "certs/ca.pem": "<ca>"},
			wantWarn: []string{"system bundle $DIR/empty.crt holds no certificate: the bundle will have no system roots"}}},
		{name: "bundle over the size limit", c: runCase{env: map[string]string{"SSL_CERT_FILE": huge, "KAI_CERT_DIRS": "$DIR/certs"},
			files:   map[string]string{"certs/ca.pem": "<ca>"},
			wantErr: []string{fmt.Sprintf("system bundle %s: %d bytes, larger than the 16 MiB a CA bundle may have", huge, 16<<20+1)}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p, err := tt.c.run(t)
			dir := strings.TrimSuffix(p.Config.CABundle, "/out/ca-bundle.pem")
			if len(tt.c.wantErr) > 0 {
				var ce *ConfigError
				if !errors.As(err, &ce) || ExitCode(err) != ExitConfig || strings.Join(ce.Problems(), "\n") != strings.Join(tt.c.wantErr, "\n") {
					t.Fatalf("err = %v (exit %d), want the configuration error %q (exit %d)", err, ExitCode(err), tt.c.wantErr, ExitConfig)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range tt.c.wantWarn {
				if w = strings.ReplaceAll(w, "$DIR", dir); !strings.Contains(strings.Join(p.Warnings, "\n"), w) {
					t.Errorf("warnings %q, want one containing %q", p.Warnings, w)
				}
			}
		})
	}
}

// writeOwnBundle writes at path a bundle as the shim writes it, with no
// certificate.
func writeOwnBundle(t *testing.T, path string) {
	t.Helper()
	sys, err := trust.ReadSystemRoots("")
	if err != nil {
		t.Fatal(err)
	}
	if err := trust.Build(path, sys, nil).Write(); err != nil {
		t.Fatal(err)
	}
}

// swapSystemFiles replaces the well-known system bundles for one test.
func swapSystemFiles(t *testing.T, files []string) {
	t.Helper()
	old := trust.SystemFiles
	trust.SystemFiles = files
	t.Cleanup(func() { trust.SystemFiles = old })
}
