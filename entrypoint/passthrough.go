package entrypoint

import (
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"sort"
	"strings"

	"github.com/hashicorp/go-multierror"
	"github.com/konveyor/kai-entrypoint/trust"
)

// maxSecretSize bounds a KAI_SECRET_* file: a secret is a token or a
// password, never a file of this size.
const maxSecretSize = 1 << 20

var validName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// Passthrough is one KAI_ENV_* or KAI_SECRET_* variable.
type Passthrough struct {
	Var    string // KAI_ENV_X or KAI_SECRET_X
	Name   string // X, exact spelling kept
	Value  string // never printed when Secret
	Secret bool
	Path   string // the secret file
}

// ReadPassthrough collects every KAI_ENV_<NAME> and KAI_SECRET_<NAME> of
// environ, sorted by name. A KAI_SECRET_ value is the path of a file whose
// contents, less one trailing "\n" or "\r\n", become the value (the
// Docker/Kubernetes secret-file convention). Errors name the variable and
// the path, never a secret value.
func ReadPassthrough(environ []string) ([]Passthrough, error) {
	var errs *multierror.Error
	byName := map[string]Passthrough{}
	var out []Passthrough
	for _, kv := range environ {
		v, value, _ := strings.Cut(kv, "=")
		var p Passthrough
		switch {
		case strings.HasPrefix(v, envPrefix):
			p = Passthrough{Var: v, Name: strings.TrimPrefix(v, envPrefix), Value: value}
		case strings.HasPrefix(v, secretPrefix):
			p = Passthrough{Var: v, Name: strings.TrimPrefix(v, secretPrefix), Secret: true, Path: value}
		default:
			continue
		}
		if !validName.MatchString(p.Name) {
			errs = multierror.Append(errs, fmt.Errorf("%s: %q is not a valid variable name (want [A-Za-z_][A-Za-z0-9_]*)", v, p.Name))
			continue
		}
		if prev, dup := byName[p.Name]; dup {
			if prev.Var != p.Var {
				errs = multierror.Append(errs, fmt.Errorf("%s and %s: both set %s; keep one", prev.Var, p.Var, p.Name))
			}
			continue
		}
		if p.Secret {
			val, err := readSecret(p.Path)
			if err != nil {
				errs = multierror.Append(errs, fmt.Errorf("%s=%q: %w", v, p.Path, err))
				continue
			}
			p.Value = val
		}
		byName[p.Name] = p
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, asConfigError(errs)
}

func readSecret(path string) (string, error) {
	if path == "" {
		return "", errors.New("empty path")
	}
	// Stat before opening: opening a FIFO would block.
	fi, err := os.Stat(path)
	if err != nil {
		return "", cause(err)
	}
	if !fi.Mode().IsRegular() {
		return "", fmt.Errorf("not a regular file (%s)", trust.FileKind(fi.Mode()))
	}
	if fi.Size() > maxSecretSize {
		return "", fmt.Errorf("larger than 1 MiB (%d bytes)", fi.Size())
	}
	f, err := os.Open(path)
	if err != nil {
		return "", cause(err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxSecretSize+1))
	if err != nil {
		return "", cause(err)
	}
	if len(b) > maxSecretSize {
		return "", errors.New("larger than 1 MiB")
	}
	s := string(b)
	if strings.HasSuffix(s, "\r\n") {
		s = s[:len(s)-2]
	} else if strings.HasSuffix(s, "\n") {
		s = s[:len(s)-1]
	}
	return s, nil
}

// PassThrough reads the KAI_ENV_* and KAI_SECRET_* variables (see
// ReadPassthrough); SetEnvironment applies them last.
func (p *Plan) PassThrough() {
	pass, err := ReadPassthrough(p.inherited.Slice())
	p.gather(err)
	p.Passthrough = pass
	for _, pt := range pass {
		if pt.Secret {
			p.secrets = append(p.secrets, pt.Value)
		}
		if pt.Name == "PYTHONHTTPSVERIFY" {
			p.warn(pt.Var + " is set: PYTHONHTTPSVERIFY has no effect on Python 3 (outside some vendor builds); trust a CA through KAI_CERT_DIRS instead")
		}
	}
	if _, ok := p.inherited.Get("PYTHONHTTPSVERIFY"); ok {
		p.warn("inherited PYTHONHTTPSVERIFY is set: it has no effect on Python 3 (outside some vendor builds); trust a CA through KAI_CERT_DIRS instead")
	}
}
