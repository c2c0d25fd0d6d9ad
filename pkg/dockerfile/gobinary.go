package dockerfile

import (
	"path"
	"strings"
)

// linkage of a Go binary: whether it needs libc at run time.
type linkage int

const (
	linkUnknown linkage = iota
	linkStatic
	linkDynamic
)

// goBin is a Go program built in (or copied into) a stage; the Go/scratch
// rules follow it from the go build to the final stage.
type goBin struct {
	// path is where it is in the stage; dir is set instead when only the
	// directory is known (go install: $GOPATH/bin/<name>).
	path, dir string
	link      linkage
	// pkg is the main package as a directory of the build context ("." or
	// "cmd/x"), "" when unknown.
	pkg string
}

// resolve is p relative to directory cwd, as a shell resolves it.
func resolve(cwd, p string) string {
	if path.IsAbs(p) {
		return path.Clean(p)
	}
	return path.Join(cwd, p)
}

func (b *goBin) matches(src string) bool {
	if b.path != "" {
		return b.path == src
	}
	return path.Dir(src) == b.dir || strings.HasPrefix(src, b.dir+"/")
}

// under reports whether the binary is inside directory dir.
func (b *goBin) under(dir string) bool {
	p := b.path
	if p == "" {
		p = b.dir + "/x"
	}
	return dir == "/" || strings.HasPrefix(p, strings.TrimSuffix(dir, "/")+"/")
}

// goEnv is the value of a Go environment variable for a command: its own
// prefix or export, else the stage's ENV. known is false when unset.
func goEnv(si *stageInfo, cmd *shCmd, name string) (string, bool) {
	if v, ok := cmd.Env[name]; ok {
		return v, true
	}
	return si.env.Get(name)
}

// goBuild records the binary a `go build` or `go install` makes.
func (l *linterState) goBuild(si *stageInfo, cmd *shCmd, cwd string) {
	install := cmd.is("go", "install")
	var out string
	var pkgs []string
	for i := 2; i < len(cmd.Args); i++ {
		a := cmd.Args[i]
		switch {
		case a == "-o" && i+1 < len(cmd.Args):
			out = cmd.Args[i+1]
			i++
		case strings.HasPrefix(a, "-o="):
			out = strings.TrimPrefix(a, "-o=")
		case a == "-ldflags" || a == "-gcflags" || a == "-tags" || a == "-mod" || a == "-modfile" || a == "-p" ||
			a == "-pkgdir" || a == "-toolexec" || a == "-asmflags" || a == "-overlay" || a == "-pgo" || a == "-C" || a == "-buildmode":
			i++
		case strings.HasPrefix(a, "-"):
		default:
			if a != "build" && a != "install" {
				pkgs = append(pkgs, a)
			}
		}
	}
	// go build main.go util.go: the files' package.
	if len(pkgs) > 0 && strings.HasSuffix(pkgs[0], ".go") {
		dir := path.Dir(pkgs[0])
		for _, p := range pkgs {
			if !strings.HasSuffix(p, ".go") || path.Dir(p) != dir {
				return
			}
		}
		if dir != "." && !strings.HasPrefix(dir, "/") && !strings.HasPrefix(dir, "../") {
			dir = "./" + dir
		}
		pkgs = []string{dir}
	}
	if len(pkgs) > 1 || install && len(pkgs) != 1 {
		return // several programs, or go install of the module's tools: not followed
	}
	b := &goBin{link: l.linkage(si, cmd)}
	pkg := "."
	if len(pkgs) == 1 {
		pkg = pkgs[0]
	}
	if v, _, ok := strings.Cut(pkg, "@"); ok {
		pkg = v
	}
	b.pkg = si.contextPkg(cwd, pkg)
	switch {
	case install:
		gobin, ok := goEnv(si, cmd, "GOBIN")
		if !ok {
			gopath, ok := goEnv(si, cmd, "GOPATH")
			if !ok && !si.golang {
				return
			}
			if !ok {
				gopath = "/go"
			}
			gobin = path.Join(gopath, "bin")
		}
		b.dir = gobin
	case out == "":
		b.dir = cwd
	case strings.HasSuffix(out, "/"):
		b.dir = resolve(cwd, out)
	default:
		b.path = resolve(cwd, out)
	}
	si.bins = append(si.bins, b)
}

// contextPkg maps a package argument to a directory of the build context,
// when the sources were copied with COPY . <dir>.
func (si *stageInfo) contextPkg(cwd, pkg string) string {
	if si.ctxRoot == "" || !(pkg == "." || strings.HasPrefix(pkg, "./") || strings.HasPrefix(pkg, "../") || strings.HasPrefix(pkg, "/")) {
		return ""
	}
	abs := resolve(cwd, pkg)
	if abs != si.ctxRoot && !strings.HasPrefix(abs, si.ctxRoot+"/") {
		return ""
	}
	rel := strings.TrimPrefix(strings.TrimPrefix(abs, si.ctxRoot), "/")
	if rel == "" {
		rel = "."
	}
	return rel
}

// linkage decides whether a go build makes a static binary, or says it
// cannot know.
func (l *linterState) linkage(si *stageInfo, cmd *shCmd) linkage {
	args := strings.Join(cmd.Args, " ")
	if strings.Contains(args, "-static") {
		return linkStatic
	}
	cgo, set := goEnv(si, cmd, "CGO_ENABLED")
	switch {
	case set && cgo == "0":
		return linkStatic
	case set && cgo == "1":
		return linkDynamic
	case set:
		return linkUnknown
	}
	// Unset: the go command turns cgo off when there is no C compiler
	// (Go 1.20+), as in the alpine golang images; the Debian ones have gcc.
	switch {
	case si.golang && si.alpine && !si.cc:
		return linkStatic
	case si.golang && (si.cc || !si.alpine):
		return linkDynamic
	}
	return linkUnknown
}

// copyBins brings the binaries of stage from that src (one COPY source)
// covers into si at dest, and returns them.
func (si *stageInfo) copyBins(from *stageInfo, src, dest string, destDir bool) []*goBin {
	var out []*goBin
	for _, b := range from.bins {
		nb := &goBin{link: b.link, pkg: b.pkg}
		switch {
		case b.matches(src):
			nb.path = dest
			if destDir {
				nb.path = path.Join(dest, path.Base(src))
			}
		case b.under(src):
			base := strings.TrimSuffix(src, "/")
			if b.path == "" {
				nb.dir = path.Join(dest, strings.TrimPrefix(b.dir, base))
			} else {
				nb.path = path.Join(dest, strings.TrimPrefix(b.path, base))
			}
		default:
			continue
		}
		out = append(out, nb)
	}
	si.bins = append(si.bins, out...)
	return out
}
