package dockerfile

import (
	"slices"

	"github.com/moby/buildkit/frontend/dockerfile/shell"
)

// argEnv is an ordered set of variables (build arguments and ENV) as
// BuildKit's shell lexer reads them. It implements shell.EnvGetter.
type argEnv struct {
	keys []string
	vals map[string]string
}

func newArgEnv() *argEnv { return &argEnv{vals: map[string]string{}} }

func (e *argEnv) Get(k string) (string, bool) {
	v, ok := e.vals[k]
	return v, ok
}

func (e *argEnv) Keys() []string { return e.keys }

func (e *argEnv) set(k, v string) {
	if _, ok := e.vals[k]; !ok {
		e.keys = append(e.keys, k)
	}
	e.vals[k] = v
}

func (e *argEnv) clone() *argEnv {
	c := &argEnv{keys: slices.Clone(e.keys), vals: make(map[string]string, len(e.vals))}
	for k, v := range e.vals {
		c.vals[k] = v
	}
	return c
}

// platformDefaults are the values BuildKit gives the automatic platform
// arguments; only used to decide whether a FROM is valid with its defaults
// and to expand FROM lines that use them.
var platformDefaults = [][2]string{
	{"BUILDPLATFORM", "linux/amd64"}, {"BUILDOS", "linux"}, {"BUILDARCH", "amd64"}, {"BUILDVARIANT", ""},
	{"TARGETPLATFORM", "linux/amd64"}, {"TARGETOS", "linux"}, {"TARGETARCH", "amd64"}, {"TARGETVARIANT", ""},
}

// expander expands words the way BuildKit's dispatcher does, with its
// shell lexer (quotes removed, ${VAR:-default} ...).
type expander struct {
	lex *shell.Lex
}

func newExpander(escape rune) *expander {
	lex := shell.NewLex(escape)
	return &expander{lex: lex}
}

// word expands w with env. known is false when a variable in it has no
// value (a build argument without default, the base image's ENV ...): the
// result is then a guess that rules must not rely on.
func (x *expander) word(w string, env *argEnv) (string, bool) {
	if w == "" {
		return "", true
	}
	res, err := x.lex.ProcessWordWithMatches(w, env)
	if err != nil {
		return w, false
	}
	return res.Result, len(res.Unmatched) == 0
}

// wordMatches is word with the names of the variables that had no value.
func (x *expander) wordMatches(w string, env *argEnv) (string, []string, error) {
	res, err := x.lex.ProcessWordWithMatches(w, env)
	if err != nil {
		return w, nil, err
	}
	var un []string
	for k := range res.Unmatched {
		un = append(un, k)
	}
	slices.Sort(un)
	return res.Result, un, nil
}
