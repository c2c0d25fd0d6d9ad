package dockerfile

import (
	"path"
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
	sc, ok := parseShell(l.sh, script.String(), si.env)
	if !ok {
		return nil
	}
	return sc
}

var heredocOnly = lazyRegexp(`^(?:\s*<<-?\s*["']?[A-Za-z_][A-Za-z0-9_]*["']?)+\s*$`)

func onlyHeredocs(s string) bool { return heredocOnly().MatchString(s) }

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
	var cd, sudo, aptPin, aptRec, aptUpdate, aptClean, apkPin, apkCache, goPin, wget, dnfPin, pip, yarn, yarnClean, lnSh bool
	var apt, aptYes, pipPin, npmPin bool
	for i := range sc.Cmds {
		cmd := &sc.Cmds[i]
		switch name := cmd.name(); name {
		case "cd":
			cd = true
		case "sudo":
			sudo = true
		case "apt-get", "apt":
			if name == "apt" {
				apt = true
			}
			if name == "apt-get" && cmd.is(name, "install") && !aptAssumeYes(cmd) {
				aptYes = true
			}
			if cmd.is(name, "update") {
				aptUpdate = true
			}
			if cmd.is(name, "install") {
				pkgs, lit := packages(cmd, "install", aptValueOpts...)
				for j, p := range pkgs {
					if lit[j] && !strings.ContainsAny(p, "=/") && !strings.HasSuffix(p, ".deb") {
						aptPin = true
					}
				}
				if name == "apt-get" && !cmd.has("--no-install-recommends") && !aptNoRecommends(cmd) {
					aptRec = true
				}
			}
		case "rm":
			for _, a := range cmd.Args[1:] {
				if strings.HasPrefix(a, "/var/lib/apt/lists") {
					aptClean = true
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
		case "wget":
			if !wgetQuiet(cmd) {
				wget = true
			}
		case "dnf", "microdnf":
			if cmd.is(name, "install") {
				pkgs, lit := packages(cmd, "install", "--repo", "--enablerepo", "--disablerepo", "--setopt", "--releasever", "--installroot")
				for j, p := range pkgs {
					if lit[j] && !rpmVersioned().MatchString(p) && !strings.HasSuffix(p, ".rpm") && !strings.Contains(p, "/") {
						dnfPin = true
					}
				}
			}
		case "yarn":
			if cmd.is("yarn", "install") {
				yarn = true
			}
			if cmd.is("yarn", "cache", "clean") {
				yarnClean = true
			}
		case "npm":
			if cmd.is("npm", "install") || cmd.is("npm", "i") || cmd.is("npm", "add") {
				pkgs, lit := packages(cmd, cmd.operands(1)[0], "--prefix", "--registry", "--cache", "-w", "--workspace")
				for j, p := range pkgs {
					if lit[j] && npmUnpinned(p) {
						npmPin = true
					}
				}
			}
		case "ln":
			// Replacing sh by another shell; not providing one (ln -s /busybox/sh /bin/sh).
			if ops := cmd.operands(1); len(ops) == 2 && (ops[1] == "/bin/sh" || ops[1] == "/usr/bin/sh") && path.Base(ops[0]) != "sh" && path.Base(ops[0]) != "busybox" {
				lnSh = true
			}
		}
		if pipInstall(cmd) && pipUnpinned(cmd) {
			pipPin = true
		}
		if pipInstall(cmd) && !cmd.has("--no-cache-dir") && cmd.Env["PIP_NO_CACHE_DIR"] == "" {
			if _, set := si.env.Get("PIP_NO_CACHE_DIR"); !set && !cacheMount(c, ".cache/pip") {
				pip = true
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
	if apt {
		l.add("DL3027", ln, "")
	}
	if aptYes {
		l.add("DL3014", ln, "")
	}
	if pipPin {
		l.add("DL3013", ln, "")
	}
	if npmPin {
		l.add("DL3016", ln, "")
	}
	if aptPin {
		l.add("DL3008", ln, "Pin versions in apt-get install (apt-get install <package>=<version>)")
	}
	if aptRec {
		l.add("DL3015", ln, "")
	}
	if aptUpdate && !aptClean && !cacheMount(c, "/var/lib/apt") {
		si.aptLists = append(si.aptLists, ln)
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
	if wget {
		l.add("DL3047", ln, "")
	}
	if dnfPin {
		l.add("DL3041", ln, "")
	}
	if pip {
		l.add("DL3042", ln, "")
	}
	if yarn && !yarnClean && !cacheMount(c, "yarn") {
		l.add("DL3060", ln, "")
	}
	if lnSh {
		l.add("DL4005", ln, "")
	}
}

var rpmVersioned = lazyRegexp(`.-[0-9]`)

func aptNoRecommends(c *shCmd) bool {
	for i, a := range c.Args {
		if (a == "-o" || a == "--option") && i+1 < len(c.Args) && strings.Contains(strings.ToLower(c.Args[i+1]), "install-recommends=") {
			v := strings.ToLower(c.Args[i+1])
			return strings.HasSuffix(v, "=false") || strings.HasSuffix(v, "=0") || strings.HasSuffix(v, "=no")
		}
	}
	return false
}

// wgetQuiet: --progress, -q/--quiet, -nv/--no-verbose or a log file.
func wgetQuiet(c *shCmd) bool {
	for _, a := range c.Args[1:] {
		switch {
		case a == "-nv", a == "--no-verbose", a == "--quiet", a == "-o", a == "-a",
			strings.HasPrefix(a, "--progress"), strings.HasPrefix(a, "--output-file"), strings.HasPrefix(a, "--append-output"):
			return true
		case len(a) > 1 && a[0] == '-' && a[1] != '-':
			// a cluster of short options: -q, -qO- ...; stop at one that takes a value
			for _, r := range a[1:] {
				if r == 'q' || r == 'o' || r == 'a' {
					return true
				}
				if strings.ContainsRune("OPtTwUeiBY", r) {
					break
				}
			}
		}
	}
	return false
}

// pipInstall: pip install, pip3 install, python -m pip install.
func pipInstall(c *shCmd) bool {
	n := c.name()
	if strings.HasPrefix(n, "pip") && !strings.HasPrefix(n, "pipenv") && !strings.HasPrefix(n, "pipx") {
		return c.is(n, "install")
	}
	if strings.HasPrefix(n, "python") {
		for i := 1; i+2 < len(c.Args); i++ {
			if c.Args[i] == "-m" && c.Args[i+1] == "pip" && c.Args[i+2] == "install" {
				return true
			}
		}
	}
	return false
}

// aptAssumeYes: -y, --yes, --assume-yes, -qq (which implies -y), or -y in a
// cluster of short options (-qy).
func aptAssumeYes(c *shCmd) bool {
	for _, a := range c.Args[1:] {
		switch {
		case a == "--yes" || a == "--assume-yes" || a == "-qq" || a == "-q=2" || strings.HasPrefix(a, "--assume-yes="):
			return true
		case len(a) > 1 && a[0] == '-' && a[1] != '-' && strings.Contains(a, "y"):
			return true
		}
	}
	return false
}

// pipUnpinned: a package named without a version (==, >=, ~= ..., @ url);
// requirement and constraint files, local paths, archives and URLs are fine.
func pipUnpinned(c *shCmd) bool {
	valueOpts := map[string]bool{"-r": true, "--requirement": true, "-c": true, "--constraint": true, "-e": true, "--editable": true,
		"-i": true, "--index-url": true, "--extra-index-url": true, "-f": true, "--find-links": true, "-t": true, "--target": true,
		"--prefix": true, "--root": true, "--trusted-host": true, "--platform": true, "--python-version": true, "--implementation": true,
		"--abi": true, "--only-binary": true, "--no-binary": true, "--src": true, "--cache-dir": true, "--progress-bar": true, "--report": true}
	seen := false
	for i := 1; i < len(c.Args); i++ {
		a := c.Args[i]
		if !seen {
			seen = a == "install"
			continue
		}
		if strings.HasPrefix(a, "-") {
			if valueOpts[a] {
				i++
			}
			continue
		}
		if !c.Lit[i] || strings.ContainsAny(a, "=<>~!@/") || strings.HasPrefix(a, ".") ||
			strings.HasSuffix(a, ".whl") || strings.HasSuffix(a, ".tar.gz") || strings.HasSuffix(a, ".zip") {
			continue
		}
		return true
	}
	return false
}

// npmUnpinned: pkg or @scope/pkg without @version; paths, URLs, git and
// tarballs are fine.
func npmUnpinned(p string) bool {
	if strings.HasPrefix(p, ".") || strings.HasPrefix(p, "/") || strings.Contains(p, "://") || strings.HasPrefix(p, "git") ||
		strings.HasPrefix(p, "file:") || strings.HasSuffix(p, ".tgz") || strings.HasSuffix(p, ".tar.gz") {
		return false
	}
	name := p
	if strings.HasPrefix(name, "@") {
		name = name[1:]
		if !strings.Contains(name, "/") {
			return false
		}
	}
	return !strings.Contains(name, "@")
}
