package entrypoint

import "strings"

// Env is an environment that keeps the order of its variables, so that the
// command sees the inherited variables where they were and the derived ones
// after them.
type Env struct {
	names  []string
	values map[string]string
}

// NewEnv parses an environ slice ("NAME=value"). As in glibc's getenv and
// Go's syscall.Getenv, the first of duplicate names wins. Entries without
// '=' are dropped.
func NewEnv(environ []string) *Env {
	e := &Env{values: make(map[string]string, len(environ))}
	for _, kv := range environ {
		name, value, ok := strings.Cut(kv, "=")
		if !ok || name == "" {
			continue
		}
		if _, dup := e.values[name]; dup {
			continue
		}
		e.names = append(e.names, name)
		e.values[name] = value
	}
	return e
}

// Get returns the value of name and whether it is set.
func (e *Env) Get(name string) (string, bool) {
	v, ok := e.values[name]
	return v, ok
}

// Set sets name to value, keeping its position when it already exists.
func (e *Env) Set(name, value string) {
	if _, ok := e.values[name]; !ok {
		e.names = append(e.names, name)
	}
	e.values[name] = value
}

// Unset removes name.
func (e *Env) Unset(name string) {
	if _, ok := e.values[name]; !ok {
		return
	}
	delete(e.values, name)
	for i, n := range e.names {
		if n == name {
			e.names = append(e.names[:i], e.names[i+1:]...)
			break
		}
	}
}

// Names returns the variable names in order.
func (e *Env) Names() []string { return append([]string(nil), e.names...) }

// Slice returns the environment as "NAME=value" entries, in order.
func (e *Env) Slice() []string {
	out := make([]string, 0, len(e.names))
	for _, n := range e.names {
		out = append(out, n+"="+e.values[n])
	}
	return out
}
