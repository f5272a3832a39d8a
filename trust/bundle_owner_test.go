package trust

import (
	"bytes"
	"encoding/binary"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/konveyor/kai-entrypoint/internal/testpki"
)

// TestWriteAtomic_ForeignFolder: a bundle folder owned by another user is
// refused, even when it already holds the right bytes.
func TestWriteAtomic_ForeignFolder(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to give the folder away")
	}
	dir := filepath.Join(t.TempDir(), "kai-entrypoint")
	if err := os.Mkdir(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "ca-bundle.pem")
	data := []byte("-----BEGIN CERTIFICATE-----\nAA==\n-----END CERTIFICATE-----\n")
	if _, err := WriteAtomic(path, data); err != nil {
		t.Fatalf("own folder: %v", err)
	}
	if err := os.Chown(dir, 4242, 4242); err != nil {
		t.Fatal(err)
	}
	_, err := WriteAtomic(path, data)
	if err == nil {
		t.Fatal("wrote into a folder that belongs to uid 4242")
	}
	for _, want := range []string{"folder " + dir, "belongs to uid 4242"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	if err := os.Chown(dir, 0, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := WriteAtomic(path, data); err != nil {
		t.Errorf("root's folder: %v", err)
	}
}

// TestBundleFolderOwner: a folder of another user, or another user's
// symlink at the folder path (it could point at a folder of root's such as
// /etc/ssl/certs), is refused by the check before the run and by the write
// alike; root's folders and symlinks are fine.
func TestBundleFolderOwner(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to give folders and symlinks away")
	}
	dir := t.TempDir()
	roots := filepath.Join(dir, "roots") // stands for /etc/ssl/certs
	emptyDir := filepath.Join(dir, "emptydir")
	foreign := filepath.Join(dir, "foreign")
	for _, d := range []string{roots, emptyDir, foreign} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(emptyDir, 0o777|fs.ModeSticky); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(foreign, 4242, 4242); err != nil {
		t.Fatal(err)
	}
	foreignLink, rootLink, linkToForeign := filepath.Join(dir, "foreign-link"), filepath.Join(dir, "root-link"), filepath.Join(dir, "link-to-foreign")
	testpki.Symlink(t, roots, foreignLink)
	testpki.Symlink(t, roots, rootLink)
	testpki.Symlink(t, foreign, linkToForeign)
	if err := os.Lchown(foreignLink, 4242, 4242); err != nil {
		t.Fatal(err)
	}
	data := testpki.GenCA(t, "owner").PEM()

	tests := []struct {
		name   string
		folder string
		want   string // the cause in both errors; "" for none
	}{
		{name: "root's world-writable folder (an emptyDir)", folder: emptyDir},
		{name: "root's symlink to root's folder", folder: rootLink},
		{name: "a folder of another user", folder: foreign, want: "folder " + foreign + " belongs to uid 4242"},
		{name: "another user's symlink to root's folder", folder: foreignLink, want: "symlink " + foreignLink + " belongs to uid 4242"},
		{name: "root's symlink to another user's folder", folder: linkToForeign, want: "folder " + linkToForeign + " belongs to uid 4242"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(tt.folder, "ca-bundle.pem")
			checkErr := CheckFolder(tt.folder)
			written, writeErr := WriteAtomic(path, data)
			if tt.want == "" {
				if checkErr != nil || writeErr != nil || !written {
					t.Fatalf("check: %v; write: %v, %v", checkErr, written, writeErr)
				}
				checkFile(t, path, data, 0o644)
				os.Remove(path)
				return
			}
			checkWriteError(t, checkErr, path, tt.want)
			checkWriteError(t, writeErr, path, tt.want)
			noTemp(t, roots)
			noTemp(t, foreign)
		})
	}
}

// TestWriteAtomic_FolderSwappedAfterCheck swaps the checked bundle folder
// for a symlink to another folder while WriteAtomic is inside it: a
// fanotify permission event holds WriteAtomic at its open of the old
// bundle (same size, other bytes) until the swap is done. The new bundle
// must land in the folder that was checked, and nothing in the other.
func TestWriteAtomic_FolderSwappedAfterCheck(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for fanotify permission events")
	}
	const (
		fanCloexec, fanNonblock, fanClassContent = 0x1, 0x2, 0x4
		fanMarkAdd, fanOpenPerm, fanAllow        = 0x1, 0x10000, 0x1
	)
	data := testpki.GenCA(t, "swap").PEM()
	old := bytes.Clone(data)
	old[len(old)/2] ^= 1
	dir := t.TempDir()
	folder, moved, other := filepath.Join(dir, "kai"), filepath.Join(dir, "kai.checked"), filepath.Join(dir, "other")
	if err := os.Mkdir(other, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(folder, "ca-bundle.pem")
	testpki.WriteFile(t, path, old)
	if err := os.Chmod(path, 0o644); err != nil { // so that WriteAtomic reads it
		t.Fatal(err)
	}

	fd, _, errno := syscall.Syscall(syscall.SYS_FANOTIFY_INIT, fanClassContent|fanCloexec|fanNonblock, uintptr(os.O_RDONLY), 0)
	if errno != 0 {
		t.Skip("no fanotify here:", errno)
	}
	fan := os.NewFile(fd, "fanotify") // non-blocking: reads honour the deadline
	defer fan.Close()                 // which allows an event left pending
	p, err := syscall.BytePtrFromString(path)
	if err != nil {
		t.Fatal(err)
	}
	// An absolute path: the directory descriptor (0) is ignored.
	if _, _, errno := syscall.Syscall6(syscall.SYS_FANOTIFY_MARK, fd, fanMarkAdd, fanOpenPerm, 0, uintptr(unsafe.Pointer(p)), 0); errno != 0 {
		t.Fatal("fanotify_mark:", errno)
	}

	done := make(chan error, 1)
	go func() {
		_, err := WriteAtomic(path, data)
		done <- err
	}()
	var event [4096]byte // struct fanotify_event_metadata: the event's fd at bytes 16-19
	fan.SetReadDeadline(time.Now().Add(10 * time.Second))
	if n, err := fan.Read(event[:]); err != nil || n < 24 {
		t.Fatalf("no open of the old bundle: %d bytes, %v", n, err)
	}
	eventFD := binary.LittleEndian.Uint32(event[16:20])
	if err := os.Rename(folder, moved); err != nil {
		t.Fatal(err)
	}
	testpki.Symlink(t, other, folder)
	var allow [8]byte // struct fanotify_response
	binary.LittleEndian.PutUint32(allow[0:4], eventFD)
	binary.LittleEndian.PutUint32(allow[4:8], fanAllow)
	if _, err := fan.Write(allow[:]); err != nil {
		t.Fatal(err)
	}
	syscall.Close(int(eventFD))
	err = <-done
	fan.Close() // no more events: the checks below open the old bundle too
	if err != nil {
		t.Fatal(err)
	}
	checkFile(t, filepath.Join(moved, "ca-bundle.pem"), data, 0o644)
	noTemp(t, moved, "ca-bundle.pem")
	noTemp(t, other)
}
