package fastpath

import (
	"io"
	"strings"
	"testing"
)

func TestAnswer(t *testing.T) {
	for _, c := range []struct {
		args       string
		fromDocker bool
		want       string // "metadata", "line", "json" or "" (full path)
	}{
		{"docker-cli-plugin-metadata", false, "metadata"},
		{"docker-cli-plugin-metadata", true, "metadata"},
		{"version", false, "line"},
		{"k8sprep version", false, "line"},
		{"k8sprep version", true, "line"},
		{"k8sprep version -o json", true, "json"},
		{"version -o json", false, "json"},
		{"version --output json", false, "json"},
		{"version --output=json", false, "json"},
		{"version -o=json", false, "json"},
		{"version -ojson", false, "json"},
		{"version -o table", false, "line"},
		{"version --output=table", false, "line"},

		{"", false, ""},
		{"docker-cli-plugin-metadata extra", false, ""},
		{"version", true, ""}, // docker always passes the plugin name
		{"--context default k8sprep version", true, ""},
		{"--log-level error k8sprep version", true, ""},
		{"version -o yaml", false, ""},
		{"version -o JSON", false, ""},
		{"version -o", false, ""},
		{"version --output", false, ""},
		{"version -o json -o json", false, ""},
		{"version --help", false, ""},
		{"version -h", false, ""},
		{"version extra", false, ""},
		{"version -x", false, ""},
		{"help version", false, ""},
		{"__complete version", false, ""},
		{"stack", false, ""},
		{"k8sprep", true, ""},
		{"k8sprep k8sprep version", false, ""},
	} {
		got := ""
		switch a := Answer(strings.Fields(c.args), c.fromDocker); {
		case a == nil:
		case same(a, writeMetadata):
			got = "metadata"
		case same(a, writeVersionLine):
			got = "line"
		case same(a, writeVersionJSON):
			got = "json"
		default:
			got = "?"
		}
		if got != c.want {
			t.Errorf("Answer(%q, fromDocker=%v) = %q, want %q", c.args, c.fromDocker, got, c.want)
		}
	}
}

func same(a, b func(io.Writer) error) bool {
	var x, y strings.Builder
	return a(&x) == nil && b(&y) == nil && x.String() == y.String()
}
