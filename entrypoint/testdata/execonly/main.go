// Command execonly only execs /bin/true. BenchmarkStartup times it as the
// floor every Go entrypoint pays: the Go runtime's start-up and one execve.
package main

import (
	"os"
	"syscall"
)

func main() {
	err := syscall.Exec("/bin/true", []string{"true"}, os.Environ())
	os.Stderr.WriteString("execonly: exec /bin/true: " + err.Error() + "\n")
	os.Exit(127)
}
