package dockerfile

import (
	"regexp"
	"strings"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
)

// runScript parses a RUN instruction's script: the shell form (with its
// heredocs) with mvdan.cc/sh, the exec form as one command. It is nil when
// the stage's shell is not a POSIX one or the script does not parse.
func (l *linterState) runScript(si *stageInfo, c *instructions.RunCommand) *shellScript {
	if !c.PrependShell {
		cmd := shCmd{Args: c.CmdLine, Lit: make([]bool, len(c.CmdLine)), Env: map[string]string{}}
		for i := range cmd.Lit {
			cmd.Lit[i] = true
		}
		if len(cmd.Args) == 0 {
			return &shellScript{}
		}
		return &shellScript{Cmds: []shCmd{cmd}, Count: 1}
	}
	if !si.posix {
		return nil
	}
	line := strings.Join(c.CmdLine, " ")
	var script strings.Builder
	if onlyHeredocs(line) {
		// RUN <<EOT: the heredoc is the script.
		for _, f := range c.Files {
			script.WriteString(f.Data)
			script.WriteString("\n")
		}
	} else {
		script.WriteString(line)
		script.WriteString("\n")
		for _, f := range c.Files {
			script.WriteString(f.Data)
			if !strings.HasSuffix(f.Data, "\n") {
				script.WriteString("\n")
			}
			script.WriteString(f.Name)
			script.WriteString("\n")
		}
	}
	sc, ok := parseShell(script.String(), si.env)
	if !ok {
		return nil
	}
	return sc
}

var heredocOnly = regexp.MustCompile(`^(?:\s*<<-?\s*["']?[A-Za-z_][A-Za-z0-9_]*["']?)+\s*$`)

func onlyHeredocs(s string) bool { return heredocOnly.MatchString(s) }

// cacheMount reports whether the RUN has a cache (or tmpfs) mount whose
// target contains one of dirs.
func cacheMount(c *instructions.RunCommand, dirs ...string) bool {
	for _, m := range instructions.GetMounts(c) {
		if m.Type != instructions.MountTypeCache && m.Type != instructions.MountTypeTmpfs {
			continue
		}
		for _, d := range dirs {
			if strings.Contains(m.Target, d) {
				return true
			}
		}
	}
	return false
}

// packages returns the operands of a package-manager command after the
// subcommand sub, skipping options and the values of valueOpts.
func packages(c *shCmd, sub string, valueOpts ...string) (pkgs []string, lit []bool) {
	seen := false
	for i := 1; i < len(c.Args); i++ {
		a := c.Args[i]
		if strings.HasPrefix(a, "-") {
			for _, o := range valueOpts {
				if a == o {
					i++
				}
			}
			continue
		}
		if !seen {
			seen = a == sub
			continue
		}
		pkgs = append(pkgs, a)
		lit = append(lit, c.Lit[i])
	}
	return pkgs, lit
}

var aptValueOpts = []string{"-o", "--option", "-t", "--target-release", "-c", "--config-file"}

// runRules are the hadolint shell rules on one parsed RUN.
func (l *linterState) runRules(si *stageInfo, c *instructions.RunCommand, sc *shellScript, ln int) {
	var cd, sudo, aptPin, apkPin, apkCache, goPin bool
	for i := range sc.Cmds {
		cmd := &sc.Cmds[i]
		switch name := cmd.name(); name {
		case "cd":
			cd = true
		case "sudo":
			sudo = true
		case "apt-get", "apt":
			if cmd.is(name, "install") {
				pkgs, lit := packages(cmd, "install", aptValueOpts...)
				for j, p := range pkgs {
					if lit[j] && !strings.ContainsAny(p, "=/") && !strings.HasSuffix(p, ".deb") {
						aptPin = true
					}
				}
			}
		case "apk":
			if cmd.is("apk", "add") {
				pkgs, lit := packages(cmd, "add", "-X", "--repository", "-t", "--virtual", "--repositories-file", "-p", "--root")
				for j, p := range pkgs {
					if lit[j] && !strings.Contains(p, "=") && !strings.HasSuffix(p, ".apk") && !strings.Contains(p, "~") {
						apkPin = true
					}
				}
				if !cmd.has("--no-cache") {
					apkCache = true
				}
			}
		case "go":
			if cmd.is("go", "install") {
				pkgs, lit := packages(cmd, "install", "-ldflags", "-gcflags", "-tags", "-o", "-mod", "-modfile", "-p", "-pkgdir", "-toolexec", "-asmflags", "-overlay", "-pgo", "-C")
				for j, p := range pkgs {
					if !lit[j] || strings.HasPrefix(p, ".") || strings.HasPrefix(p, "/") {
						continue
					}
					if _, ver, ok := strings.Cut(p, "@"); !ok || ver == "latest" || ver == "" {
						goPin = true
					}
				}
			}
		}
	}
	if c.PrependShell {
		if cd {
			l.add("DL3003", ln, "")
		}
		if sc.Pipe && !si.pipefail && !sc.Pipefail {
			l.add("DL4006", ln, "")
		}
	}
	if sudo {
		l.add("DL3004", ln, "")
	}
	if aptPin {
		l.add("DL3008", ln, "Pin versions in apt-get install (apt-get install <package>=<version>)")
	}
	if apkPin {
		l.add("DL3018", ln, "Pin versions in apk add (apk add <package>=<version>)")
	}
	if apkCache && !cacheMount(c, "/var/cache/apk") {
		l.add("DL3019", ln, "")
	}
	if goPin {
		l.add("DL3062", ln, "Pin versions in go install (go install <package>@<version>, not @latest)")
	}
}
