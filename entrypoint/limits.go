package entrypoint

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
)

// The kernel's execve limits (Linux fs/exec.c): one argument or
// environment string, with its terminating NUL, may take MAX_ARG_STRLEN (32
// pages); all the strings, the command's path and one pointer per string
// may take a quarter of the stack limit (ulimit -s), at most 3/4 of
// _STK_LIM (8 MiB) and never less than ARG_MAX (128 KiB).
var maxArgStrlen = 32 * os.Getpagesize()

const (
	argMax      = 128 << 10
	stackLimCap = 6 << 20
)

// execLimit returns the room execve has for the strings and pointers.
func execLimit() int {
	limit := uint64(stackLimCap)
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_STACK, &rl); err == nil {
		limit = min(limit, rl.Cur/4)
	}
	return max(int(limit), argMax)
}

// checkExec reports what would make execve fail with the plan's
// environment, naming the variables: a value with a NUL byte (it would cut
// the value short), a NAME=value over maxArgStrlen, or the whole over limit.
// The argv came in through execve, so only its share of the total counts.
func (p *Plan) checkExec(limit int) []error {
	var errs []error
	total := len(p.Path) + 1 + (max(len(p.Argv), 1)+len(p.Env))*(strconv.IntSize/8)
	for _, a := range p.Argv {
		total += len(a) + 1
	}
	for _, kv := range p.Env {
		total += len(kv) + 1
		name, value, _ := strings.Cut(kv, "=")
		if strings.IndexByte(value, 0) >= 0 {
			errs = append(errs, fmt.Errorf("%s: the value holds a NUL byte, which no environment variable can carry", p.describe(name)))
		}
		if len(kv)+1 > maxArgStrlen {
			errs = append(errs, fmt.Errorf("%s: %d bytes as NAME=value, over the kernel's limit of %d bytes for one environment string", p.describe(name), len(kv), maxArgStrlen-1))
		}
	}
	if total > limit {
		env := slices.Clone(p.Env)
		slices.SortStableFunc(env, func(a, b string) int { return len(b) - len(a) })
		var largest []string
		for _, kv := range env[:min(3, len(env))] {
			name, _, _ := strings.Cut(kv, "=")
			largest = append(largest, fmt.Sprintf("%s (%d bytes)", p.describe(name), len(kv)))
		}
		errs = append(errs, fmt.Errorf("the command's environment and arguments take %d bytes, over the %d bytes the kernel allows (a quarter of the stack limit, ulimit -s, at most 6 MiB); the largest variables: %s", total, limit, strings.Join(largest, ", ")))
	}
	return errs
}

// describe names an environment variable of the plan and, for a
// pass-through one, where its value came from.
func (p *Plan) describe(name string) string {
	for _, pt := range p.Passthrough {
		switch {
		case pt.Name == name && pt.Secret:
			return fmt.Sprintf("%s (from %s=%q)", name, pt.Var, pt.Path)
		case pt.Name == name:
			return fmt.Sprintf("%s (from %s)", name, pt.Var)
		}
	}
	return name
}
