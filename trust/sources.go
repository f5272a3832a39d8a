package trust

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
)

// maxCertFileSize bounds one file in a cert folder: no CA file is this
// large, so a larger one is a mistake (a mounted disk image, a log file).
const maxCertFileSize = 4 << 20

// Source is what reading one cert source (a file or a folder) gave.
type Source struct {
	Entry    string
	Missing  bool // the entry does not exist
	Certs    []Cert
	Errs     []error  // files that cannot be read, certificates that do not parse
	Warnings []string // files skipped and why
	NoCert   []string // files read that hold no certificate (a README, a key, a .p12)
	Files    int      // files read
}

// Ready reports whether a waited-for entry may be used: it exists, every
// certificate in it parses, and it holds at least one.
func (r Source) Ready() bool { return !r.Missing && len(r.Errs) == 0 && len(r.Certs) > 0 }

// fileID identifies a file by device and inode, so that a file reached
// through several links (c_rehash hash links, ConfigMap ..data links) is
// read once.
type fileID struct{ dev, ino uint64 }

func idOf(fi fs.FileInfo) (fileID, bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fileID{}, false
	}
	return fileID{uint64(st.Dev), uint64(st.Ino)}, true
}

// ReadSource reads one cert source: a file, or a folder walked
// recursively in name order. Names starting with "." are skipped (which
// handles the ..data links of Kubernetes ConfigMap and Secret mounts),
// symlinks are followed, and non-regular files are skipped unopened. A
// file or folder inside the entry that cannot be read for lack of
// permission is skipped with a warning; the entry itself must be readable.
func ReadSource(entry string) Source {
	r := Source{Entry: entry}
	fi, err := os.Stat(entry)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			r.Missing = true
			return r
		}
		r.Errs = append(r.Errs, fmt.Errorf("%s: %v", entry, cause(err)))
		return r
	}
	seen := map[fileID]bool{}
	if fi.IsDir() {
		r.walk(entry, fi, seen)
	} else {
		r.file(entry, fi, seen)
	}
	return r
}

func (r *Source) walk(dir string, fi fs.FileInfo, seen map[fileID]bool) {
	if id, ok := idOf(fi); ok {
		if seen[id] {
			return // a symlink loop, or a folder reached twice
		}
		seen[id] = true
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		if dir != r.Entry && errors.Is(err, fs.ErrPermission) {
			r.Warnings = append(r.Warnings, fmt.Sprintf("%s: permission denied, skipped", dir))
			return
		}
		r.Errs = append(r.Errs, fmt.Errorf("reading folder %s: %v", dir, cause(err)))
		return
	}
	// Real files first, then symlinks, each in name order: a file that a
	// c_rehash hash link (abcd1234.0) also reaches is then reported under
	// its own name, and the link is skipped as already read.
	sort.SliceStable(entries, func(i, j int) bool {
		return entries[i].Type()&fs.ModeSymlink == 0 && entries[j].Type()&fs.ModeSymlink != 0
	})
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") {
			continue
		}
		path := filepath.Join(dir, e.Name())
		fi, err := os.Stat(path)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				r.Warnings = append(r.Warnings, fmt.Sprintf("%s: broken symlink, skipped", path))
				continue
			}
			r.Errs = append(r.Errs, fmt.Errorf("%s: %v", path, cause(err)))
			continue
		}
		if fi.IsDir() {
			r.walk(path, fi, seen)
			continue
		}
		r.file(path, fi, seen)
	}
}

func (r *Source) file(path string, fi fs.FileInfo, seen map[fileID]bool) {
	if !fi.Mode().IsRegular() {
		r.Warnings = append(r.Warnings, fmt.Sprintf("%s: not a regular file (%s), skipped", path, FileKind(fi.Mode())))
		return
	}
	if id, ok := idOf(fi); ok {
		if seen[id] {
			return
		}
		seen[id] = true
	}
	if fi.Size() > maxCertFileSize {
		r.Errs = append(r.Errs, fmt.Errorf("%s: %d bytes, larger than the 4 MiB a certificate file may have", path, fi.Size()))
		return
	}
	data, err := os.ReadFile(path)
	if err != nil {
		if path != r.Entry && errors.Is(err, fs.ErrPermission) {
			// Inside a mounted folder: mitmproxy's confdir holds the CA's
			// key as 0600 files that a non-root server cannot read.
			r.Warnings = append(r.Warnings, fmt.Sprintf("%s: permission denied, skipped", path))
			return
		}
		r.Errs = append(r.Errs, fmt.Errorf("reading %s: %v", path, cause(err)))
		return
	}
	r.Files++
	certs, warnings, errs := parseCertFile(path, data)
	r.Certs = append(r.Certs, certs...)
	r.Warnings = append(r.Warnings, warnings...)
	r.Errs = append(r.Errs, errs...)
	if len(certs) == 0 && len(warnings) == 0 && len(errs) == 0 {
		r.NoCert = append(r.NoCert, path)
	}
}

// FileKind names a non-regular file's type for a message.
func FileKind(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "a directory"
	case m&fs.ModeNamedPipe != 0:
		return "a FIFO"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeDevice != 0:
		return "a device"
	}
	return m.Type().String()
}

// cause strips the operation and path from an *fs.PathError, for messages
// that name the path themselves.
func cause(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
