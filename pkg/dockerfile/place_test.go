package dockerfile

import (
	"os"
	"strings"
	"testing"
)

// TestPlace follows config.toml through real and generated Dockerfiles.
func TestPlace(t *testing.T) {
	goapp, err := os.ReadFile("../../examples/goapp/Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	p, err := Inspect("../../examples/goapp")
	if err != nil {
		t.Fatal(err)
	}
	g, err := Generate(p, GenerateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, src, target, rel string
		want                   Placement
	}{
		// COPY . . in the builder's /app, then COPY --from=builder /app/config.toml /config.toml.
		{"examples/goapp", string(goapp), "", "config.toml", Placement{Path: "/config.toml", Line: 15, Workdir: "/"}},
		// dockerfile init: WORKDIR /app, COPY config.toml /app/config.toml.
		{"dockerfile init", g.Dockerfile, "", "config.toml", Placement{Path: "/app/config.toml", Line: lineOfText(g.Dockerfile, "COPY config.toml"), Workdir: "/app"}},
		{"the builder stage", string(goapp), "builder", "config.toml", Placement{Path: "/app/config.toml", Line: 8, Workdir: "/app"}},
		{"relative destination, ENV and ARG", "ARG D=etc\nFROM scratch\nARG D\nENV APP_HOME=/srv/app\nWORKDIR $APP_HOME\nCOPY conf/app.toml ${D}/\n", "", "conf/app.toml",
			Placement{Path: "/srv/app/etc/app.toml", Line: 6, Workdir: "/srv/app"}},
		{"a folder", "FROM scratch\nCOPY conf /opt/conf\n", "", "conf/sub/app.toml", Placement{Path: "/opt/conf/sub/app.toml", Line: 2, Workdir: "/"}},
		{"a glob", "FROM scratch\nWORKDIR /w\nCOPY *.toml ./\n", "", "config.toml", Placement{Path: "/w/config.toml", Line: 3, Workdir: "/w"}},
		{"a later stage built FROM an earlier one", "FROM scratch AS base\nWORKDIR /a\nCOPY config.toml .\nFROM base\nWORKDIR b\n", "", "config.toml",
			Placement{Path: "/a/config.toml", Line: 3, Workdir: "/a/b"}},
		{"not copied: the working directory", "FROM debian AS b\nCOPY config.toml /x/\nFROM scratch\nWORKDIR /app\nCOPY --from=b /x/other /o\n", "", "config.toml", Placement{Workdir: "/app"}},
		{"copied from an image", "FROM scratch\nCOPY --from=example/img /config.toml /config.toml\n", "", "config.toml", Placement{Workdir: "/"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := Place([]byte(c.src), c.target, c.rel)
			if err != nil {
				t.Fatal(err)
			}
			if got != c.want {
				t.Errorf("got %+v, want %+v", got, c.want)
			}
		})
	}
	if _, err := Place(goapp, "nope", "config.toml"); err == nil {
		t.Error("an unknown target stage is accepted")
	}
}

func lineOfText(src, prefix string) int {
	for i, l := range strings.Split(src, "\n") {
		if strings.HasPrefix(l, prefix) {
			return i + 1
		}
	}
	return 0
}
