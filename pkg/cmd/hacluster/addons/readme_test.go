package addons_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/hacluster/hacluster/pkg/cmd/hacluster/addons"
	"github.com/hacluster/hacluster/pkg/testbed"
)

// readmeBlock returns the lines of the first sh block of the README's
// addons section, comments stripped.
func readmeBlock(t *testing.T) []string {
	b, err := os.ReadFile(filepath.Join("..", "..", "..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	start, end := strings.Index(s, "<!-- BEGIN addons -->"), strings.Index(s, "<!-- END addons -->")
	if start < 0 || end < start {
		t.Fatal("README has no addons section")
	}
	sec := s[start:end]
	i := strings.Index(sec, "```sh\n")
	j := strings.Index(sec[i+6:], "```")
	var lines []string
	for _, line := range strings.Split(sec[i+6:i+6+j], "\n") {
		line, _, _ = strings.Cut(line, "#")
		if line = strings.TrimSpace(line); line != "" {
			lines = append(lines, line)
		}
	}
	return lines
}

// readmeExamples runs the README's addons commands as written, in a fresh
// directory, on the bed (which the life-cycle test left without add-ons).
// The catalog comes from $HACLUSTER_ADDONS_CATALOG (the test server's, so
// `fetch` works offline). With HACLUSTER_BIN (make test) they run through
// kubectl's plugin mechanism and the built binary; else in process.
// `kubectl port-forward` needs a real kubelet and is only checked to name
// the Service that install created.
func readmeExamples(t *testing.T, bed *testbed.Bed, catalog string) {
	lines := readmeBlock(t)
	if len(lines) < 8 {
		t.Fatalf("found %d example lines", len(lines))
	}
	t.Setenv(addons.CatalogEnv, catalog)
	dir := t.TempDir()
	t.Chdir(dir)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	bin := os.Getenv("HACLUSTER_BIN")
	for _, line := range lines {
		f := strings.Fields(line)
		var out, errb bytes.Buffer
		var err error
		switch {
		case len(f) > 2 && f[0] == "kubectl" && f[1] == "hacluster" && bin != "":
			cmd := exec.CommandContext(ctx, filepath.Join(bed.Bin, "kubectl"), f[1:]...)
			cmd.Env = append(os.Environ(), "KUBECONFIG="+bed.Kubeconfig, "PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"))
			cmd.Stdout, cmd.Stderr = &out, &errb
			err = cmd.Run()
		case len(f) > 2 && f[0] == "kubectl" && f[1] == "hacluster":
			var o, e string
			o, e, err = run(t, bed.Kubeconfig, f[3:]...)
			out.WriteString(o)
			errb.WriteString(e)
		case f[0] == "kubectl" && strings.Contains(line, "port-forward"):
			svc := strings.TrimPrefix(f[4], "svc/")
			if _, err := bed.Client.CoreV1().Services(f[2]).Get(ctx, svc, metav1.GetOptions{}); err != nil {
				t.Errorf("%s: %v", line, err)
			}
			continue
		default:
			cmd := exec.CommandContext(ctx, "sh", "-c", line)
			cmd.Stdout, cmd.Stderr = &out, &errb
			err = cmd.Run()
		}
		if err != nil {
			t.Errorf("$ %s: %v\n%s\n%s", line, err, out.String(), errb.String())
			continue
		}
		if out.Len() == 0 {
			t.Errorf("$ %s printed nothing", line)
		}
		t.Logf("$ %s\n%s", line, out.String())
	}
}
