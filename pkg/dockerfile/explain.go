package dockerfile

import (
	"bytes"
	"fmt"
	"strings"

	"github.com/moby/buildkit/frontend/dockerfile/parser"
)

// Explanation annotates one instruction. JSON field names are stable.
type Explanation struct {
	Line        int    `json:"line"`
	Instruction string `json:"instruction"`
	Stage       string `json:"stage,omitempty"`
	Source      string `json:"source"`
	// What the instruction does in general; Here is what it does in this file.
	What string `json:"what"`
	Here string `json:"here,omitempty"`
}

var instructionHelp = map[string]string{
	"FROM":        "Starts a build stage from a base image. Every stage after the first begins a new, empty filesystem; only the last stage (or --target) becomes the image.",
	"RUN":         "Runs a command in a new layer at build time (shell form: /bin/sh -c \"...\"; JSON form: the program directly). Its result is saved in the image.",
	"CMD":         "The default command (or default arguments to ENTRYPOINT) when the container starts; `docker run IMAGE args` replaces it. Only the last CMD counts.",
	"ENTRYPOINT":  "The program the container always runs; `docker run IMAGE args` appends args to it (CMD gives the default args). JSON form keeps it PID 1 so it receives SIGTERM.",
	"ENV":         "Sets environment variables for the following build steps and for the running container. The values are stored in the image: never put secrets here.",
	"ARG":         "Declares a build-time variable (--build-arg NAME=value). Before the first FROM it can parameterise FROM; it is not in the final container's environment, but it is visible in the image history.",
	"ADD":         "Copies files into the image like COPY, and also downloads URLs and unpacks local tar archives. Prefer COPY unless you want that extra behaviour.",
	"COPY":        "Copies files from the build context (or, with --from, from another stage or image) into the image. Plain and predictable: the usual choice.",
	"WORKDIR":     "Sets (and creates) the working directory for the following RUN, CMD, ENTRYPOINT, COPY and ADD, and for the running container.",
	"USER":        "Sets the user (and group) for the following RUN instructions and for the running container. Numeric IDs work without /etc/passwd.",
	"EXPOSE":      "Documents the port the application listens on. It publishes nothing by itself: use docker run -p, or a Kubernetes containerPort/Service.",
	"LABEL":       "Adds key=value metadata to the image (org.opencontainers.image.source, version ...), shown by docker inspect.",
	"VOLUME":      "Declares a mount point whose data lives outside the container's writable layer; an anonymous volume is created if nothing is mounted there.",
	"HEALTHCHECK": "Tells Docker how to test that the container still works (a command run periodically). Kubernetes ignores it and uses probes instead.",
	"SHELL":       "Changes the shell used by shell-form RUN, CMD and ENTRYPOINT (default [\"/bin/sh\", \"-c\"]).",
	"STOPSIGNAL":  "The signal docker stop (and Kubernetes) sends to ask the container to exit (default SIGTERM).",
	"ONBUILD":     "Registers an instruction to run later, when another Dockerfile uses this image in its FROM.",
	"MAINTAINER":  "Deprecated author field; use LABEL org.opencontainers.image.authors=... instead.",
}

// Explain annotates every instruction of a Dockerfile.
func Explain(src []byte) ([]Explanation, error) {
	res, err := parser.Parse(bytes.NewReader(src))
	if err != nil {
		return nil, err
	}
	var out []Explanation
	stage := ""
	stageN := -1
	scratch := false
	shells := map[string]string{} // stage name -> its shell, for FROM <stage>
	shell := "/bin/sh -c"
	for _, n := range res.AST.Children {
		inst := strings.ToUpper(n.Value)
		args := nodeArgs(n)
		e := Explanation{Line: n.StartLine, Instruction: inst, Source: strings.TrimSpace(n.Original), What: instructionHelp[inst]}
		if e.What == "" {
			e.What = "Unknown instruction: the builder will reject it."
		}
		if inst == "FROM" {
			stageN++
			stage = fmt.Sprint(stageN)
			if len(args) >= 3 && strings.EqualFold(args[1], "as") {
				stage = args[2]
			}
			scratch = len(args) > 0 && args[0] == "scratch"
			shell = "/bin/sh -c"
			if len(args) > 0 {
				if sh, ok := shells[strings.ToLower(args[0])]; ok {
					shell = sh
				} else if windowsImage(args[0]) {
					shell = "cmd /S /C"
				}
			}
		}
		if inst == "SHELL" {
			shell = strings.Join(args, " ")
		}
		shells[strings.ToLower(stage)] = shell
		if stageN >= 0 {
			e.Stage = stage
		}
		e.Here = explainHere(inst, n, args, scratch, stage, shell)
		out = append(out, e)
	}
	return out, nil
}

func nodeArgs(n *parser.Node) []string {
	var a []string
	for c := n.Next; c != nil; c = c.Next {
		a = append(a, c.Value)
	}
	return a
}

func isJSON(n *parser.Node) bool { return n.Attributes["json"] }

func nodeFlag(n *parser.Node, name string) string {
	for _, f := range n.Flags {
		if v, ok := strings.CutPrefix(f, "--"+name+"="); ok {
			return v
		}
	}
	return ""
}

func explainHere(inst string, n *parser.Node, args []string, scratch bool, stage, shell string) string {
	joined := strings.Join(args, " ")
	switch inst {
	case "FROM":
		img := ""
		if len(args) > 0 {
			img = args[0]
		}
		switch {
		case img == "scratch":
			return "scratch is the empty image: no shell, no libc, no CA certificates. Only a static binary and the files you COPY in exist; the smallest and safest final stage for Go."
		case strings.Contains(img, "$"):
			return fmt.Sprintf("The base image comes from a build argument (%s), so it can be changed with --build-arg without editing the file.", img)
		case strings.HasPrefix(img, "golang:") || strings.Contains(img, "/golang:"):
			return fmt.Sprintf("A Go toolchain image used only to compile (stage %q); none of it ends up in the final image unless copied.", stage)
		case strings.Contains(img, "distroless"):
			return "A distroless image: CA certificates, time zone data and /etc/passwd, but no shell or package manager."
		}
		return fmt.Sprintf("Builds on %s.", img)
	case "RUN":
		s := ""
		if isJSON(n) {
			s = "Exec (JSON) form: no shell is involved. "
		} else {
			s = "Shell form: run by " + shell + ". "
		}
		if scratch {
			s += "This stage is scratch, which has no shell: this RUN will fail. "
		}
		switch {
		case strings.Contains(joined, "go mod download"):
			s += "Downloads the modules listed in go.mod/go.sum; kept in its own layer so it is cached until they change."
		case strings.Contains(joined, "go build"):
			s += "Compiles the Go program"
			if strings.Contains(joined, "CGO_ENABLED=0") {
				s += "; CGO_ENABLED=0 makes it static so it runs on scratch"
			}
			if strings.Contains(joined, "-trimpath") {
				s += "; -trimpath drops local paths"
			}
			if strings.Contains(joined, "-s -w") {
				s += "; -ldflags \"-s -w\" strips symbols and DWARF (a smaller binary)"
			}
			s += "."
		}
		return strings.TrimSpace(s)
	case "CMD", "ENTRYPOINT":
		form := "JSON (exec) form: the program is PID 1 and receives SIGTERM directly."
		if !isJSON(n) {
			form = "Shell form: it runs as " + shell + ", so the program is not PID 1 and misses SIGTERM"
			if scratch {
				form += "; on scratch there is no /bin/sh at all, so the container cannot start"
			}
			form += "."
		}
		if inst == "CMD" {
			return form + " CMD vs ENTRYPOINT: CMD is the replaceable default; with an ENTRYPOINT it only supplies default arguments."
		}
		return form + " CMD vs ENTRYPOINT: ENTRYPOINT fixes the program; arguments after the image name in docker run (or args: in Kubernetes) are appended."
	case "COPY":
		if from := nodeFlag(n, "from"); from != "" {
			return fmt.Sprintf("Copies %s from stage or image %q: multi-stage builds keep the compiler out of the final image.", strings.Join(args[:max(len(args)-1, 0)], " "), from)
		}
		if len(args) >= 2 && (args[0] == "." || args[0] == "./") {
			return "Copies the whole build context (minus .dockerignore). Any source change invalidates this and every later layer."
		}
		return "ADD vs COPY: COPY only copies local files; it is the right choice here."
	case "ADD":
		if strings.Contains(joined, "://") {
			return "Downloads a URL at build time (no cache control, no checksum unless --checksum): RUN curl or COPY of a vendored file is usually clearer."
		}
		return "ADD vs COPY: for plain files COPY does the same without the implicit archive unpacking and URL fetching."
	case "USER":
		if len(args) > 0 && (args[0] == "0" || args[0] == "root") {
			return "Runs as root: Kubernetes runAsNonRoot would refuse it."
		}
		return fmt.Sprintf("Runs as %s, not root; Kubernetes runAsNonRoot can verify a numeric UID.", joined)
	case "EXPOSE":
		return fmt.Sprintf("The app listens on %s; map it with docker run -p %s or a Service targetPort.", joined, strings.Split(joined, "/")[0]+":"+strings.Split(joined, "/")[0])
	case "ENV":
		if strings.Contains(strings.ToUpper(joined), "ZONEINFO") {
			return "Points Go's time package at the zoneinfo.zip copied in, since scratch has no /usr/share/zoneinfo."
		}
	case "ARG":
		return fmt.Sprintf("Build argument %s.", joined)
	case "WORKDIR":
		return fmt.Sprintf("Later relative paths resolve against %s.", joined)
	}
	return ""
}
