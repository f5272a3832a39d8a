// Package testio holds small I/O helpers the test suites share.
package testio

import (
	"bytes"
	"runtime"
	"sync"
	"syscall"
)

// SyncBuffer is an io.Writer that a process's output goroutine and a test
// reading it may use at the same time.
type SyncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *SyncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns everything written so far.
func (b *SyncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// OnThreadAs runs f on a thread of its own whose credentials are uid/gid
// uid with no supplementary groups. The raw syscalls change that thread
// only (glibc and Go's syscall.Setuid change every thread); it stays
// locked and dies with the goroutine.
func OnThreadAs(uid int, f func()) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		for _, c := range [][4]uintptr{
			{syscall.SYS_SETGROUPS, 0, 0, 0},
			{syscall.SYS_SETRESGID, uintptr(uid), uintptr(uid), uintptr(uid)},
			{syscall.SYS_SETRESUID, uintptr(uid), uintptr(uid), uintptr(uid)},
		} {
			if _, _, errno := syscall.RawSyscall(c[0], c[1], c[2], c[3]); errno != 0 {
				errc <- errno
				return
			}
		}
		f()
		errc <- nil
	}()
	return <-errc
}
