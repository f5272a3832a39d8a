package trust

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/konveyor/kai-entrypoint/internal/testio"
	"github.com/konveyor/kai-entrypoint/internal/testpki"
)

func TestWriteAtomic(t *testing.T) {
	data := testpki.Concat(testpki.GenCA(t, "w1").PEM(), testpki.GenCA(t, "w2").PEM())
	other := testpki.GenCA(t, "w3").PEM()
	const longAgo = 1000000000 // 2001

	t.Run("creates missing folders 0755 and the file 0644 under umask 077", func(t *testing.T) {
		defer syscall.Umask(syscall.Umask(0o077))
		dir := t.TempDir()
		path := filepath.Join(dir, "a", "b", "ca-bundle.pem")
		written, err := WriteAtomic(path, data)
		if err != nil || !written {
			t.Fatalf("got %v, %v", written, err)
		}
		checkFile(t, path, data, 0o644)
		for _, d := range []string{filepath.Join(dir, "a"), filepath.Join(dir, "a", "b")} {
			if fi, err := os.Stat(d); err != nil || !fi.IsDir() || fi.Mode().Perm() != 0o755 {
				t.Errorf("%s: %v %v, want a folder 0755", d, fi.Mode(), err)
			}
		}
		noTemp(t, filepath.Join(dir, "a", "b"), "ca-bundle.pem")
	})

	t.Run("stale temporary files of this bundle removed, others kept", func(t *testing.T) {
		dir := t.TempDir()
		path := filepath.Join(dir, "ca.pem")
		stale, fresh, otherStale := ".ca.pem.111.tmp", ".ca.pem.222.tmp", ".other.pem.333.tmp"
		for _, n := range []string{stale, fresh, otherStale} {
			testpki.WriteFile(t, filepath.Join(dir, n), other)
		}
		old := time.Unix(longAgo, 0)
		for _, n := range []string{stale, otherStale} {
			if err := os.Chtimes(filepath.Join(dir, n), old, old); err != nil {
				t.Fatal(err)
			}
		}
		if written, err := WriteAtomic(path, data); err != nil || !written {
			t.Fatalf("got %v, %v; want true, nil", written, err)
		}
		checkFile(t, path, data, 0o644)
		noTemp(t, dir, "ca.pem", fresh, otherStale)
	})

	t.Run("identical file left alone", func(t *testing.T) {
		dir := t.TempDir()
		path := filepath.Join(dir, "ca.pem")
		if _, err := WriteAtomic(path, data); err != nil {
			t.Fatal(err)
		}
		old := time.Unix(longAgo, 0)
		if err := os.Chtimes(path, old, old); err != nil {
			t.Fatal(err)
		}
		before := statT(t, path)
		written, err := WriteAtomic(path, data)
		if err != nil || written {
			t.Fatalf("got %v, %v; want false, nil", written, err)
		}
		after := statT(t, path)
		if after.Ino != before.Ino || after.Mtim != before.Mtim || after.Ctim != before.Ctim {
			t.Errorf("file touched: inode %d→%d, mtime %v→%v", before.Ino, after.Ino, before.Mtim, after.Mtim)
		}
		noTemp(t, dir, "ca.pem")
	})

	t.Run("identical bytes with another mode rewritten 0644", func(t *testing.T) {
		dir := t.TempDir()
		path := filepath.Join(dir, "ca.pem")
		testpki.WriteFile(t, path, data)
		if err := os.Chmod(path, 0o600); err != nil {
			t.Fatal(err)
		}
		if written, err := WriteAtomic(path, data); err != nil || !written {
			t.Fatalf("got %v, %v; want true, nil", written, err)
		}
		checkFile(t, path, data, 0o644)
	})

	t.Run("changed content replaced by rename, not in place", func(t *testing.T) {
		dir := t.TempDir()
		path := filepath.Join(dir, "ca.pem")
		testpki.WriteFile(t, path, other)
		if err := os.Chmod(path, 0o644); err != nil {
			t.Fatal(err)
		}
		// A reader holding the old file (here, a hard link) keeps the old bytes whole.
		if err := os.Link(path, filepath.Join(dir, "held-open")); err != nil {
			t.Fatal(err)
		}
		before := statT(t, path)
		if written, err := WriteAtomic(path, data); err != nil || !written {
			t.Fatalf("got %v, %v; want true, nil", written, err)
		}
		checkFile(t, path, data, 0o644)
		checkFile(t, filepath.Join(dir, "held-open"), other, 0o644)
		if statT(t, path).Ino == before.Ino {
			t.Error("the target was rewritten in place")
		}
		noTemp(t, dir, "ca.pem", "held-open")
	})

	for _, tt := range []struct {
		name   string
		victim []byte      // what the planted symlink points at; nil: nothing
		mode   fs.FileMode // the victim's mode
	}{
		{name: "symlink planted at the target replaced, not followed", victim: []byte("precious\n"), mode: 0o600},
		{name: "symlink to a 0644 file with the same bytes replaced", victim: data, mode: 0o644},
		{name: "dangling symlink at the target replaced", mode: 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			victim := filepath.Join(dir, "elsewhere", "victim")
			if tt.victim != nil {
				testpki.WriteFile(t, victim, tt.victim)
				if err := os.Chmod(victim, tt.mode); err != nil {
					t.Fatal(err)
				}
			}
			path := filepath.Join(dir, "out", "ca.pem")
			if err := os.Mkdir(filepath.Dir(path), 0o755); err != nil {
				t.Fatal(err)
			}
			testpki.Symlink(t, victim, path)
			if written, err := WriteAtomic(path, data); err != nil || !written {
				t.Fatalf("got %v, %v; want true, nil", written, err)
			}
			if fi, err := os.Lstat(path); err != nil || !fi.Mode().IsRegular() {
				t.Fatalf("target is %v, %v; want a regular file", fi.Mode(), err)
			}
			checkFile(t, path, data, 0o644)
			if tt.victim != nil {
				checkFile(t, victim, tt.victim, tt.mode)
			} else if _, err := os.Lstat(victim); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("the dangling symlink's target was created: %v", err)
			}
			noTemp(t, filepath.Dir(path), "ca.pem")
		})
	}

	t.Run("FIFO planted at the target replaced unopened", func(t *testing.T) {
		dir := t.TempDir()
		path := filepath.Join(dir, "ca.pem")
		if err := syscall.Mkfifo(path, 0o644); err != nil {
			t.Fatal(err)
		}
		type result struct {
			written bool
			err     error
		}
		done := make(chan result, 1)
		go func() {
			w, err := WriteAtomic(path, data)
			done <- result{w, err}
		}()
		select {
		case r := <-done:
			if r.err != nil || !r.written {
				t.Fatalf("got %v, %v; want true, nil", r.written, r.err)
			}
		case <-time.After(10 * time.Second):
			if f, err := os.OpenFile(path, os.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
				f.Close() // release the reader
			}
			t.Fatal("WriteAtomic opened the FIFO")
		}
		checkFile(t, path, data, 0o644)
		noTemp(t, dir, "ca.pem")
	})

	for _, tt := range []struct {
		name  string
		setup func(t *testing.T, dir string) (path string)
		cause string // the error's cause
		list  string // the folder to check for temporary files
		keep  []string
	}{
		{name: "target is a folder", setup: func(t *testing.T, dir string) string {
			testpki.WriteFile(t, filepath.Join(dir, "ca.pem", "inside"), other)
			return filepath.Join(dir, "ca.pem")
		}, cause: "file exists", list: ".", keep: []string{"ca.pem"}},
		{name: "parent is a regular file", setup: func(t *testing.T, dir string) string {
			testpki.WriteFile(t, filepath.Join(dir, "tmp"), other)
			return filepath.Join(dir, "tmp", "kai", "ca.pem")
		}, cause: "not a directory", list: ".", keep: []string{"tmp"}},
		{name: "parent is a regular file, one level", setup: func(t *testing.T, dir string) string {
			testpki.WriteFile(t, filepath.Join(dir, "tmp"), other)
			return filepath.Join(dir, "tmp", "ca.pem")
		}, cause: "not a directory", list: ".", keep: []string{"tmp"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := tt.setup(t, dir)
			written, err := WriteAtomic(path, data)
			if written || err == nil {
				t.Fatalf("got %v, %v; want an error", written, err)
			}
			checkWriteError(t, err, path, tt.cause)
			noTemp(t, filepath.Join(dir, tt.list), tt.keep...)
		})
	}
}

// TestWriteAtomic_ReadOnlyMount writes to a tmpfs that is then remounted
// read only, in a private mount namespace: as root, a chmod 0555 folder
// would not stop the write.
func TestWriteAtomic_ReadOnlyMount(t *testing.T) {
	data, newData := testpki.GenCA(t, "ro 1").PEM(), testpki.GenCA(t, "ro 2").PEM()
	mnt := t.TempDir()
	path := filepath.Join(mnt, "ca-bundle.pem")
	type result struct {
		unchangedWritten bool
		unchangedErr     error
		changedErr       error
		subErr           error
		names            []string
		content          []byte
	}
	var res result
	err := inMountNamespace(func() error {
		if err := syscall.Mount("tmpfs", mnt, "tmpfs", 0, "size=1m,mode=0755"); err != nil {
			return errSkip{err}
		}
		if _, err := WriteAtomic(path, data); err != nil {
			return err
		}
		if err := syscall.Mount("", mnt, "", syscall.MS_REMOUNT|syscall.MS_RDONLY, ""); err != nil {
			return errSkip{err}
		}
		res.unchangedWritten, res.unchangedErr = WriteAtomic(path, data)
		_, res.changedErr = WriteAtomic(path, newData)
		_, res.subErr = WriteAtomic(filepath.Join(mnt, "kai", "ca-bundle.pem"), newData)
		entries, err := os.ReadDir(mnt)
		if err != nil {
			return err
		}
		for _, e := range entries {
			res.names = append(res.names, e.Name())
		}
		res.content, err = os.ReadFile(path)
		return err
	})
	skipOrFatal(t, err)
	if res.unchangedWritten || res.unchangedErr != nil {
		t.Errorf("unchanged bundle on a read-only folder: %v, %v; want false, nil", res.unchangedWritten, res.unchangedErr)
	}
	checkWriteError(t, res.changedErr, path, "read-only file system")
	checkWriteError(t, res.subErr, filepath.Join(mnt, "kai", "ca-bundle.pem"), "read-only file system")
	if fmt.Sprint(res.names) != "[ca-bundle.pem]" || !bytes.Equal(res.content, data) {
		t.Errorf("folder holds %v, target %d bytes; want only the old bundle", res.names, len(res.content))
	}
}

// TestWriteAtomic_DiskFull fills a small tmpfs: the write fails, the old
// bundle stays whole and no temporary file is left.
func TestWriteAtomic_DiskFull(t *testing.T) {
	old := testpki.GenCA(t, "full").PEM()
	huge := bytes.Repeat(old, 200) // about 120 KiB, on a 64 KiB tmpfs
	mnt := t.TempDir()
	path := filepath.Join(mnt, "ca-bundle.pem")
	var names []string
	var content []byte
	var written bool
	var werr error
	err := inMountNamespace(func() error {
		if err := syscall.Mount("tmpfs", mnt, "tmpfs", 0, "size=64k,mode=0755"); err != nil {
			return errSkip{err}
		}
		if _, err := WriteAtomic(path, old); err != nil {
			return err
		}
		written, werr = WriteAtomic(path, huge)
		entries, err := os.ReadDir(mnt)
		if err != nil {
			return err
		}
		for _, e := range entries {
			names = append(names, e.Name())
		}
		content, err = os.ReadFile(path)
		return err
	})
	skipOrFatal(t, err)
	if written {
		t.Error("written = true")
	}
	checkWriteError(t, werr, path, "no space left on device")
	if fmt.Sprint(names) != "[ca-bundle.pem]" || !bytes.Equal(content, old) {
		t.Errorf("folder holds %v, target %d bytes; want only the old bundle", names, len(content))
	}
}

// TestWriteAtomic_NonRootUID writes as an arbitrary non-root UID, as on
// OpenShift: fine in a folder it may write (an emptyDir), an error naming
// the path in a read-only folder, and an identical bundle there is left
// alone. Only the test's own thread changes its credentials.
func TestWriteAtomic_NonRootUID(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to switch UID")
	}
	const uid = 1000770000 // an OpenShift-style UID with no passwd entry
	data := testpki.GenCA(t, "uid").PEM()
	dir := t.TempDir()
	for d := dir; d != os.TempDir() && d != "/"; d = filepath.Dir(d) {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	rw := filepath.Join(dir, "emptydir")
	ro := filepath.Join(dir, "readonly")
	for _, d := range []string{rw, ro} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(rw, 0o777|fs.ModeSticky); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(ro, 0o555); err != nil {
		t.Fatal(err)
	}
	baked := filepath.Join(ro, "baked.pem")
	testpki.WriteFile(t, baked, data)
	if err := os.Chmod(baked, 0o644); err != nil { // as WriteAtomic leaves it, whatever the umask
		t.Fatal(err)
	}

	type attempt struct {
		path    string
		written bool
		err     error
	}
	var got []attempt
	err := testio.OnThreadAs(uid, func() {
		for _, p := range []string{
			filepath.Join(rw, "ca-bundle.pem"),
			filepath.Join(rw, "kai", "sub", "ca-bundle.pem"),
			filepath.Join(ro, "ca-bundle.pem"),
			filepath.Join(ro, "kai", "ca-bundle.pem"),
			baked,
		} {
			w, err := WriteAtomic(p, data)
			got = append(got, attempt{p, w, err})
		}
	})
	if err != nil {
		t.Skip("cannot switch the thread's UID:", err)
	}
	for i, a := range got[:2] {
		if a.err != nil || !a.written {
			t.Errorf("%d: %s: %v, %v", i, a.path, a.written, a.err)
			continue
		}
		checkFile(t, a.path, data, 0o644)
		if st := statT(t, a.path); st.Uid != uid {
			t.Errorf("%s owned by %d, want %d", a.path, st.Uid, uid)
		}
	}
	checkWriteError(t, got[2].err, got[2].path, "permission denied")
	checkWriteError(t, got[3].err, got[3].path, "permission denied")
	if got[4].written || got[4].err != nil {
		t.Errorf("identical baked bundle in a read-only folder: %v, %v; want false, nil", got[4].written, got[4].err)
	}
	noTemp(t, ro, "baked.pem")
	noTemp(t, rw, "ca-bundle.pem", "kai")
}

// errSkip marks a failure to set up a namespace or mount: skip, not fail.
type errSkip struct{ err error }

func (e errSkip) Error() string { return e.err.Error() }

func skipOrFatal(t *testing.T, err error) {
	t.Helper()
	var s errSkip
	if errors.As(err, &s) {
		t.Skip("no private mount namespace or tmpfs here:", s.err)
	}
	if err != nil {
		t.Fatal(err)
	}
}

// inMountNamespace runs f on a thread of its own in a private mount
// namespace. The thread stays locked, so it exits with the goroutine and
// nothing else ever runs in the namespace or sees its mounts.
func inMountNamespace(f func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread dies with the goroutine
		if err := syscall.Unshare(syscall.CLONE_NEWNS); err != nil {
			errc <- errSkip{err}
			return
		}
		if err := syscall.Mount("", "/", "", syscall.MS_REC|syscall.MS_PRIVATE, ""); err != nil {
			errc <- errSkip{err}
			return
		}
		errc <- f()
	}()
	return <-errc
}

func checkWriteError(t *testing.T, err error, path, cause string) {
	t.Helper()
	if err == nil {
		t.Errorf("%s: no error, want one about %q", path, cause)
		return
	}
	if !strings.Contains(err.Error(), cause) {
		t.Errorf("%s: error %q, want one about %q", path, err, cause)
	}
}

// noTemp fails unless dir holds exactly the names keep.
func noTemp(t *testing.T, dir string, keep ...string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	slices.Sort(keep)
	if fmt.Sprint(names) != fmt.Sprint(keep) {
		t.Errorf("%s holds %q, want %q", dir, names, keep)
	}
}

func checkFile(t *testing.T, path string, data []byte, mode fs.FileMode) {
	t.Helper()
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !fi.Mode().IsRegular() || fi.Mode().Perm() != mode || !bytes.Equal(got, data) {
		t.Errorf("%s: %v, %d bytes; want a regular file %v with the %d bytes expected", path, fi.Mode(), len(got), mode, len(data))
	}
}

func statT(t *testing.T, path string) *syscall.Stat_t {
	t.Helper()
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Sys().(*syscall.Stat_t)
}
