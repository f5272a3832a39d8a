package trust

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/konveyor/kai-entrypoint/internal/testio"
	"github.com/konveyor/kai-entrypoint/internal/testpki"
)

// sourceCase is one cert source layout.
type sourceCase struct {
	name  string
	setup func(t *testing.T, dir string) (entry string)
	// Expectations; paths relative to dir.
	certs    []*testpki.Cert // in order
	sources  []string        // Cert.Source of each
	files    int
	warnings []string // exact texts, in order
	noCert   []string // files without a certificate, in order
	errs     []string // exact texts, in order
	missing  bool
}

func TestReadSource(t *testing.T) {
	a, b, c := testpki.GenCA(t, "source A"), testpki.GenCA(t, "source B"), testpki.GenCA(t, "source C")
	key := testpki.ECKeyPEM(t, a.Key)
	lines := func(p []byte) int { return bytes.Count(p, []byte("\n")) }

	tests := []sourceCase{
		{
			name: "Kubernetes ConfigMap mount",
			setup: func(t *testing.T, dir string) string {
				ts := filepath.Join(dir, "..2025_01_01_00_00_00.123")
				testpki.WriteFile(t, filepath.Join(ts, "ca.crt"), a.PEM())
				testpki.WriteFile(t, filepath.Join(ts, "corp.pem"), b.PEM())
				testpki.Symlink(t, "..2025_01_01_00_00_00.123", filepath.Join(dir, "..data"))
				testpki.Symlink(t, "..data/ca.crt", filepath.Join(dir, "ca.crt"))
				testpki.Symlink(t, "..data/corp.pem", filepath.Join(dir, "corp.pem"))
				return dir
			},
			certs:   []*testpki.Cert{a, b},
			sources: []string{"ca.crt", "corp.pem"},
			files:   2,
		},
		{
			name: "c_rehash hash links",
			setup: func(t *testing.T, dir string) string {
				testpki.WriteFile(t, filepath.Join(dir, "ca.pem"), a.PEM())
				testpki.WriteFile(t, filepath.Join(dir, "zz-corp.pem"), b.PEM())
				testpki.Symlink(t, "ca.pem", filepath.Join(dir, "abcd1234.0"))
				testpki.Symlink(t, "zz-corp.pem", filepath.Join(dir, "ef567890.0"))
				testpki.Symlink(t, "zz-corp.pem", filepath.Join(dir, "ef567890.1"))
				return dir
			},
			certs:   []*testpki.Cert{a, b},
			sources: []string{"ca.pem", "zz-corp.pem"}, // real files before the links that reach them
			files:   2,
		},
		{
			name: "hard link read once",
			setup: func(t *testing.T, dir string) string {
				testpki.WriteFile(t, filepath.Join(dir, "a.pem"), a.PEM())
				if err := os.Link(filepath.Join(dir, "a.pem"), filepath.Join(dir, "b.pem")); err != nil {
					t.Fatal(err)
				}
				return dir
			},
			certs: []*testpki.Cert{a}, sources: []string{"a.pem"}, files: 1,
		},
		{
			name: "nested folders in name order, dot-names skipped",
			setup: func(t *testing.T, dir string) string {
				testpki.WriteFile(t, filepath.Join(dir, "z.pem"), c.PEM())
				testpki.WriteFile(t, filepath.Join(dir, "sub", "deeper", "b.crt"), b.PEM())
				testpki.WriteFile(t, filepath.Join(dir, "a.pem"), a.PEM())
				testpki.WriteFile(t, filepath.Join(dir, ".hidden.pem"), testpki.GenCA(t, "hidden").PEM())
				testpki.WriteFile(t, filepath.Join(dir, ".git", "x.pem"), testpki.GenCA(t, "hidden 2").PEM())
				return dir
			},
			certs:   []*testpki.Cert{a, b, c},
			sources: []string{"a.pem", "sub/deeper/b.crt", "z.pem"},
			files:   3,
		},
		{
			name: "single file entry",
			setup: func(t *testing.T, dir string) string {
				testpki.WriteFile(t, filepath.Join(dir, "bundle.pem"), testpki.Concat(a.PEM(), b.PEM()))
				return filepath.Join(dir, "bundle.pem")
			},
			certs: []*testpki.Cert{a, b}, sources: []string{"bundle.pem", "bundle.pem"}, files: 1,
		},
		{
			name: "entry is a symlink to a folder",
			setup: func(t *testing.T, dir string) string {
				testpki.WriteFile(t, filepath.Join(dir, "real", "a.pem"), a.PEM())
				testpki.Symlink(t, "real", filepath.Join(dir, "link"))
				return filepath.Join(dir, "link")
			},
			certs: []*testpki.Cert{a}, sources: []string{"link/a.pem"}, files: 1,
		},
		{
			name: "missing entry",
			setup: func(t *testing.T, dir string) string {
				return filepath.Join(dir, "nope")
			},
			missing: true,
		},
		{
			name: "entry is a broken symlink",
			setup: func(t *testing.T, dir string) string {
				testpki.Symlink(t, "nowhere", filepath.Join(dir, "ca.pem"))
				return filepath.Join(dir, "ca.pem")
			},
			missing: true,
		},
		{
			name: "entry below a regular file",
			setup: func(t *testing.T, dir string) string {
				testpki.WriteFile(t, filepath.Join(dir, "a.pem"), a.PEM())
				return filepath.Join(dir, "a.pem", "sub")
			},
			errs: []string{`a.pem/sub: not a directory`},
		},
		{
			name: "entry is a self-looping symlink",
			setup: func(t *testing.T, dir string) string {
				testpki.Symlink(t, "loop", filepath.Join(dir, "loop"))
				return filepath.Join(dir, "loop")
			},
			errs: []string{`loop: too many levels of symbolic links`},
		},
		{
			name: "self-looping symlink in the folder",
			setup: func(t *testing.T, dir string) string {
				testpki.WriteFile(t, filepath.Join(dir, "a.pem"), a.PEM())
				testpki.Symlink(t, "loop.pem", filepath.Join(dir, "loop.pem"))
				return dir
			},
			certs: []*testpki.Cert{a}, sources: []string{"a.pem"}, files: 1,
			errs: []string{"loop.pem: too many levels of symbolic links"},
		},
		{
			name: "broken symlink in the folder",
			setup: func(t *testing.T, dir string) string {
				testpki.WriteFile(t, filepath.Join(dir, "a.pem"), a.PEM())
				testpki.Symlink(t, "gone.pem", filepath.Join(dir, "b.pem"))
				return dir
			},
			certs: []*testpki.Cert{a}, sources: []string{"a.pem"}, files: 1,
			warnings: []string{"b.pem: broken symlink, skipped"},
		},
		{
			name: "symlink loop between folders",
			setup: func(t *testing.T, dir string) string {
				testpki.WriteFile(t, filepath.Join(dir, "one", "a.pem"), a.PEM())
				testpki.WriteFile(t, filepath.Join(dir, "two", "b.pem"), b.PEM())
				testpki.Symlink(t, "../two", filepath.Join(dir, "one", "to-two"))
				testpki.Symlink(t, "../one", filepath.Join(dir, "two", "to-one"))
				testpki.Symlink(t, ".", filepath.Join(dir, "one", "self"))
				return filepath.Join(dir, "one")
			},
			certs: []*testpki.Cert{a, b}, sources: []string{"one/a.pem", "one/to-two/b.pem"}, files: 2,
		},
		{
			name: "README and key-only file warned by name",
			setup: func(t *testing.T, dir string) string {
				testpki.WriteFile(t, filepath.Join(dir, "README.md"), []byte("# Certificates\nPut CA files here.\n"))
				testpki.WriteFile(t, filepath.Join(dir, "ca.pem"), a.PEM())
				testpki.WriteFile(t, filepath.Join(dir, "ca.key"), key)
				return dir
			},
			certs: []*testpki.Cert{a}, sources: []string{"ca.pem"}, files: 3,
			noCert: []string{"README.md", "ca.key"},
		},
		{
			name: "corrupt blocks name the file and the block, other files still read",
			setup: func(t *testing.T, dir string) string {
				testpki.WriteFile(t, filepath.Join(dir, "a.pem"), a.PEM())
				testpki.WriteFile(t, filepath.Join(dir, "bad.pem"), testpki.Concat(b.PEM(),
					[]byte("-----BEGIN CERTIFICATE-----\nMIIC!!\n-----END CERTIFICATE-----\n"),
					[]byte("-----BEGIN CERTIFICATE-----\n"+b64([]byte("valid base64, not DER"))+"\n-----END CERTIFICATE-----\n")))
				testpki.WriteFile(t, filepath.Join(dir, "c.pem"), c.PEM())
				return dir
			},
			certs: []*testpki.Cert{a, b, c}, sources: []string{"a.pem", "bad.pem", "c.pem"}, files: 3,
			errs: []string{
				fmt.Sprintf("bad.pem: block 2 (CERTIFICATE, line %d): invalid base64 body", 1+lines(b.PEM())),
				fmt.Sprintf("bad.pem: block 3 (CERTIFICATE, line %d): not a valid certificate: malformed certificate", 4+lines(b.PEM())),
			},
		},
		{
			name: "FIFO skipped unopened",
			setup: func(t *testing.T, dir string) string {
				testpki.WriteFile(t, filepath.Join(dir, "b.pem"), b.PEM())
				mkfifo(t, filepath.Join(dir, "a-pipe.pem"))
				return dir
			},
			certs: []*testpki.Cert{b}, sources: []string{"b.pem"}, files: 1,
			warnings: []string{"a-pipe.pem: not a regular file (" + FileKind(os.ModeNamedPipe) + "), skipped"},
		},
		{
			name: "FIFO reached through a symlink",
			setup: func(t *testing.T, dir string) string {
				mkfifo(t, filepath.Join(dir, "real", "pipe"))
				testpki.Symlink(t, "real/pipe", filepath.Join(dir, "ca.pem"))
				return filepath.Join(dir, "ca.pem")
			},
			warnings: []string{"ca.pem: not a regular file (" + FileKind(os.ModeNamedPipe) + "), skipped"},
		},
		{
			name: "socket and device skipped unopened",
			setup: func(t *testing.T, dir string) string {
				testpki.WriteFile(t, filepath.Join(dir, "b.pem"), b.PEM())
				l, err := net.Listen("unix", filepath.Join(dir, "agent.sock"))
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { l.Close() })
				// A character device like /dev/zero: reading it would never end.
				if err := syscall.Mknod(filepath.Join(dir, "zero.pem"), syscall.S_IFCHR|0o644, 1<<8|5); err != nil {
					t.Skip("mknod:", err)
				}
				return dir
			},
			certs: []*testpki.Cert{b}, sources: []string{"b.pem"}, files: 1,
			warnings: []string{
				"agent.sock: not a regular file (" + FileKind(os.ModeSocket) + "), skipped",
				"zero.pem: not a regular file (" + FileKind(os.ModeDevice|os.ModeCharDevice) + "), skipped",
			},
		},
		{
			name: "file over 4 MiB",
			setup: func(t *testing.T, dir string) string {
				testpki.WriteFile(t, filepath.Join(dir, "a.pem"), a.PEM())
				big := testpki.Concat(b.PEM(), bytes.Repeat([]byte("#"), maxCertFileSize+1-len(b.PEM())))
				testpki.WriteFile(t, filepath.Join(dir, "huge.pem"), big)
				return dir
			},
			certs: []*testpki.Cert{a}, sources: []string{"a.pem"}, files: 1,
			errs: []string{fmt.Sprintf("huge.pem: %d bytes, larger than the 4 MiB a certificate file may have", maxCertFileSize+1)},
		},
		{
			name: "file of exactly 4 MiB",
			setup: func(t *testing.T, dir string) string {
				data := testpki.Concat(b.PEM(), bytes.Repeat([]byte("#"), maxCertFileSize-len(b.PEM())))
				testpki.WriteFile(t, filepath.Join(dir, "big.pem"), data)
				return dir
			},
			certs: []*testpki.Cert{b}, sources: []string{"big.pem"}, files: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			entry := tt.setup(t, dir)
			r := readSourceWithin(t, entry, 10*time.Second)
			rel := func(s string) string {
				if r, err := filepath.Rel(dir, s); err == nil {
					return r
				}
				return s
			}
			if r.Entry != entry || r.Missing != tt.missing || r.Files != tt.files {
				t.Errorf("Entry %s, Missing %v, Files %d; want %s, %v, %d", r.Entry, r.Missing, r.Files, entry, tt.missing, tt.files)
			}
			var got []string
			for _, w := range r.Warnings {
				got = append(got, strings.ReplaceAll(w, dir+"/", ""))
			}
			if strings.Join(got, "\n") != strings.Join(tt.warnings, "\n") {
				t.Errorf("warnings:\n got %q\nwant %q", got, tt.warnings)
			}
			got = nil
			for _, f := range r.NoCert {
				got = append(got, rel(f))
			}
			if strings.Join(got, "\n") != strings.Join(tt.noCert, "\n") {
				t.Errorf("files without a certificate:\n got %q\nwant %q", got, tt.noCert)
			}
			got = nil
			for _, e := range errTexts(r.Errs) {
				got = append(got, strings.ReplaceAll(e, dir+"/", ""))
			}
			if strings.Join(got, "\n") != strings.Join(tt.errs, "\n") {
				t.Errorf("errors:\n got %q\nwant %q", got, tt.errs)
			}
			if len(r.Certs) != len(tt.certs) {
				t.Fatalf("got %d certificates %v, want %d", len(r.Certs), certNames(r.Certs), len(tt.certs))
			}
			for i, c := range r.Certs {
				if c.Sum != tt.certs[i].Sum() || rel(c.Source) != tt.sources[i] {
					t.Errorf("cert %d is %q from %s, want %q from %s", i, c.X509.Subject.CommonName, rel(c.Source),
						tt.certs[i].Cert.Subject.CommonName, tt.sources[i])
				}
				if strings.Contains(c.Source, "/.") {
					t.Errorf("cert %d read from a dot-name: %s", i, c.Source)
				}
			}
			if want := !tt.missing && len(tt.errs) == 0 && len(tt.certs) > 0; r.Ready() != want {
				t.Errorf("ready() = %v, want %v", r.Ready(), want)
			}
		})
	}
}

// TestReadSource_Unreadable reads as a non-root UID (root reads
// everything): inside a listed folder, an unreadable folder or file is
// skipped with a warning naming it (a mounted mitmproxy confdir has 0600
// key files); a listed entry that cannot be read is an error, not missing.
func TestReadSource_Unreadable(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to switch UID")
	}
	a, b := testpki.GenCA(t, "readable"), testpki.GenCA(t, "locked")
	dir := t.TempDir()
	for d := dir; d != os.TempDir() && d != "/"; d = filepath.Dir(d) {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	testpki.WriteFile(t, filepath.Join(dir, "a.pem"), a.PEM())
	testpki.WriteFile(t, filepath.Join(dir, "locked", "b.pem"), b.PEM())
	testpki.WriteFile(t, filepath.Join(dir, "secret.pem"), b.PEM())
	// Set every mode, whatever the umask: only "locked" and secret.pem are
	// closed to other users.
	for name, mode := range map[string]os.FileMode{"a.pem": 0o644, "locked": 0o700, "secret.pem": 0o600} {
		if err := os.Chmod(filepath.Join(dir, name), mode); err != nil {
			t.Fatal(err)
		}
	}
	var folder, inside Source
	if err := testio.OnThreadAs(1000770000, func() {
		folder = ReadSource(dir)
		inside = ReadSource(filepath.Join(dir, "locked", "b.pem"))
	}); err != nil {
		t.Skip("cannot switch the thread's UID:", err)
	}
	wantWarnings := []string{
		filepath.Join(dir, "locked") + ": permission denied, skipped",
		filepath.Join(dir, "secret.pem") + ": permission denied, skipped",
	}
	if strings.Join(folder.Warnings, "\n") != strings.Join(wantWarnings, "\n") || len(folder.Errs) != 0 {
		t.Errorf("warnings:\n got %q\nwant %q\nerrors %q, want none", folder.Warnings, wantWarnings, errTexts(folder.Errs))
	}
	if len(folder.Certs) != 1 || folder.Certs[0].Sum != a.Sum() || folder.Files != 1 || !folder.Ready() {
		t.Errorf("got %d certificates from %d files, ready %v; want the readable one, 1 file, true",
			len(folder.Certs), folder.Files, folder.Ready())
	}
	var top Source
	if err := testio.OnThreadAs(1000770000, func() { top = ReadSource(filepath.Join(dir, "secret.pem")) }); err != nil {
		t.Fatal(err)
	}
	if want := "reading " + filepath.Join(dir, "secret.pem") + ": permission denied"; strings.Join(errTexts(top.Errs), "\n") != want {
		t.Errorf("a listed unreadable file: errors %q, want %q", errTexts(top.Errs), want)
	}
	want := filepath.Join(dir, "locked", "b.pem") + ": permission denied"
	if inside.Missing || strings.Join(errTexts(inside.Errs), "\n") != want {
		t.Errorf("entry in an unreadable folder: Missing %v, errors %q; want %q", inside.Missing, errTexts(inside.Errs), want)
	}
}

// TestReadSource_MitmproxyConfdir mounts mitmproxy's whole confdir: the
// CA's key and certificate in one file, the same certificate as .pem and as
// .cer (PEM despite the name), DH parameters and two PKCS#12 files. The
// bundle gets the certificate once and no key material.
func TestReadSource_MitmproxyConfdir(t *testing.T) {
	key := testpki.RSAKey(t)
	ca := testpki.Gen(t, testpki.Spec{CN: "mitmproxy", CA: true, Key: key})
	keyPEM := testpki.RSAKeyPEM(key)
	dir := t.TempDir()
	testpki.WriteFile(t, filepath.Join(dir, "mitmproxy-ca.pem"), testpki.Concat(keyPEM, ca.PEM()))
	testpki.WriteFile(t, filepath.Join(dir, "mitmproxy-ca-cert.pem"), ca.PEM())
	testpki.WriteFile(t, filepath.Join(dir, "mitmproxy-ca-cert.cer"), ca.PEM())
	testpki.WriteFile(t, filepath.Join(dir, "mitmproxy-dhparam.pem"), testpki.DHParamsPEM(t))
	p12, p12cert := pkcs12Files(t, dir, keyPEM, ca.PEM())
	testpki.WriteFile(t, filepath.Join(dir, "mitmproxy-ca.p12"), p12)
	testpki.WriteFile(t, filepath.Join(dir, "mitmproxy-ca-cert.p12"), p12cert)

	r := readSourceWithin(t, dir, 10*time.Second)
	if len(r.Errs) != 0 || r.Files != 6 {
		t.Fatalf("errors %v, %d files read; want none, 6", r.Errs, r.Files)
	}
	wantNoCert := []string{
		filepath.Join(dir, "mitmproxy-ca-cert.p12"),
		filepath.Join(dir, "mitmproxy-ca.p12"),
		filepath.Join(dir, "mitmproxy-dhparam.pem"),
	}
	if strings.Join(r.NoCert, "\n") != strings.Join(wantNoCert, "\n") || len(r.Warnings) != 0 {
		t.Errorf("files without a certificate:\n got %q\nwant %q\nwarnings %q, want none", r.NoCert, wantNoCert, r.Warnings)
	}
	if len(r.Certs) != 3 {
		t.Fatalf("got %d certificates, want 3 (.cer, -cert.pem, ca.pem)", len(r.Certs))
	}

	sys, err := ReadSystemRoots("")
	if err != nil {
		t.Fatal(err)
	}
	b := Build(filepath.Join(dir, "out.pem"), sys, r.Certs)
	if len(b.Extras) != 1 || b.Duplicates != 2 || b.Total() != 1 || !bytes.Equal(b.bytes(), testpki.Concat([]byte(bundleHeader), ca.PEM())) {
		t.Fatalf("bundle: %d extras, %d duplicates, %d total; want 1, 2, 1 and the CA's PEM", len(b.Extras), b.Duplicates, b.Total())
	}
	keyDER := key.N.Bytes()
	if bytes.Contains(b.bytes(), []byte("PRIVATE KEY")) || bytes.Contains(b.bytes(), keyDER[:32]) ||
		bytes.Contains(b.bytes(), []byte(b64(keyDERFromPEM(t, keyPEM))[64:128])) {
		t.Fatal("the bundle holds key material")
	}
}

// pkcs12Files returns mitmproxy-ca.p12 (key and certificate) and
// mitmproxy-ca-cert.p12 (certificate only), made by openssl when it is
// installed, else binary stand-ins that start like DER.
func pkcs12Files(t *testing.T, dir string, keyPEM, certPEM []byte) (p12, p12cert []byte) {
	t.Helper()
	tmp := filepath.Join(dir, ".p12work")
	testpki.WriteFile(t, filepath.Join(tmp, "key.pem"), keyPEM)
	testpki.WriteFile(t, filepath.Join(tmp, "cert.pem"), certPEM)
	defer os.RemoveAll(tmp)
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Log("openssl not installed: using binary stand-ins for the .p12 files")
		return []byte{0x30, 0x82, 0x09, 0x9f, 0x02, 0x01, 0x03, 0x30, 0x82, 0x09, 0x65},
			[]byte{0x30, 0x82, 0x04, 0x1b, 0x02, 0x01, 0x03, 0x30, 0x82, 0x03, 0xe1}
	}
	p12 = testpki.RunOpenSSL(t, "pkcs12", "-export", "-in", filepath.Join(tmp, "cert.pem"), "-inkey", filepath.Join(tmp, "key.pem"), "-passout", "pass:")
	p12cert = testpki.RunOpenSSL(t, "pkcs12", "-export", "-nokeys", "-in", filepath.Join(tmp, "cert.pem"), "-passout", "pass:")
	if len(p12) == 0 || p12[0] != 0x30 || len(p12cert) == 0 || p12cert[0] != 0x30 {
		t.Fatal("openssl pkcs12 did not write DER")
	}
	return p12, p12cert
}

func keyDERFromPEM(t testing.TB, p []byte) []byte {
	t.Helper()
	blocks, _ := scanPEM(p, func(string) bool { return true })
	if len(blocks) != 1 || blocks[0].Err != nil {
		t.Fatal("bad key PEM")
	}
	return blocks[0].DER
}

// readSourceWithin runs ReadSource and fails the test if it has not
// returned within d (a FIFO opened for reading would block forever).
func readSourceWithin(t *testing.T, entry string, d time.Duration) Source {
	t.Helper()
	ch := make(chan Source, 1)
	go func() { ch <- ReadSource(entry) }()
	select {
	case r := <-ch:
		return r
	case <-time.After(d):
		t.Fatalf("ReadSource(%s) did not return within %v", entry, d)
		return Source{}
	}
}

// mkfifo makes a FIFO at path and, at cleanup, opens it for writing once
// so that a reader blocked on it (a bug) is released.
func mkfifo(t *testing.T, path string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(path, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if f, err := os.OpenFile(path, os.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
			f.Close()
		}
	})
}
