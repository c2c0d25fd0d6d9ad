package dockerfile

import (
	"strings"

	"mvdan.cc/sh/v3/syntax"
)

// shCmd is one simple command of a RUN script, as the shell parser sees it.
type shCmd struct {
	// Args are the words after expansion of the variables the stage knows;
	// a variable it does not know stays as ${NAME}, a command substitution
	// as $(...). Lit[i] is false for such words.
	Args []string
	Lit  []bool
	// Env are the VAR=value assignments in effect for the command: its own
	// prefix (CGO_ENABLED=0 go build), `env VAR=value cmd`, and earlier
	// `export VAR=value` / `VAR=value` statements of the script.
	Env map[string]string
}

// name is the command's program name without its directory ("" when it
// is not a literal).
func (c *shCmd) name() string {
	if len(c.Args) == 0 || !c.Lit[0] {
		return ""
	}
	n := c.Args[0]
	if i := strings.LastIndexByte(n, '/'); i >= 0 {
		n = n[i+1:]
	}
	return n
}

// is reports whether the command is program name followed by the words sub
// (ignoring options before them), e.g. is("apt-get", "install").
func (c *shCmd) is(name string, sub ...string) bool {
	if c.name() != name {
		return false
	}
	rest := c.operands(1)
	for i, s := range sub {
		if i >= len(rest) || rest[i] != s {
			return false
		}
	}
	return true
}

// operands returns the arguments from index from on that are not options.
func (c *shCmd) operands(from int) []string {
	var out []string
	for _, a := range c.Args[min(from, len(c.Args)):] {
		if !strings.HasPrefix(a, "-") {
			out = append(out, a)
		}
	}
	return out
}

// has reports whether one of the arguments is one of opts (an exact
// option, or --opt=value for a long one).
func (c *shCmd) has(opts ...string) bool {
	for _, a := range c.Args[1:] {
		for _, o := range opts {
			if a == o || strings.HasPrefix(o, "--") && strings.HasPrefix(a, o+"=") {
				return true
			}
		}
	}
	return false
}

// shellScript is a parsed RUN script.
type shellScript struct {
	Cmds     []shCmd
	Pipe     bool // a | pipeline
	Pipefail bool // set -o pipefail
	// Count of simple commands, for DL3059.
	Count int
}

func newShellParser() *syntax.Parser {
	return syntax.NewParser(syntax.Variant(syntax.LangBash), syntax.KeepComments(false))
}

// parseShell parses script with mvdan.cc/sh (bash dialect; p is not safe
// for concurrent use, so each Lint has its own). env holds the
// variables known at this point of the Dockerfile. ok is false when the
// script does not parse: rules then stay silent.
func parseShell(p *syntax.Parser, script string, env *argEnv) (*shellScript, bool) {
	f, err := p.Parse(strings.NewReader(script), "")
	if err != nil {
		return nil, false
	}
	s := &shellScript{}
	vars := map[string]string{}
	var substs []syntax.Node // $(...): a pipe in there does not decide the RUN's status
	inSubst := func(n syntax.Node) bool {
		for _, c := range substs {
			if n.Pos().After(c.Pos()) && c.End().After(n.End()) {
				return true
			}
		}
		return false
	}
	syntax.Walk(f, func(n syntax.Node) bool {
		switch n := n.(type) {
		case *syntax.CmdSubst, *syntax.ProcSubst:
			substs = append(substs, n)
		case *syntax.BinaryCmd:
			if (n.Op == syntax.Pipe || n.Op == syntax.PipeAll) && !inSubst(n) {
				s.Pipe = true
			}
		case *syntax.DeclClause:
			if n.Variant != nil && n.Variant.Value == "export" {
				for _, a := range n.Args {
					if a.Name != nil && a.Value != nil {
						v, _ := renderWord(a.Value, env, vars)
						vars[a.Name.Value] = v
					}
				}
			}
		case *syntax.CallExpr:
			if len(n.Args) == 0 {
				for _, a := range n.Assigns {
					if a.Name != nil && a.Value != nil {
						v, _ := renderWord(a.Value, env, vars)
						vars[a.Name.Value] = v
					}
				}
				return true
			}
			c := shCmd{Env: map[string]string{}}
			for k, v := range vars {
				c.Env[k] = v
			}
			for _, a := range n.Assigns {
				if a.Name != nil && a.Value != nil {
					c.Env[a.Name.Value], _ = renderWord(a.Value, env, vars)
				}
			}
			for _, w := range n.Args {
				v, lit := renderWord(w, env, vars)
				c.Args = append(c.Args, v)
				c.Lit = append(c.Lit, lit)
			}
			// env VAR=value cmd ...
			for c.name() == "env" && len(c.Args) > 1 {
				c.Args, c.Lit = c.Args[1:], c.Lit[1:]
				for len(c.Args) > 0 && strings.Contains(c.Args[0], "=") && !strings.HasPrefix(c.Args[0], "-") {
					k, v, _ := strings.Cut(c.Args[0], "=")
					c.Env[k] = v
					c.Args, c.Lit = c.Args[1:], c.Lit[1:]
				}
			}
			if len(c.Args) == 0 {
				return true
			}
			if c.name() == "set" && setsPipefail(c.Args[1:]) {
				s.Pipefail = true
			}
			s.Count++
			s.Cmds = append(s.Cmds, c)
		}
		return true
	})
	return s, true
}

func setsPipefail(args []string) bool {
	for i, a := range args {
		if a == "pipefail" && i > 0 && strings.HasPrefix(args[i-1], "-") && strings.HasSuffix(args[i-1], "o") {
			return true
		}
	}
	return false
}

// renderWord gives a word's value with quotes removed; variables come from
// vars (set earlier in the script) or env (the Dockerfile's ARG/ENV), others
// stay as ${NAME}. lit is false when something could not be known.
func renderWord(w *syntax.Word, env *argEnv, vars map[string]string) (string, bool) {
	var b strings.Builder
	lit := renderParts(&b, w.Parts, env, vars)
	return b.String(), lit
}

func renderParts(b *strings.Builder, parts []syntax.WordPart, env *argEnv, vars map[string]string) bool {
	lit := true
	for _, p := range parts {
		switch p := p.(type) {
		case *syntax.Lit:
			b.WriteString(unescape(p.Value))
		case *syntax.SglQuoted:
			b.WriteString(p.Value)
		case *syntax.DblQuoted:
			if !renderParts(b, p.Parts, env, vars) {
				lit = false
			}
		case *syntax.ParamExp:
			name := ""
			if p.Param != nil {
				name = p.Param.Value
			}
			simple := p.Exp == nil && p.Repl == nil && p.Index == nil && p.Slice == nil && !p.Length && !p.Excl
			if v, ok := vars[name]; ok && simple {
				b.WriteString(v)
				continue
			}
			if v, ok := env.Get(name); ok && simple {
				b.WriteString(v)
				continue
			}
			b.WriteString("${" + name + "}")
			lit = false
		default:
			b.WriteString("$(...)")
			lit = false
		}
	}
	return lit
}

// unescape removes the backslashes of an unquoted literal (a\ b is "a b").
func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+1 < len(s) {
			i++
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
