package dockertest

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hacluster/hacluster/pkg/fileutil"
)

// CopyGoApp copies the files of examples/goapp, the sample app (not its
// folders), into a fresh temporary folder and returns it.
func CopyGoApp(t testing.TB) string {
	t.Helper()
	root, err := fileutil.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	src := filepath.Join(root, "examples", "goapp")
	dst := t.TempDir()
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

// Roundtrip is the sample app's answer to GET /roundtrip.
type Roundtrip struct {
	OK    bool   `json:"ok"`
	Rows  int64  `json:"rows"`
	Error string `json:"error"`
}

// GetRoundtrip polls base+"/roundtrip" until the sample app answers 200
// with its JSON, for 90 s at most.
func GetRoundtrip(t testing.TB, base string) Roundtrip {
	t.Helper()
	var last string
	for deadline := time.Now().Add(90 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		resp, err := http.Get(base + "/roundtrip")
		if err != nil {
			last = err.Error()
			continue
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var r Roundtrip
		if resp.StatusCode == 200 && json.Unmarshal(b, &r) == nil {
			return r
		}
		last = resp.Status + " " + string(b)
	}
	t.Fatalf("GET %s/roundtrip: %s", base, last)
	return Roundtrip{}
}
