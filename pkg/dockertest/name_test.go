package dockertest

import (
	"regexp"
	"strings"
	"testing"
)

var dnsLabel = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

func TestNameIsUniqueAndDNSSafe(t *testing.T) {
	e := &Env{id: "0a1b2c3d", testName: "TestX"}
	seen := map[string]bool{}
	for _, prefix := range []string{"mariadb", "My_App.Server", "--x--", "", "ÄÖÜ db", strings.Repeat("long", 30), "a/b:c"} {
		for range 3 {
			n := e.Name(prefix)
			if !dnsLabel.MatchString(n) {
				t.Errorf("Name(%q) = %q: not a DNS label", prefix, n)
			}
			if seen[n] {
				t.Errorf("Name(%q) = %q: repeated", prefix, n)
			}
			seen[n] = true
			if !strings.Contains(n, e.id) {
				t.Errorf("Name(%q) = %q: lacks the Env ID", prefix, n)
			}
		}
	}
	if got := e.Name("My_App.Server"); !strings.HasPrefix(got, "my-app-server-0a1b2c3d-") {
		t.Errorf("Name(My_App.Server) = %q", got)
	}
}

func TestLabelsAreFreshCopies(t *testing.T) {
	e := &Env{id: "feedbeef", testName: "TestY"}
	l := e.Labels()
	if l[LabelKey] != "feedbeef" || l[LabelTest] != "TestY" {
		t.Fatalf("Labels() = %v", l)
	}
	l[LabelKey] = "changed"
	if e.Labels()[LabelKey] != "feedbeef" {
		t.Fatal("Labels() returned a shared map")
	}
	if e.LabelFilter() != "label=io.hacluster.dockertest=feedbeef" {
		t.Fatalf("LabelFilter() = %q", e.LabelFilter())
	}
}
