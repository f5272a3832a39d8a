// Package mounts removes a folder that may still have file systems mounted
// below it: a container engine's data root, or a root file system that a
// failed debootstrap left /proc mounted in.
package mounts

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
)

// RemoveTree lazily unmounts everything mounted at or below dir, then
// deletes dir. When something stays mounted it leaves dir in place and
// says so, with why each unmount failed.
func RemoveTree(dir string) error {
	var failed []error
	for _, m := range below(dir) {
		if out, err := exec.Command("umount", "-l", m).CombinedOutput(); err != nil {
			failed = append(failed, fmt.Errorf("umount %s: %v: %s", m, err, strings.TrimSpace(string(out))))
		}
	}
	if left := below(dir); len(left) > 0 {
		return errors.Join(append(failed, fmt.Errorf("not removing %s: still mounted: %v", dir, left))...)
	}
	return os.RemoveAll(dir)
}

// below lists the mount points at or below dir, deepest first.
func below(dir string) []string {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	var out []string
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) < 5 {
			continue
		}
		mp := strings.ReplaceAll(f[4], `\040`, " ")
		if mp == dir || strings.HasPrefix(mp, dir+"/") {
			out = append([]string{mp}, out...)
		}
	}
	return out
}
