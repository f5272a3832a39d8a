// Command maxrss runs its arguments with its own environment, output
// discarded, and prints the child's peak RSS in KiB.
//
// BenchmarkStartup needs it because a child started by the (large) test
// process reports the test's RSS: os/exec clones with CLONE_VM, and execve
// keeps the old mm's peak in the process's maxrss. This launcher is small,
// so its floor (what it reports for /bin/true) is about 1-2 MiB.
package main

import (
	"fmt"
	"os"
	"syscall"
)

func main() {
	null, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		fail(err)
	}
	pid, err := syscall.ForkExec(os.Args[1], os.Args[1:], &syscall.ProcAttr{
		Env:   os.Environ(),
		Files: []uintptr{null.Fd(), null.Fd(), null.Fd()},
	})
	if err != nil {
		fail(err)
	}
	var ws syscall.WaitStatus
	var ru syscall.Rusage
	if _, err := syscall.Wait4(pid, &ws, 0, &ru); err != nil {
		fail(err)
	}
	if ws.ExitStatus() != 0 {
		fail(fmt.Errorf("%s: %v", os.Args[1], ws))
	}
	fmt.Println(ru.Maxrss)
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "maxrss:", err)
	os.Exit(1)
}
