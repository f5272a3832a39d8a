package entrypoint

import (
	"bytes"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/hashicorp/go-multierror"
)

// Bundle is the combined CA bundle: the system roots, then the extra CAs.
type Bundle struct {
	Path       string // KAI_CA_BUNDLE
	SystemPath string // where the system roots came from, "" if none
	System     int    // system certificates
	Extras     []Cert // extra CAs not already among the system roots
	InSystem   []Cert // extra CAs that the system bundle already has
	Duplicates int    // extra CAs found more than once
	Written    bool   // false when the target already held these bytes

	// The bytes in parts (bundleHeader, the system roots, the extras), so
	// that the system roots (most of them) are never copied: compared with
	// the old bundle and written as they are. Joining them into one buffer
	// and reading the old bundle whole to compare was measured at about
	// 1.5 ms more per start on a 2-vCPU VM (400 interleaved runs: median
	// 17.6 ms against 15.4 ms), most of it faulting in the fresh pages.
	parts [][]byte
}

// Size returns the bundle's length in bytes.
func (b *Bundle) Size() int {
	n := 0
	for _, p := range b.parts {
		n += len(p)
	}
	return n
}

// Total is the number of certificates in the bundle.
func (b *Bundle) Total() int { return b.System + len(b.Extras) }

// buildBundle appends the extra CAs, in the order given and each once, to
// the system roots, every one re-encoded as clean PEM: no corrupt block,
// missing newline or DER input can then make OpenSSL reject the file.
func buildBundle(path string, sys *systemRoots, extras []Cert) *Bundle {
	b := &Bundle{Path: path, SystemPath: sys.Path, System: sys.Count}
	seen := map[[32]byte]bool{}
	var buf bytes.Buffer
	for _, c := range extras {
		if seen[c.Sum] {
			b.Duplicates++
			continue
		}
		seen[c.Sum] = true
		// Encode once: the block is both the output and, for a system
		// bundle read by the fast path, the key to look it up by.
		start := buf.Len()
		pem.Encode(&buf, &pem.Block{Type: "CERTIFICATE", Bytes: c.X509.Raw})
		if sys.hasBlock(buf.Bytes()[start:], c) {
			buf.Truncate(start)
			b.InSystem = append(b.InSystem, c)
			continue
		}
		b.Extras = append(b.Extras, c)
	}
	b.parts = [][]byte{[]byte(bundleHeader), sys.PEM, buf.Bytes()}
	return b
}

// bundleHeader is the first line of every bundle the shim writes: a file
// that starts with it is the shim's own output. PEM readers skip text
// outside the blocks (RHEL's tls-ca-bundle.pem has a comment before each).
const bundleHeader = "# kai-entrypoint: combined CA bundle (system roots + extra CAs), rewritten at every start\n"

// writtenByShim reports whether the file at path starts with bundleHeader.
func writtenByShim(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	head := make([]byte, len(bundleHeader))
	_, err = io.ReadFull(f, head)
	return err == nil && string(head) == bundleHeader
}

// access(2) modes.
const (
	accessW = 0x2 // W_OK
	accessX = 0x1 // X_OK
)

// checkBundlePath reports, before anything is written, every problem
// writing the bundle to path would meet, so that --check and a run agree:
// a path that names a folder, a system bundle (see below), a folder path
// that is another user's symlink or folder, and a nearest existing folder
// that is a file or not writable. A relative path is Validate's to report.
//
// path must not be a file of certFiles, by path or by identity: writing
// over it would replace the OS bundle and make the extra CAs "system"
// roots at the next start. Nor may it be the existing file of the
// inherited SSL_CERT_FILE unless the shim wrote that file: a nested or
// repeated run, or SSL_CERT_FILE set to the bundle path for `kubectl exec`.
func checkBundlePath(path, sslCertFile string) error {
	if !filepath.IsAbs(path) {
		return nil
	}
	fi, err := os.Stat(path)
	if base := filepath.Base(path); strings.HasSuffix(path, "/") || base == "." || base == ".." || (err == nil && fi.IsDir()) {
		return fmt.Errorf("KAI_CA_BUNDLE=%q: names a folder, not a file: set it to a file path such as %s", path, DefaultCABundle)
	}
	var errs *multierror.Error
	system := false
	for _, f := range certFiles {
		if sameFile(path, f) {
			system = true
			errs = multierror.Append(errs, fmt.Errorf("KAI_CA_BUNDLE=%q: is the system CA bundle %s, which the shim must not overwrite (its extra CAs would count as system roots at the next start); set it to a file of its own such as %s", path, f, DefaultCABundle))
		}
	}
	if !system && sslCertFile != "" && sameFile(path, sslCertFile) && isRegular(sslCertFile) && !writtenByShim(sslCertFile) {
		errs = multierror.Append(errs, fmt.Errorf("KAI_CA_BUNDLE=%q: is the inherited SSL_CERT_FILE=%q, a CA bundle kai-entrypoint did not write, which it must not overwrite (it is where the system roots come from); set KAI_CA_BUNDLE to a file of its own such as %s", path, sslCertFile, DefaultCABundle))
	}
	if err := checkFolder(filepath.Dir(path)); err != nil {
		errs = multierror.Append(errs, writeError(path, err))
	}
	return asConfigError(errs)
}

// checkFolder checks the bundle folder dir: a symlink there must be this
// user's or root's (see checkLink), an existing folder too (see
// checkOwner), and the nearest existing folder must be writable, to write
// the bundle in or create the missing folders.
func checkFolder(dir string) error {
	if err := checkLink(dir); err != nil {
		return err
	}
	d := dir
	fi, err := os.Stat(d)
	for errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
		d = filepath.Dir(d)
		fi, err = os.Stat(d)
	}
	switch {
	case err != nil:
		return err
	case !fi.IsDir():
		return fmt.Errorf("%s: not a directory", d)
	case d == dir:
		if err := checkOwner("folder "+dir, fi); err != nil {
			return err
		}
	}
	if err := syscall.Access(d, accessW|accessX); err != nil {
		return fmt.Errorf("folder %s: %v", d, err)
	}
	return nil
}

// writeAtomic writes data to path so that path always holds either the old
// or the new file, whole: a new file is created exclusively in the same
// folder and renamed over path. The rename replaces a symlink planted at
// path instead of following it. When path already holds exactly data it is
// left alone. No fsync: the bundle is rebuilt at every start.
//
// Missing folders are created 0755 whatever the umask, as other users read
// the bundle. The folder is opened once and checked through the open
// descriptor (see openFolder); every later step goes through it, so a
// folder swapped after the check is not written into.
func writeAtomic(path string, data ...[]byte) (written bool, err error) {
	if written, err = replaceFile(path, data...); err != nil {
		return false, writeError(path, err)
	}
	return written, nil
}

// replaceFile is writeAtomic with the errors as they come, for a file other
// than the bundle.
func replaceFile(path string, data ...[]byte) (written bool, err error) {
	dir, name := filepath.Dir(path), filepath.Base(path)
	if err := makeFolders(dir); err != nil {
		return false, err
	}
	root, err := openFolder(dir)
	if err != nil {
		return false, err
	}
	defer root.Close()
	size := 0
	for _, p := range data {
		size += len(p)
	}
	if fi, err := root.Lstat(name); err == nil && fi.Mode().IsRegular() && fi.Size() == int64(size) && fi.Mode().Perm() == 0o644 {
		if sameContent(root, name, data) {
			return false, nil
		}
	}
	removeStaleTemps(root, name)
	tmp, err := createTemp(root, name)
	if err != nil {
		return false, err
	}
	defer func() {
		if err != nil {
			tmp.Close()
			root.Remove(filepath.Base(tmp.Name()))
		}
	}()
	for _, part := range data {
		if _, err = tmp.Write(part); err != nil {
			return false, err
		}
	}
	if err = tmp.Chmod(0o644); err != nil {
		return false, err
	}
	if err = tmp.Close(); err != nil {
		return false, err
	}
	if err = root.Rename(filepath.Base(tmp.Name()), name); err != nil {
		return false, err
	}
	return true, nil
}

func writeError(path string, err error) error {
	return fmt.Errorf("KAI_CA_BUNDLE=%q: cannot write the CA bundle: %v; set KAI_CA_BUNDLE to a file in a writable folder (for example an emptyDir or tmpfs on /tmp)", path, err)
}

// makeFolders creates dir and its missing parents, each 0755 whatever the
// umask. A folder that another run creates meanwhile is left to openFolder.
func makeFolders(dir string) error {
	var missing []string
	for d := dir; ; d = filepath.Dir(d) {
		_, err := os.Lstat(d)
		if err == nil {
			break
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		missing = append(missing, d)
	}
	for i := len(missing) - 1; i >= 0; i-- {
		err := os.Mkdir(missing[i], 0o755)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		if err == nil {
			err = os.Chmod(missing[i], 0o755)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// openFolder opens the bundle folder dir after checkLink, and checks its
// owner (see checkOwner) through the open descriptor.
func openFolder(dir string) (*os.Root, error) {
	if err := checkLink(dir); err != nil {
		return nil, err
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, err
	}
	fi, err := root.Stat(".")
	if err == nil {
		err = checkOwner("folder "+dir, fi)
	}
	if err != nil {
		root.Close()
		return nil, err
	}
	return root, nil
}

// createTemp creates a new file named .NAME.*.tmp in root, as
// os.CreateTemp does in a folder.
func createTemp(root *os.Root, name string) (*os.File, error) {
	for try := 0; ; try++ {
		tmp := "." + name + "." + strconv.FormatUint(uint64(rand.Uint32()), 10) + ".tmp"
		f, err := root.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
		if errors.Is(err, fs.ErrExist) && try < 10000 {
			continue
		}
		return f, err
	}
}

// staleAfter is how old a temporary bundle file must be before a later run
// removes it: one left by a run killed between create and rename. A
// concurrent run's file is younger than this.
const staleAfter = 5 * time.Second

// removeStaleTemps removes the stale temporary files of the bundle name
// from root.
func removeStaleTemps(root *os.Root, name string) {
	d, err := root.Open(".")
	if err != nil {
		return
	}
	names, _ := d.Readdirnames(-1)
	d.Close()
	pattern := "." + name + ".*.tmp"
	for _, n := range names {
		if ok, _ := filepath.Match(pattern, n); !ok {
			continue
		}
		if fi, err := root.Lstat(n); err == nil && fi.Mode().IsRegular() && time.Since(fi.ModTime()) > staleAfter {
			root.Remove(n)
		}
	}
}

// sameContent reports whether the file name in root holds exactly the
// concatenation of parts, reading it in small pieces.
func sameContent(root *os.Root, name string, parts [][]byte) bool {
	f, err := root.Open(name)
	if err != nil {
		return false
	}
	defer f.Close()
	want := append([][]byte(nil), parts...) // consumed below
	buf := make([]byte, 32<<10)
	for {
		n, err := io.ReadFull(f, buf)
		for chunk := buf[:n]; len(chunk) > 0; {
			for len(want) > 0 && len(want[0]) == 0 {
				want = want[1:]
			}
			if len(want) == 0 {
				return false // the file is longer
			}
			k := min(len(chunk), len(want[0]))
			if !bytes.Equal(chunk[:k], want[0][:k]) {
				return false
			}
			chunk, want[0] = chunk[k:], want[0][k:]
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			for _, w := range want {
				if len(w) > 0 {
					return false // the file is shorter
				}
			}
			return true
		}
		if err != nil {
			return false
		}
	}
}

// checkOwner refuses a bundle folder (what names it) that belongs to
// another user: on a shared /tmp, whoever owns /tmp/kai-entrypoint could
// swap the bundle, and so choose which CAs every client trusts. Root's
// folders are fine (an image may prepare one, group-writable for
// OpenShift's GID 0; an emptyDir is root's and world-writable).
func checkOwner(what string, fi fs.FileInfo) error {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok || st.Uid == 0 || int(st.Uid) == os.Geteuid() {
		return nil
	}
	return fmt.Errorf("%s belongs to uid %d, neither this user (uid %d) nor root, who could replace the bundle", what, st.Uid, os.Geteuid())
}

// checkLink refuses a symlink at the folder path dir that belongs to
// another user (see checkOwner): it could point at a folder of root's,
// such as /etc/ssl/certs.
func checkLink(dir string) error {
	fi, err := os.Lstat(dir)
	if err != nil || fi.Mode()&fs.ModeSymlink == 0 {
		return nil
	}
	return checkOwner("symlink "+dir, fi)
}

// hasExtras reports whether a read cert source gave a certificate: the
// bundle is then written.
func (p *Plan) hasExtras() bool {
	for _, r := range p.Sources {
		if len(r.Certs) > 0 {
			return true
		}
	}
	return false
}
