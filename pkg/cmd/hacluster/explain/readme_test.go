package explain_test

// The README's usage examples for explain/proxymode, run as written against
// the HA shape: through the built plugin when HACLUSTER_BIN is set (make
// test), else through the same command tree in process.

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/hacluster/hacluster/pkg/cmd/hacluster"
	"github.com/hacluster/hacluster/pkg/testbed"
)

// readmeExamples returns the commands of the first sh block of the README's
// explain section.
func readmeExamples(t *testing.T) [][]string {
	_, file, _, _ := runtime.Caller(0)
	b, err := os.ReadFile(filepath.Join(filepath.Dir(file), "..", "..", "..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	start, end := strings.Index(s, "<!-- BEGIN explain -->"), strings.Index(s, "<!-- END explain -->")
	if start < 0 || end < start {
		t.Fatal("README has no explain section")
	}
	sec := s[start:end]
	i := strings.Index(sec, "```sh\n")
	j := strings.Index(sec[i+6:], "```")
	var cmds [][]string
	for _, line := range strings.Split(sec[i+6:i+6+j], "\n") {
		line, _, _ = strings.Cut(line, "#")
		f := strings.Fields(line)
		if len(f) > 2 && f[0] == "kubectl" && f[1] == "hacluster" {
			cmds = append(cmds, f[2:])
		}
	}
	return cmds
}

func TestReadmeExamples(t *testing.T) {
	cmds := readmeExamples(t)
	if len(cmds) < 8 {
		t.Fatalf("found %d examples in the README", len(cmds))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	bed := testbed.Start(t, testbed.Options{Components: true})
	if _, err := bed.ApplyHAShape(ctx, testbed.Shape{}); err != nil {
		t.Fatal(err)
	}
	bin := os.Getenv("HACLUSTER_BIN")
	for _, args := range cmds {
		var out, errb bytes.Buffer
		var err error
		if bin != "" {
			cmd := exec.CommandContext(ctx, filepath.Join(bin, "kubectl-hacluster"), args...)
			cmd.Env = append(os.Environ(), "KUBECONFIG="+bed.Kubeconfig)
			cmd.Stdout, cmd.Stderr = &out, &errb
			err = cmd.Run()
		} else {
			root := hacluster.NewCmdRoot(genericiooptions.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errb})
			root.SetArgs(append([]string{"--kubeconfig", bed.Kubeconfig}, args...))
			err = root.ExecuteContext(ctx)
		}
		if err != nil {
			t.Errorf("kubectl hacluster %s: %v\n%s", strings.Join(args, " "), err, errb.String())
			continue
		}
		if out.Len() == 0 {
			t.Errorf("kubectl hacluster %s printed nothing", strings.Join(args, " "))
		}
		t.Logf("$ kubectl hacluster %s\n%s", strings.Join(args, " "), out.String())
	}
}
