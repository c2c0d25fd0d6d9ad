package dockerfile

import (
	"bytes"
	"fmt"
	"path"
	"strconv"
	"strings"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
)

// Placement is where a file of the build context is in the image.
type Placement struct {
	// Path is the absolute path the last COPY or ADD putting the file in the
	// stage gives it (through COPY --from of earlier stages too); "" when no
	// instruction does.
	Path string
	// Line is that instruction's line.
	Line int
	// Workdir is the stage's last WORKDIR ("/" when none is set or it is
	// not known): where a program that opens the file by a relative name
	// looks for it.
	Workdir string
}

// Place follows the build-context file rel (a slash path relative to the
// context, such as "config.toml") through the Dockerfile src up to stage
// target ("" for the last one) with BuildKit's parser, expanding ARG and
// ENV values in paths. Instructions whose paths cannot be expanded, COPY
// --from of an image, and RUN steps that move files are not followed.
func Place(src []byte, target, rel string) (Placement, error) {
	res, err := parser.Parse(bytes.NewReader(src))
	if err != nil {
		return Placement{}, err
	}
	stages, metaArgs, err := instructions.Parse(res.AST, nil)
	if err != nil {
		return Placement{}, err
	}
	if len(stages) == 0 {
		return Placement{}, fmt.Errorf("no FROM")
	}
	x := newExpander(res.EscapeToken)
	meta := newArgEnv()
	for _, a := range metaArgs {
		for _, kv := range a.Args {
			if kv.Value != nil {
				v, _ := x.word(*kv.Value, meta)
				meta.set(kv.Key, v)
			}
		}
	}
	rel = path.Clean(strings.TrimPrefix(rel, "/"))
	var done []*placeStage
	find := func(name string) *placeStage {
		if i, err := strconv.Atoi(name); err == nil && i >= 0 && i < len(done) {
			return done[i]
		}
		for _, s := range done {
			if s.name != "" && strings.EqualFold(s.name, name) {
				return s
			}
		}
		return nil
	}
	last := len(stages) - 1
	if target != "" {
		last = -1
		for i, st := range stages {
			if strings.EqualFold(st.Name, target) {
				last = i
			}
		}
		if last < 0 {
			return Placement{}, fmt.Errorf("no stage %q", target)
		}
	}
	for i := 0; i <= last; i++ {
		st := stages[i]
		s := &placeStage{name: st.Name, workdir: "/", env: newArgEnv()}
		base, _ := x.word(st.BaseName, meta)
		if parent := find(base); parent != nil {
			s.workdir, s.env, s.files = parent.workdir, parent.env.clone(), append([]placed(nil), parent.files...)
		}
		for _, c := range st.Commands {
			ln := line(c.Location())
			switch c := c.(type) {
			case *instructions.ArgCommand:
				for _, kv := range c.Args {
					switch {
					case kv.Value != nil:
						v, _ := x.word(*kv.Value, s.env)
						s.env.set(kv.Key, v)
					default:
						if v, ok := meta.Get(kv.Key); ok {
							s.env.set(kv.Key, v)
						}
					}
				}
			case *instructions.EnvCommand:
				for _, kv := range c.Env {
					v, _ := x.word(kv.Value, s.env)
					s.env.set(kv.Key, v)
				}
			case *instructions.WorkdirCommand:
				w, ok := x.word(c.Path, s.env)
				switch {
				case !ok:
					s.workdir = "/"
				case path.IsAbs(w):
					s.workdir = path.Clean(w)
				default:
					s.workdir = path.Join(s.workdir, w)
				}
			case *instructions.CopyCommand:
				if len(c.SourceContents) > 0 {
					continue // heredocs
				}
				var from *placeStage
				if c.From != "" {
					f, ok := x.word(c.From, s.env)
					if from = find(f); !ok || from == nil {
						continue // an image or an unknown stage
					}
				}
				if w, ok := copyDest(x, s.env, s.workdir, c.SourcePaths, c.DestPath, rel, from); ok {
					s.files = append(s.files, placed{w, ln})
				}
			case *instructions.AddCommand:
				if len(c.SourceContents) > 0 {
					continue
				}
				if w, ok := copyDest(x, s.env, s.workdir, c.SourcePaths, c.DestPath, rel, nil); ok {
					s.files = append(s.files, placed{w, ln})
				}
			}
		}
		done = append(done, s)
	}
	fin := done[last]
	p := Placement{Workdir: fin.workdir}
	if n := len(fin.files); n > 0 {
		p.Path, p.Line = fin.files[n-1].path, fin.files[n-1].line
	}
	return p, nil
}

type placed struct {
	path string
	line int
}

// placeStage is what Place knows of one stage.
type placeStage struct {
	name    string
	workdir string
	env     *argEnv
	files   []placed // where the file is in this stage, in the order it was put there
}

// copyDest returns where one COPY or ADD puts the context file rel (from
// nil) or the file where stage from holds it, if it does.
func copyDest(x *expander, env *argEnv, workdir string, srcs []string, dest, rel string, from *placeStage) (string, bool) {
	d, ok := x.word(dest, env)
	if !ok || d == "" {
		return "", false
	}
	absDest := path.Clean(d)
	if !path.IsAbs(d) {
		absDest = path.Join(workdir, d)
	}
	destDir := len(srcs) > 1 || strings.HasSuffix(d, "/") || d == "." || d == "./"
	// Where the file is in the source: the context is rooted at /.
	var locs []string
	srcDir := "/"
	if from == nil {
		locs = []string{"/" + rel}
	} else {
		for _, f := range from.files {
			locs = append(locs, f.path)
		}
		srcDir = from.workdir
	}
	out, found := "", false
	for _, raw := range srcs {
		src, ok := x.word(raw, env)
		if !ok || strings.Contains(src, "://") {
			continue
		}
		abs := path.Clean("/" + src)
		if from != nil && !path.IsAbs(src) {
			abs = path.Join(srcDir, src)
		}
		glob := strings.ContainsAny(src, "*?[")
		for _, l := range locs {
			switch {
			case abs == l, glob && matches(abs, l):
				out, found = absDest, true
				if destDir {
					out = path.Join(absDest, path.Base(l))
				}
			case abs == "/":
				out, found = path.Join(absDest, l), true
			case strings.HasPrefix(l, abs+"/"):
				// A folder: its contents go into the destination.
				out, found = path.Join(absDest, strings.TrimPrefix(l, abs)), true
			}
		}
	}
	return out, found
}

func matches(pattern, name string) bool {
	ok, err := path.Match(pattern, name)
	return err == nil && ok
}
