package entrypoint

import (
	"fmt"
	"strings"

	"github.com/konveyor/kai-entrypoint/trust"
)

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

// SetEnvironment completes the command's environment: every CA variable
// points at the bundle when one was built, then the KAI_ENV_* and
// KAI_SECRET_* values are set last, so that the explicit escape hatch wins.
func (p *Plan) SetEnvironment() {
	if p.Bundle != nil {
		for _, v := range caVars {
			p.env.Set(v.Name, p.Config.CABundle)
			p.CAVars = append(p.CAVars, v.Name)
		}
	}
	for _, pt := range p.Passthrough {
		p.env.Set(pt.Name, pt.Value)
		if !pt.Secret && isCAVar(pt.Name) && !trust.IsRegular(pt.Value) {
			p.warn(fmt.Sprintf("%s=%q overrides the CA bundle with a file that does not exist: clients such as requests and httpx will fail", pt.Var, pt.Value))
		}
	}
	p.Env = p.env.Slice()
}

func isCAVar(name string) bool {
	for _, v := range caVars {
		if v.Name == name {
			return true
		}
	}
	return false
}
