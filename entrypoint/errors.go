package entrypoint

import (
	"errors"
	"io/fs"
	"strings"

	"github.com/hashicorp/go-multierror"
)

// Exit codes, as sysexits.h and the shells define them.
const (
	ExitUsage         = 64  // EX_USAGE: bad command line
	ExitProbe         = 69  // EX_UNAVAILABLE: a --probe failed
	ExitConfig        = 78  // EX_CONFIG: bad configuration
	ExitNotExecutable = 126 // the command exists but cannot be executed
	ExitNotFound      = 127 // the command was not found
	ExitSignalBase    = 128 // 128+N: signal N arrived before the exec
)

// ConfigError gathers every configuration problem. Its message lists them
// one per line.
type ConfigError struct {
	errs *multierror.Error
}

// Problems returns one line per problem.
func (e *ConfigError) Problems() []string {
	var out []string
	for _, err := range e.errs.Errors {
		var ce *ConfigError
		if errors.As(err, &ce) {
			out = append(out, ce.Problems()...)
			continue
		}
		out = append(out, err.Error())
	}
	return out
}

func (e *ConfigError) Error() string { return strings.Join(e.Problems(), "\n") }

// Unwrap lets errors.Is and errors.As see every problem.
func (e *ConfigError) Unwrap() []error { return e.errs.Errors }

// asConfigError returns nil when errs holds nothing, and avoids the
// typed-nil trap (go-multierror #12, #57).
func asConfigError(errs *multierror.Error) error {
	if errs.ErrorOrNil() == nil {
		return nil
	}
	return &ConfigError{errs}
}

// CommandError is a command that cannot be found (127) or run (126).
type CommandError struct {
	Command string
	Code    int
	Reason  string
}

func (e *CommandError) Error() string { return "command " + quote(e.Command) + ": " + e.Reason }

// ExitCode maps an error from the plan or Exec to the documented exit code.
func ExitCode(err error) int {
	var ce *CommandError
	var cfg *ConfigError
	var pe *ProbeError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &pe):
		return ExitProbe
	case errors.As(err, &cfg):
		return ExitConfig
	case errors.As(err, &ce):
		return ce.Code
	}
	return ExitConfig
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

func quote(s string) string {
	if strings.ContainsAny(s, " \t\"'") || s == "" {
		return `"` + strings.ReplaceAll(s, `"`, `\"`) + `"`
	}
	return s
}
