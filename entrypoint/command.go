package entrypoint

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
)

// LookPath resolves file as a shell would, on the given PATH value (the
// derived environment's, so that KAI_ENV_PATH counts). A name with a slash
// is used as it is. Not found is exit code 127; found but not executable
// (no x bit, a directory) is 126.
func LookPath(file, pathEnv string) (string, error) {
	if file == "" {
		return "", &CommandError{Command: file, Code: ExitNotFound, Reason: "empty command"}
	}
	if strings.Contains(file, "/") {
		if err := executable(file); err != nil {
			return "", commandError(file, err)
		}
		return file, nil
	}
	var firstErr error
	for _, dir := range filepath.SplitList(pathEnv) {
		if dir == "" {
			dir = "." // an empty PATH entry means the working directory
		}
		path := filepath.Join(dir, file)
		err := executable(path)
		if err == nil {
			return path, nil
		}
		if firstErr == nil && !errors.Is(err, fs.ErrNotExist) {
			firstErr = err // found, but not executable: remember, keep looking
		}
	}
	if firstErr != nil {
		return "", commandError(file, firstErr)
	}
	return "", &CommandError{Command: file, Code: ExitNotFound, Reason: "not found in PATH=" + pathEnv}
}

var errIsDir = errors.New("is a directory")

func executable(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	if fi.IsDir() {
		return errIsDir
	}
	if !fi.Mode().IsRegular() {
		return errors.New("not a regular file")
	}
	// access(2) with X_OK: what execve will check, for the real user.
	if err := syscall.Access(path, 1); err != nil {
		return err
	}
	return nil
}

func commandError(file string, err error) *CommandError {
	if errors.Is(err, fs.ErrNotExist) {
		return &CommandError{Command: file, Code: ExitNotFound, Reason: "no such file or directory"}
	}
	reason := cause(err).Error()
	if errors.Is(err, fs.ErrPermission) {
		reason = "permission denied (not executable)"
	}
	return &CommandError{Command: file, Code: ExitNotExecutable, Reason: reason}
}

// Exec replaces the process with the plan's command: the command keeps the
// shim's PID. It returns only on failure, with a *CommandError.
func Exec(p *Plan) error {
	err := syscall.Exec(p.Path, p.Argv, p.Env)
	if errors.Is(err, syscall.ENOENT) {
		// The file went away, or its #! interpreter does not exist.
		return &CommandError{Command: p.Path, Code: ExitNotFound, Reason: "exec: " + err.Error() + " (missing file or #! interpreter)"}
	}
	return &CommandError{Command: p.Path, Code: ExitNotExecutable, Reason: "exec: " + err.Error()}
}

// defaultPath is searched when the environment has no PATH, as execvp does.
const defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// ResolveCommand finds the command on the PATH the command will get (or
// defaultPath), and checks that its arguments and environment can pass
// through execve (see checkExec). A command that cannot be run is one more
// configuration problem with --check or when there are others; alone, it
// is a *CommandError (127, 126).
func (p *Plan) ResolveCommand(command []string) {
	var cmdErr error
	if len(command) > 0 {
		pathEnv, ok := p.env.Get("PATH")
		if !ok {
			pathEnv = defaultPath
		}
		p.Argv = slices.Clone(command)
		p.Path, cmdErr = LookPath(command[0], pathEnv)
	}
	for _, err := range p.checkExec(execLimit()) {
		p.gather(err)
	}
	if cmdErr != nil && (p.mode == ModeCheck || p.errs != nil) {
		p.gather(cmdErr)
	} else {
		p.cmdErr = cmdErr
	}
}
