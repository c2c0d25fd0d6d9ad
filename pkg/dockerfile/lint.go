package dockerfile

import (
	"bytes"
	"errors"
	"fmt"
	goparser "go/parser"
	"go/token"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/containerd/platforms"
	"github.com/distribution/reference"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/linter"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"
	"mvdan.cc/sh/v3/syntax"
)

// Finding is one problem. Line is 1-based; 0 means the whole file.
type Finding struct {
	Rule     string   `json:"rule"`
	Severity Severity `json:"severity"`
	Line     int      `json:"line"`
	Message  string   `json:"message"`
	URL      string   `json:"url,omitempty"`
}

// LintOptions tune Lint.
type LintOptions struct {
	// ContextDir, when set, enables the checks that need the build context:
	// NoDockerignore, CopyIgnoredFile and (from its Go sources) ExposeMismatch.
	ContextDir string
	// ContextKnown says ContextDir is the real build context (--context, or
	// docker k8sprep build), not a guess from the Dockerfile's folder.
	ContextKnown bool
	// Port the app listens on; 0 means learn it from ContextDir, if any.
	Port int
	// Ignore lists rule IDs (or aliases such as DL3025) to skip everywhere.
	Ignore []string
	// BuildArgs are --build-arg values: they replace ARG defaults, as in a build.
	BuildArgs map[string]string
}

// Report is the result of Lint. JSON field names are stable.
type Report struct {
	File     string    `json:"file"`
	Findings []Finding `json:"findings"`
}

// Count returns how many findings are at least as serious as s.
func (r *Report) Count(s Severity) int {
	n := 0
	for _, f := range r.Findings {
		if f.Severity <= s {
			n++
		}
	}
	return n
}

// Fails reports whether a finding reaches threshold.
func (r *Report) Fails(threshold Severity) bool {
	return threshold != SeverityNone && r.Count(threshold) > 0
}

// LintFile reads and lints path.
func LintFile(path string, o LintOptions) (*Report, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Lint(path, src, o)
}

var (
	ignoreInline = lazyRegexp(`^(?:k8sprep-ignore\s*=|hadolint\s+ignore\s*=)\s*(.+)$`)
	ignoreFile   = lazyRegexp(`^(?:k8sprep-ignore-file\s*=|hadolint\s+global\s+ignore\s*=)\s*(.+)$`)
	checkSkip    = lazyRegexp(`^check\s*=\s*(.*)$`)
	credValue    = lazyRegexp(`(?i)(?:[a-z0-9_.-]+:[^@/\s]+@(?:tcp\(|[a-z0-9.-]+[:/])|password=[^;&\s]+|pwd=[^;&\s]+)`)
	imageDigest  = lazyRegexp(`@sha(?:256|384|512):[0-9a-fA-F]+`)
	secretName   = lazyRegexp(`(?i)(?:_|^)(?:apikey|auth|credential|credentials|key|password|pword|passwd|secret|token|dsn|connection_?string|conn_?str)(?:_|$)`)
	secretAllow  = lazyRegexp(`(?i)(?:_|^)(?:public|file|version)(?:_|$)`)
)

var predefinedArgs = map[string]bool{
	"BUILDPLATFORM": true, "BUILDOS": true, "BUILDARCH": true, "BUILDVARIANT": true,
	"TARGETPLATFORM": true, "TARGETOS": true, "TARGETARCH": true, "TARGETVARIANT": true,
	"TARGETSTAGE": true, "BUILDKIT_SBOM_SCAN_STAGE": true,
}

type stageInfo struct {
	name       string
	env        *argEnv // ARG and ENV values known in this stage
	image      string  // base after ARG expansion
	scratch    bool
	static     bool     // distroless/static: no libc either
	golang     bool     // a golang image: Go, and GOPATH=/go
	alpine     bool     // an alpine-based image: no C compiler unless installed
	cc         bool     // a C compiler was installed (gcc, build-base ...)
	bins       []*goBin // Go programs built here or copied in
	cwd        string   // WORKDIR, "" when unknown
	ctxRoot    string   // where COPY . <dir> put the build context, "" if not
	passwd     bool     // an /etc/passwd was copied in
	files      []string // paths copied into a scratch stage ("/" for a whole rootfs)
	windows    bool     // a Windows image: C:\ paths, cmd/powershell
	shellSet   bool     // a SHELL instruction is in effect
	line       int
	workdir    bool
	user       string
	hasUser    bool
	pipefail   bool
	caBundle   bool
	copyAll    int   // line of a COPY . ., 0 if none
	posix      bool  // shell-form RUN goes to a POSIX shell (not SHELL powershell/cmd)
	parent     int   // index of the stage this one is built FROM, -1 for an image
	aptLists   []int // RUN lines that leave /var/lib/apt/lists behind (DL3009)
	exposes    []int
	exposeLine int
}

type linterState struct {
	o        LintOptions
	findings []Finding
	inline   map[int]map[string]bool
	global   map[string]bool
	x        *expander
	flags    map[int][]string // instruction line -> its --flags as written
	meta     *argEnv          // meta ARGs (before the first FROM) with their values
	declared map[string]bool  // every meta ARG name, with or without a value
	stages   []*stageInfo
	ignored  *patternmatcher.PatternMatcher
	facts    goFacts
	sh       *syntax.Parser
}

func (l *linterState) add(rule string, line int, format string, args ...any) {
	l.addSev(rule, -1, line, format, args...)
}

func (l *linterState) addSev(rule string, sev Severity, line int, format string, args ...any) {
	r, ok := catalogue()[rule]
	if !ok {
		panic("dockerfile: unknown rule " + rule)
	}
	if l.global[rule] || l.inline[line][rule] {
		return
	}
	if sev < 0 {
		sev = r.Severity
	}
	msg := r.Description
	if format != "" {
		msg = fmt.Sprintf(format, args...)
	}
	l.findings = append(l.findings, Finding{Rule: rule, Severity: sev, Line: line, Message: msg, URL: r.URL})
}

func splitRules(s string) []string {
	var out []string
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' || r == ';' }) {
		out = append(out, canonical(f))
	}
	return out
}

// Lint checks a Dockerfile with BuildKit's parser and the rule catalogue.
// name is used in the report only. A file that does not parse gives a
// DL1000 finding, not an error.
func Lint(name string, src []byte, o LintOptions) (*Report, error) {
	rep := &Report{File: name, Findings: []Finding{}}
	l := &linterState{o: o, inline: map[int]map[string]bool{}, global: map[string]bool{}, meta: newArgEnv(), declared: map[string]bool{}}
	for _, r := range o.Ignore {
		for _, id := range splitRules(r) {
			l.global[id] = true
		}
	}
	l.fileIgnores(src)

	res, err := parser.Parse(bytes.NewReader(src))
	if err != nil {
		l.add(RuleParseError, lineOf(err), "%s", err.Error())
		rep.Findings = l.sorted()
		return rep, nil
	}
	for _, w := range res.Warnings {
		line := 0
		if w.Location != nil {
			line = w.Location.Start.Line
		}
		l.add(linter.RuleNoEmptyContinuation.Name, line, "%s", w.Short)
	}
	l.flags = map[int][]string{}
	for _, n := range res.AST.Children {
		l.flags[n.StartLine] = n.Flags
		for _, c := range n.PrevComment {
			if m := ignoreInline().FindStringSubmatch(c); m != nil {
				if l.inline[n.StartLine] == nil {
					l.inline[n.StartLine] = map[string]bool{}
				}
				for _, id := range splitRules(m[1]) {
					l.inline[n.StartLine][id] = true
				}
			}
		}
	}
	if len(res.AST.Children) == 0 {
		l.add(RuleParseError, 0, "the file has no instructions")
		rep.Findings = l.sorted()
		return rep, nil
	}
	if first := strings.ToLower(res.AST.Children[0].Value); first != "from" && first != "arg" {
		l.add("DL3061", res.AST.Children[0].StartLine, "the first instruction is %s: a Dockerfile must begin with FROM or ARG", strings.ToUpper(first))
		rep.Findings = l.sorted()
		return rep, nil
	}
	l.casing(res.AST)

	lint := linter.New(&linter.Config{Warn: func(rule, _, _, msg string, loc []parser.Range) {
		line := 0
		if len(loc) > 0 {
			line = loc[0].Start.Line
		}
		if _, ok := catalogue()[rule]; ok {
			l.add(rule, line, "%s", msg)
		}
	}})
	stages, metaArgs, err := instructions.Parse(res.AST, lint)
	if err != nil {
		l.add(RuleParseError, lineOf(err), "%s", err.Error())
		rep.Findings = l.sorted()
		return rep, nil
	}
	l.x = newExpander(res.EscapeToken)
	l.sh = newShellParser()
	for _, p := range platformDefaults {
		l.meta.set(p[0], p[1])
	}
	for _, a := range metaArgs {
		for _, kv := range a.Args {
			l.declared[kv.Key] = true
			l.checkSecret("ARG", kv.Key, l.argValue(kv.Key, kv.Value, l.meta), line(a.Location()))
		}
	}
	if o.ContextDir != "" {
		l.contextChecks(name, src)
	}
	for i := range stages {
		l.stage(&stages[i], i == len(stages)-1)
	}
	// DL3009 where the apt lists reach the image: the final stage and the
	// stages it is built FROM.
	for i := len(l.stages) - 1; i >= 0; i = l.stages[i].parent {
		for _, ln := range l.stages[i].aptLists {
			l.add("DL3009", ln, "")
		}
	}
	rep.Findings = l.sorted()
	return rep, nil
}

func (l *linterState) sorted() []Finding {
	if l.findings == nil {
		return []Finding{} // "findings": [] in JSON, not null
	}
	sort.SliceStable(l.findings, func(i, j int) bool { return l.findings[i].Line < l.findings[j].Line })
	return l.findings
}

func lineOf(err error) int {
	var le *parser.LocationError
	if errors.As(err, &le) && len(le.Locations) > 0 && len(le.Locations[0]) > 0 {
		return le.Locations[0][0].Start.Line
	}
	return 0
}

func line(r []parser.Range) int {
	if len(r) == 0 {
		return 0
	}
	return r[0].Start.Line
}

func (l *linterState) fileIgnores(src []byte) {
	for raw := range bytes.Lines(src) {
		s := strings.TrimSpace(string(raw))
		if !strings.HasPrefix(s, "#") {
			continue
		}
		s = strings.TrimSpace(strings.TrimPrefix(s, "#"))
		if m := ignoreFile().FindStringSubmatch(s); m != nil {
			for _, id := range splitRules(m[1]) {
				l.global[id] = true
			}
		}
		if m := checkSkip().FindStringSubmatch(s); m != nil {
			for _, part := range strings.Split(m[1], ";") {
				if k, v, ok := strings.Cut(part, "="); ok && strings.TrimSpace(k) == "skip" {
					if strings.TrimSpace(v) == "all" {
						for id, r := range catalogue() {
							if r.Source == srcBuildKit {
								l.global[id] = true
							}
						}
						continue
					}
					for _, id := range splitRules(v) {
						l.global[id] = true
					}
				}
			}
		}
	}
}

func (l *linterState) casing(ast *parser.Node) {
	var upper, lower []int
	for _, n := range ast.Children {
		word := strings.Fields(n.Original)
		if len(word) == 0 {
			continue
		}
		switch word[0] {
		case strings.ToUpper(word[0]):
			upper = append(upper, n.StartLine)
		case strings.ToLower(word[0]):
			lower = append(lower, n.StartLine)
		}
	}
	minority, want := lower, "uppercase"
	if len(lower) > len(upper) {
		minority, want = upper, "lowercase"
	}
	for _, ln := range minority {
		l.add(linter.RuleConsistentInstructionCasing.Name, ln, "Command should use %s to match the rest of the file", want)
	}
}

func (l *linterState) contextChecks(name string, src []byte) {
	dir := l.o.ContextDir
	// BuildKit reads <Dockerfile>.dockerignore first, then the context's.
	b, err := os.ReadFile(name + ".dockerignore")
	if err != nil {
		b, err = os.ReadFile(filepath.Join(dir, ".dockerignore"))
	}
	if errors.Is(err, os.ErrNotExist) {
		if l.contextKnown(src) {
			if big := contextSize(dir); big != "" {
				l.add(RuleNoDockerignore, 0, "no .dockerignore in %s (%s): all of it is sent to the builder and COPY . . takes it into the image", dir, big)
			}
		}
	} else if err == nil {
		if pats, err := ignorefile.ReadAll(bytes.NewReader(b)); err == nil {
			l.ignored, _ = patternmatcher.New(pats)
		}
	}
}

var otherContext = lazyRegexp(`(?m)^\s*#.*\bdocker\s+(?:buildx\s+)?build\b.*\s-f\s`)

// contextKnown: --context (or a build) names it, or the Dockerfile's folder
// is a project root (go.mod, package.json ...) and the file's own comments
// do not build it from elsewhere (docker build -f ...).
func (l *linterState) contextKnown(src []byte) bool {
	if l.o.ContextKnown {
		return true
	}
	if otherContext().Match(src) {
		return false
	}
	for _, m := range []string{"go.mod", "package.json", "pom.xml", "build.gradle", "build.gradle.kts", "requirements.txt", "pyproject.toml", "Cargo.toml", "Gemfile", "composer.json", "mix.exs"} {
		if exists(filepath.Join(l.o.ContextDir, m)) {
			return true
		}
	}
	return false
}

// Above these a build context without .dockerignore is worth a finding.
const (
	bigContextFiles = 500
	bigContextBytes = 50 << 20
)

// contextSize describes why dir is a large build context ("" when it is
// not): a .git or node_modules folder, or many files or bytes.
func contextSize(dir string) string {
	var files, bytes int64
	why := ""
	_ = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if d.IsDir() {
			switch d.Name() {
			case ".git", "node_modules":
				why = d.Name() + "/ in it"
				return filepath.SkipAll
			}
			return nil
		}
		files++
		if info, err := d.Info(); err == nil {
			bytes += info.Size()
		}
		if files >= bigContextFiles || bytes >= bigContextBytes {
			why = fmt.Sprintf("more than %d files or %d MB", bigContextFiles, bigContextBytes>>20)
			return filepath.SkipAll
		}
		return nil
	})
	return why
}

// argValue sets ARG key in env: the --build-arg value, else its default
// expanded, else (no default) the value env already has, if any. It returns
// the value, nil when there is none.
func (l *linterState) argValue(key string, def *string, env *argEnv) *string {
	if v, ok := l.o.BuildArgs[key]; ok {
		env.set(key, v)
		return &v
	}
	if def != nil {
		v, _ := l.x.word(*def, env)
		env.set(key, v)
		return &v
	}
	if v, ok := env.Get(key); ok {
		return &v
	}
	return nil
}

func (l *linterState) findStage(name string) *stageInfo {
	for _, s := range l.stages {
		if s.name != "" && strings.EqualFold(s.name, name) {
			return s
		}
	}
	if i, err := strconv.Atoi(name); err == nil && i >= 0 && i < len(l.stages) {
		return l.stages[i]
	}
	return nil
}

func (l *linterState) stage(st *instructions.Stage, final bool) {
	si := &stageInfo{name: st.Name, line: line(st.Location), posix: true, parent: -1}
	fromLine := si.line
	if st.Name != "" {
		if prev := l.findStage(st.Name); prev != nil && prev.name != "" {
			l.add(linter.RuleDuplicateStageName.Name, fromLine, "Duplicate stage name %q, stage names should be unique", st.Name)
		}
		if n := strings.ToLower(st.Name); n == "scratch" || n == "context" {
			l.add(linter.RuleReservedStageName.Name, fromLine, "Stage name should not use the same name as reserved stage %q", st.Name)
		}
	}
	if st.Platform != "" {
		l.platform(st, fromLine)
	}
	image, undefined, err := l.x.wordMatches(st.BaseName, l.meta)
	known, reported := err == nil, false
	for _, u := range undefined {
		if !l.declared[u] && !predefinedArgs[u] {
			l.add(linter.RuleUndefinedArgInFrom.Name, fromLine, "FROM argument '%s' is not declared", u)
			reported = true
		}
		known = false
	}
	if err == nil && !reported && l.findStage(image) == nil {
		if _, perr := reference.ParseNormalizedNamed(image); perr != nil {
			l.add(linter.RuleInvalidDefaultArgInFrom.Name, fromLine, "Default value for ARG %s results in empty or invalid base image name", st.BaseName)
			known = false
		}
	}
	si.image = image
	if parent := l.findStage(image); parent != nil && known && !strings.Contains(image, "/") && !strings.Contains(image, ":") {
		inherit := *parent
		inherit.name, inherit.line, inherit.env = si.name, si.line, parent.env.clone()
		inherit.exposes, inherit.copyAll = slices.Clone(parent.exposes), 0 // EXPOSE is in the image config
		inherit.aptLists, inherit.parent = nil, slices.Index(l.stages, parent)
		inherit.bins, inherit.files = slices.Clone(parent.bins), slices.Clone(parent.files)
		*si = inherit
	} else {
		si.env = newArgEnv()
		if known {
			l.checkImageRef(image, fromLine)
			si.scratch = image == "scratch"
			si.static = si.scratch || strings.Contains(image, "distroless/static")
			si.caBundle = !si.scratch
			si.passwd = !si.scratch
			si.cwd = "/"
			repo, tag, _ := strings.Cut(image[strings.LastIndex(image, "/")+1:], ":")
			si.golang = repo == "golang"
			si.windows = windowsImage(image) || strings.HasPrefix(strings.ToLower(st.Platform), "windows")
			if si.windows {
				si.posix, si.cwd = false, ""
			}
			si.alpine = repo == "alpine" || strings.Contains(tag, "alpine")
			if strings.HasSuffix(image, ":nonroot") || strings.Contains(image, ":nonroot-") {
				si.hasUser, si.user = true, "nonroot"
			}
		} else {
			si.caBundle, si.passwd = true, true // an unknown base: assume it has what it needs
		}
	}

	var prev *runInfo
	counts := map[string][]int{}
	for _, c := range st.Commands {
		ln := line(c.Location())
		cur := l.command(si, st, c, ln, counts, prev)
		prev = cur
	}
	for inst, lines := range counts {
		for _, ln := range lines[:len(lines)-1] {
			l.add(linter.RuleMultipleInstructionsDisallowed.Name, ln, "Multiple %s instructions should not be used in the same stage because only the last one will be used", inst)
		}
	}
	if final {
		l.finalStage(si, fromLine)
	}
	l.stages = append(l.stages, si)
}

// platform checks FROM --platform the way BuildKit does, after expansion.
func (l *linterState) platform(st *instructions.Stage, ln int) {
	res, err := l.x.lex.ProcessWordWithMatches(st.Platform, l.meta)
	if err != nil {
		return
	}
	if len(res.Matched) == 1 && len(res.Unmatched) == 0 {
		if _, ok := res.Matched["TARGETPLATFORM"]; ok {
			l.add(linter.RuleRedundantTargetPlatform.Name, ln, "Setting platform to predefined %s in FROM is redundant as this is the default behavior", st.Platform)
		}
		return
	}
	if len(res.Matched) > 0 || len(res.Unmatched) > 0 {
		return
	}
	p, err := platforms.Parse(res.Result)
	if err != nil || strings.Contains(st.Name, p.OS) || strings.Contains(st.Name, p.Architecture) {
		return
	}
	l.add(linter.RuleFromPlatformFlagConstDisallowed.Name, ln, "FROM --platform flag should not use constant value %q", res.Result)
}

// stageArg is ARG key inside a stage: the --build-arg, its default, or the
// meta ARG's value (BuildKit gives a redeclared meta ARG its value).
func (l *linterState) stageArg(si *stageInfo, key string, def *string) *string {
	if _, given := l.o.BuildArgs[key]; given || def != nil {
		return l.argValue(key, def, si.env)
	}
	if v, ok := l.meta.Get(key); ok {
		si.env.set(key, v)
		return &v
	}
	return nil
}

// command checks one instruction of a stage and updates what the stage
// knows; prev is the RUN right before it, for DL3059.
func (l *linterState) command(si *stageInfo, st *instructions.Stage, c instructions.Command, ln int, counts map[string][]int, prev *runInfo) (cur *runInfo) {
	switch c := c.(type) {
	case *instructions.RunCommand:
		// Expanding fills in the --mount values (GetMounts).
		_ = c.Expand(func(w string) (string, error) {
			v, _ := l.x.word(w, si.env)
			return v, nil
		})
		sc := l.runScript(si, c)
		cur = &runInfo{flags: strings.Join(l.flags[ln], " "), count: -1}
		if sc != nil {
			cur.count = sc.Count
		}
		// hadolint's DL3059: not when the flags (--mount ...) differ or
		// one of them chains more than two commands.
		if prev != nil && prev.flags == cur.flags && prev.count >= 0 && cur.count >= 0 && prev.count <= 2 && cur.count <= 2 {
			l.add("DL3059", ln, "")
		}
		l.run(si, c, sc, ln)
	case *instructions.CmdCommand:
		counts["CMD"] = append(counts["CMD"], ln)
		l.shellForm(si, "CMD", c.PrependShell, ln)
	case *instructions.EntrypointCommand:
		counts["ENTRYPOINT"] = append(counts["ENTRYPOINT"], ln)
		l.shellForm(si, "ENTRYPOINT", c.PrependShell, ln)
	case *instructions.HealthCheckCommand:
		counts["HEALTHCHECK"] = append(counts["HEALTHCHECK"], ln)
		if c.Health != nil && len(c.Health.Test) > 1 && c.Health.Test[0] == "CMD-SHELL" {
			l.healthcheck(si, c.Health.Test[1], ln)
		}
	case *instructions.OnbuildCommand:
		l.onbuild(si, st, c, ln)
	case *instructions.EnvCommand:
		for _, kv := range c.Env {
			if kv.NoDelim {
				l.add(linter.RuleLegacyKeyValueFormat.Name, ln, "\"ENV key=value\" should be used instead of legacy \"ENV key value\" format")
			}
			v, _ := l.x.word(kv.Value, si.env)
			si.env.set(kv.Key, v)
			l.checkSecret("ENV", kv.Key, &v, ln)
		}
	case *instructions.LabelCommand:
		for _, kv := range c.Labels {
			if kv.NoDelim {
				l.add(linter.RuleLegacyKeyValueFormat.Name, ln, "\"LABEL key=value\" should be used instead of legacy \"LABEL key value\" format")
			}
		}
	case *instructions.ArgCommand:
		for _, kv := range c.Args {
			l.checkSecret("ARG", kv.Key, l.stageArg(si, kv.Key, kv.Value), ln)
		}
	case *instructions.WorkdirCommand:
		dir, dirKnown := l.x.word(c.Path, si.env)
		if dirKnown && !si.isAbs(dir) && !si.workdir {
			l.add(linter.RuleWorkdirRelativePath.Name, ln, "Relative workdir %q can have unexpected results if the base image changes", c.Path)
		}
		si.workdir = true
		switch {
		case !dirKnown || si.cwd == "" && !path.IsAbs(dir):
			si.cwd = ""
		case path.IsAbs(dir):
			si.cwd = path.Clean(dir)
		default:
			si.cwd = path.Join(si.cwd, dir)
		}
	case *instructions.UserCommand:
		user, userKnown := l.x.word(c.User, si.env)
		si.user, si.hasUser = user, true
		if !userKnown {
			si.user = c.User
		}
		if si.scratch && userKnown && !si.passwd {
			u, _, _ := strings.Cut(user, ":")
			if _, err := strconv.Atoi(u); err != nil {
				l.add(RuleScratchNamedUser, ln, "USER %s in a scratch stage: there is no /etc/passwd to resolve it, use a numeric UID such as 65532", user)
			}
		}
	case *instructions.ExposeCommand:
		si.exposeLine = ln
		ports := make([]string, 0, len(c.Ports))
		for _, p := range c.Ports {
			if v, ok := l.x.word(p, si.env); ok {
				ports = append(ports, strings.Fields(v)...)
			} else {
				ports = append(ports, p)
			}
		}
		l.expose(si, ports, ln)
	case *instructions.CopyCommand:
		l.copyCmd(si, st, c, ln)
	case *instructions.AddCommand:
		l.addCmd(c, ln)
	case *instructions.ShellCommand:
		si.pipefail = strings.Contains(strings.Join(c.Shell, " "), "pipefail")
		si.shellSet = true
		si.posix = len(c.Shell) > 0 && posixShell(c.Shell[0])
	}
	return cur
}

// healthcheck: a shell-form HEALTHCHECK CMD needs /bin/sh; one that is a
// single plain command is better in JSON form (DL3025).
func (l *linterState) healthcheck(si *stageInfo, script string, ln int) {
	if si.scratch && !si.has("/bin/sh") {
		l.add(RuleScratchShellForm, ln, "HEALTHCHECK CMD in shell form needs /bin/sh, which a scratch image does not have")
		return
	}
	if si.shellSet || !si.posix {
		return
	}
	sc, ok := parseShell(l.sh, script, si.env)
	if !ok || sc.Count != 1 || sc.Pipe || len(sc.Cmds) != 1 || slices.Contains(sc.Cmds[0].Lit, false) {
		return // it uses the shell (||, pipes, variables): the shell form is right
	}
	l.add(linter.RuleJSONArgsRecommended.Name, ln, "JSON arguments recommended for HEALTHCHECK CMD: a single command needs no shell (HEALTHCHECK CMD [\"%s\", ...])", sc.Cmds[0].Args[0])
}

// onbuild checks the instruction of an ONBUILD as it will run: in the
// image built FROM this one, with its own WORKDIR.
func (l *linterState) onbuild(si *stageInfo, st *instructions.Stage, c *instructions.OnbuildCommand, ln int) {
	res, err := parser.Parse(strings.NewReader(c.Expression))
	if err != nil || len(res.AST.Children) == 0 {
		return
	}
	cmd, err := instructions.ParseCommand(res.AST.Children[0])
	if err != nil {
		return
	}
	child := *si
	child.env = si.env.clone()
	child.scratch, child.static, child.workdir, child.copyAll = false, false, true, 0
	child.bins, child.files, child.aptLists = nil, nil, nil
	l.command(&child, st, cmd, ln, map[string][]int{}, nil)
}

func (l *linterState) checkImageRef(image string, ln int) {
	if image == "scratch" || l.findStage(image) != nil {
		return
	}
	ref := image
	if i := strings.Index(ref, "@"); i >= 0 {
		return // pinned by digest
	}
	tag := ""
	if i := strings.LastIndex(ref, ":"); i > strings.LastIndex(ref, "/") {
		tag = ref[i+1:]
	}
	switch tag {
	case "":
		l.add("DL3006", ln, "Always tag the version of an image explicitly: %s", image)
	case "latest":
		l.add("DL3007", ln, "Using latest is prone to errors if the image ever updates: pin a version of %s", strings.TrimSuffix(image, ":latest"))
	}
}

func (l *linterState) checkSecret(inst, key string, value *string, ln int) {
	if value != nil && credValue().MatchString(imageDigest().ReplaceAllString(*value, "")) {
		l.add(RuleSecretInValue, ln, "%s %s holds a credential (%s): it stays in the image history; pass it at run time (docker run -e, a Kubernetes Secret)", inst, key, redact(*value))
		return
	}
	if secretName().MatchString(key) && !secretAllow().MatchString(key) {
		l.add(linter.RuleSecretsUsedInArgOrEnv.Name, ln, "Do not use ARG or ENV instructions for sensitive data (%s %q)", inst, key)
	}
}

func redact(v string) string {
	if len(v) > 6 {
		return v[:3] + "…"
	}
	return "…"
}

// isAbs: an absolute path for the stage's OS (BuildKit decides by the
// target OS): /x, and on Windows also C:\x, C:/x and \x.
func (si *stageInfo) isAbs(p string) bool {
	if path.IsAbs(p) {
		return true
	}
	return si.windows && (winAbs().MatchString(p) || strings.HasPrefix(p, `\`))
}

var winAbs = lazyRegexp(`^[A-Za-z]:[\\/]`)

// windowsImage: the Windows base images (servercore, nanoserver ...).
func windowsImage(image string) bool {
	i := strings.ToLower(image)
	return strings.Contains(i, "mcr.microsoft.com/windows") || strings.Contains(i, "nanoserver") ||
		strings.Contains(i, "servercore") || strings.Contains(i, "windowsservercore") || strings.Contains(i, "/windows:")
}

// posixShell: SHELL ["/bin/bash", ...] is, ["powershell", ...] and ["cmd", ...] are not.
func posixShell(prog string) bool {
	b := strings.ToLower(prog)
	if i := strings.LastIndexAny(b, `/\`); i >= 0 {
		b = b[i+1:]
	}
	b = strings.TrimSuffix(b, ".exe")
	return b != "powershell" && b != "pwsh" && b != "cmd"
}

// dirLike are sources taken for directories without a trailing slash.
var dirLike = map[string]bool{"bin": true, "sbin": true, "usr": true, "lib": true, "etc": true}

// has reports whether file p was copied into a scratch stage.
func (si *stageInfo) has(p string) bool {
	for _, f := range si.files {
		if f == "/" || f == p || strings.HasPrefix(p, f+"/") {
			return true
		}
	}
	return false
}

func (l *linterState) shellForm(si *stageInfo, inst string, shell bool, ln int) {
	if !shell {
		return
	}
	if si.scratch && !si.has("/bin/sh") {
		l.add(RuleScratchShellForm, ln, "%s in shell form runs /bin/sh -c, which a scratch image does not have: use the JSON form %s [\"/app\"]", inst, inst)
		return
	}
	if si.shellSet {
		return // BuildKit: the SHELL was chosen on purpose
	}
	l.add(linter.RuleJSONArgsRecommended.Name, ln, "JSON arguments recommended for %s to prevent unintended behavior related to OS signals", inst)
}

type runInfo struct {
	flags string
	count int // simple commands, -1 when the script was not parsed
}

func (l *linterState) run(si *stageInfo, c *instructions.RunCommand, sc *shellScript, ln int) {
	// A scratch stage has only what was copied in: the shell for the shell
	// form, the program for the exec form.
	if prog := "/bin/sh"; si.scratch {
		if !c.PrependShell && len(c.CmdLine) > 0 {
			prog = c.CmdLine[0]
		}
		if !si.has(prog) {
			l.add(RuleScratchRun, ln, "RUN in a scratch stage: %s is not in it; do this work in the builder stage", prog)
		}
	}
	if sc == nil {
		return
	}
	l.runRules(si, c, sc, ln)
	cwd := si.cwd
	for i := range sc.Cmds {
		cmd := &sc.Cmds[i]
		switch {
		case cmd.is("go", "mod", "download") && si.copyAll > 0:
			l.add(RuleCopyBeforeModDownload, si.copyAll, "COPY . . (line %d) comes before go mod download (line %d): copy go.mod and go.sum first so the module layer is cached", si.copyAll, ln)
			si.copyAll = 0
		case (cmd.is("go", "build") || cmd.is("go", "install")) && cwd != "":
			l.goBuild(si, cmd, cwd)
		case cmd.name() == "cd":
			if ops := cmd.operands(1); len(ops) == 1 && cmd.Lit[len(cmd.Args)-1] && cwd != "" {
				cwd = resolve(cwd, ops[0])
			} else {
				cwd = ""
			}
		case cmd.is("apk", "add") || cmd.is("apt-get", "install") || cmd.is("apt", "install"):
			for _, p := range cmd.Args[2:] {
				if p == "gcc" || p == "build-base" || p == "clang" || p == "musl-dev" || strings.HasPrefix(p, "gcc-") || p == "build-essential" {
					si.cc = true
				}
			}
		}
	}
}

func (l *linterState) expose(si *stageInfo, ports []string, ln int) {
	for _, p := range ports {
		if strings.Contains(p, ":") {
			l.add(linter.RuleExposeInvalidFormat.Name, ln, "EXPOSE instruction should not define an IP address or host-port mapping, found '%s'", p)
			continue
		}
		num, proto, hasProto := strings.Cut(p, "/")
		if hasProto && proto != strings.ToLower(proto) {
			l.add(linter.RuleExposeProtoCasing.Name, ln, "Defined protocol '%s' in EXPOSE instruction should be lowercase", p)
		}
		if strings.Contains(num, "$") {
			continue
		}
		lo, hi, isRange := strings.Cut(num, "-")
		for _, s := range []string{lo, hi} {
			if s == "" && isRange || s == "" && !isRange && s == hi {
				continue
			}
			n, err := strconv.Atoi(s)
			if err != nil || n < 0 || n > 65535 {
				l.add("DL3011", ln, "EXPOSE %s: valid UNIX ports range from 0 to 65535", p)
				break
			}
			si.exposes = append(si.exposes, n)
		}
	}
}

// words expands each word with the stage's variables; known[i] is false
// where a variable had no value.
func (l *linterState) words(si *stageInfo, in []string) (out []string, known []bool) {
	for _, w := range in {
		v, ok := l.x.word(w, si.env)
		out = append(out, v)
		known = append(known, ok)
	}
	return out, known
}

func (l *linterState) copyCmd(si *stageInfo, st *instructions.Stage, c *instructions.CopyCommand, ln int) {
	nsrc := len(c.SourcePaths) + len(c.SourceContents)
	dest, destKnown := l.x.word(c.DestPath, si.env)
	if nsrc > 1 && !strings.HasSuffix(dest, "/") && destKnown {
		l.add("DL3021", ln, "COPY with more than 2 arguments requires the last argument to end with /")
	}
	if destKnown && !si.isAbs(dest) && !si.workdir {
		l.add("DL3045", ln, "COPY to a relative destination %q without WORKDIR set", c.DestPath)
	}
	srcs, srcKnown := l.words(si, c.SourcePaths)
	absDest := ""
	if destKnown {
		switch {
		case path.IsAbs(dest):
			absDest = path.Clean(dest)
		case si.cwd != "":
			absDest = path.Join(si.cwd, dest)
		}
	}
	destDir := nsrc > 1 || strings.HasSuffix(dest, "/") || dest == "." || dest == "./"
	// What a source brings, wherever it comes from.
	for _, p := range srcs {
		clean := path.Clean("/" + p)
		switch {
		case clean == "/" || clean == "/etc":
			si.caBundle, si.passwd = true, true
		case strings.HasPrefix(clean, "/etc/ssl") || strings.Contains(p, "ca-certificates") || strings.Contains(p, "cacert"):
			si.caBundle = true
		case clean == "/etc/passwd":
			si.passwd = true
		}
	}
	if strings.HasPrefix(absDest, "/etc/ssl") || strings.HasPrefix(absDest, "/etc/pki") {
		si.caBundle = true
	}
	if absDest == "/etc/passwd" || absDest == "/etc" {
		si.passwd = true
	}
	if si.scratch && absDest != "" {
		for _, p := range srcs {
			switch {
			case path.Clean("/"+p) == "/" && absDest == "/":
				si.files = append(si.files, "/")
			case strings.HasSuffix(p, "/") || dirLike[path.Base(p)]:
				// a directory: its contents go into absDest
				si.files = append(si.files, absDest)
			case destDir:
				si.files = append(si.files, path.Join(absDest, path.Base(p)))
			default:
				si.files = append(si.files, absDest)
			}
		}
	}
	if c.From != "" {
		from, fromKnown := l.x.word(c.From, si.env)
		if !fromKnown {
			si.caBundle, si.passwd = true, true // from an unknown image: it may bring anything
			return
		}
		if st.Name != "" && strings.EqualFold(from, st.Name) {
			l.add("DL3023", ln, "COPY --from=%s references the stage itself", from)
			return
		}
		src := l.findStage(from)
		if src == nil && !strings.ContainsAny(from, ":/.") {
			l.add("DL3022", ln, "COPY --from=%s does not reference a previously defined stage", from)
		}
		if src == nil || absDest == "" {
			return
		}
		reported := false
		for i, p := range srcs {
			if !srcKnown[i] {
				continue
			}
			abs := p
			if !path.IsAbs(abs) {
				abs = path.Join(src.cwd, p)
			}
			for _, b := range si.copyBins(src, path.Clean(abs), absDest, destDir || strings.HasSuffix(p, "/")) {
				// With the sources at hand, a program that links no libc
				// (no net, os/user, cgo or third-party package) is fine.
				if b.link == linkDynamic && si.static && !reported && (l.o.ContextDir == "" || l.goSources().libc) {
					reported = true
					l.add(RuleCgoNotDisabled, ln, "the Go binary copied from stage %q is built with cgo (no CGO_ENABLED=0 in a golang image with gcc): it needs libc, which %s does not have (\"no such file or directory\" at start)", from, si.image)
				}
			}
		}
		return
	}
	for i, p := range srcs {
		clean := strings.TrimSuffix(strings.TrimPrefix(p, "./"), "/")
		if clean == "." || clean == "" {
			si.copyAll = ln
			si.ctxRoot = absDest
		}
		if srcKnown[i] {
			l.copyIgnored("Copy", p, ln)
		}
	}
}

// copyIgnored is BuildKit's CopyIgnoredFile: a source the .dockerignore
// excludes. Like BuildKit it says nothing when the file has ! exceptions.
func (l *linterState) copyIgnored(cmd, src string, ln int) {
	if l.ignored == nil || l.ignored.Exclusions() {
		return
	}
	clean := filepath.ToSlash(filepath.Clean(src))
	if clean == "." || clean == "/" || strings.ContainsAny(clean, "*?[") {
		return
	}
	if m, err := l.ignored.MatchesOrParentMatches(clean); err == nil && m {
		l.add(linter.RuleCopyIgnoredFile.Name, ln, "Attempting to %s file %q that is excluded by .dockerignore", cmd, clean)
	}
}

func (l *linterState) addCmd(c *instructions.AddCommand, ln int) {
	for _, p := range c.SourcePaths {
		lp := strings.ToLower(p)
		if strings.Contains(lp, "://") || strings.HasPrefix(lp, "git@") {
			continue
		}
		archive := false
		for _, ext := range []string{".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz", ".tar.zst"} {
			if strings.HasSuffix(lp, ext) {
				archive = true
			}
		}
		if !archive {
			l.add("DL3020", ln, "Use COPY instead of ADD for files and folders (%s): ADD also fetches URLs and unpacks archives", p)
			return
		}
	}
}

func (l *linterState) finalStage(si *stageInfo, fromLine int) {
	if si.scratch && !si.caBundle && len(si.bins) > 0 && l.usesTLS() {
		l.add(RuleMissingCABundle, fromLine, "")
	}
	switch {
	case si.hasUser && (si.user == "root" || si.user == "0" || strings.HasPrefix(si.user, "0:") || strings.HasPrefix(si.user, "root:")):
		l.add("DL3002", fromLine, "the final stage runs as USER %s", si.user)
	case !si.hasUser && !si.windows: // Windows images run as ContainerUser/Administrator, not root
		l.add(RuleRootFinalStage, fromLine, "")
	}
	l.exposeMismatch(si, fromLine)
}

// exposeMismatch compares EXPOSE with the port of the Go program that
// reaches the final stage (--port, or its sources in the build context).
// It says nothing when it cannot follow the program to its sources.
func (l *linterState) exposeMismatch(si *stageInfo, fromLine int) {
	ports := []int{}
	if l.o.Port > 0 {
		ports = append(ports, l.o.Port)
	} else {
		pkg := ""
		for _, b := range si.bins {
			if b.pkg == "" || pkg != "" && b.pkg != pkg {
				return // unknown sources, or several programs
			}
			pkg = b.pkg
		}
		if pkg == "" || l.o.ContextDir == "" {
			return
		}
		ln := DetectListen(l.o.ContextDir, filepath.Join(l.o.ContextDir, filepath.FromSlash(pkg)))
		if !ln.Server || len(ln.Ports) == 0 {
			return
		}
		ports = ln.Ports
	}
	if len(si.exposes) == 0 {
		l.add(RuleExposeMismatch, fromLine, "the final stage has no EXPOSE; the app listens on %d", ports[0])
		return
	}
	for _, p := range si.exposes {
		if containsInt(ports, p) {
			return
		}
	}
	l.add(RuleExposeMismatch, si.exposeLine, "EXPOSE %v but the app listens on %d", si.exposes, ports[0])
}

// goFacts is what the Go sources in the build context say.
type goFacts struct {
	read bool
	tls  bool // crypto/tls, an https:// URL, an HTTP client
	// libc: a package that links libc when cgo is on (net, os/user, cgo
	// itself) or a third-party one that may; false for a plain program.
	libc bool
}

// goSources reads the context's Go files once (at most 2,000).
func (l *linterState) goSources() goFacts {
	if l.facts.read || l.o.ContextDir == "" {
		return l.facts
	}
	l.facts.read = true
	dir := l.o.ContextDir
	fset := token.NewFileSet()
	n := 0
	_ = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if d.IsDir() {
			if p != dir && (d.Name() == "testdata" || d.Name() == "node_modules" || strings.HasPrefix(d.Name(), ".")) {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
			return nil
		}
		if n++; n > 2000 {
			l.facts.libc = true // too large to tell
			return filepath.SkipAll
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return nil
		}
		if !strings.Contains(p, string(filepath.Separator)+"vendor"+string(filepath.Separator)) && tlsUse().Match(b) {
			l.facts.tls = true
		}
		f, err := goparser.ParseFile(fset, p, b, goparser.ImportsOnly)
		if err != nil {
			return nil
		}
		for _, imp := range f.Imports {
			ip := strings.Trim(imp.Path.Value, `"`)
			first, _, _ := strings.Cut(ip, "/")
			if ip == "net" || strings.HasPrefix(ip, "net/") || ip == "os/user" || ip == "C" || strings.Contains(first, ".") {
				l.facts.libc = true
			}
		}
		return nil
	})
	return l.facts
}

// usesTLS: the Go sources in the context make TLS connections; false
// without a context.
func (l *linterState) usesTLS() bool { return l.goSources().tls }

var tlsUse = lazyRegexp(`"crypto/tls"|"https://|http\.(?:Get|Post|PostForm|Head|NewRequest|NewRequestWithContext)\(|http\.DefaultClient|&http\.Client\{|http\.Client\{`)

// lazyRegexp compiles expr on first use: a package-level regexp is compiled
// at start-up by every run of the binary, whichever command runs.
func lazyRegexp(expr string) func() *regexp.Regexp {
	return sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(expr) })
}
