package inventory_test

import (
	"strings"
	"testing"

	"github.com/hacluster/hacluster/pkg/inventory"
)

// A new host is appended, an existing one gets its new address and roles;
// comments and the other fields stay.
func TestSetHosts(t *testing.T) {
	in := "# my lab\n" + strings.Replace(minimal, "    - name: w-1\n", "    # the worker\n    - name: w-1\n", 1)
	out, err := inventory.SetHosts("cluster.yaml", []byte(in), []inventory.Host{
		{Name: "w-2", Address: "10.0.0.22", Roles: []string{"worker"}},
		{Name: "w-1", Address: "10.0.0.31", Roles: []string{"worker"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	s := string(out)
	for _, want := range []string{"# my lab", "# the worker", "user: admin", "{name: w-2, address: 10.0.0.22, roles: [worker]}", "address: 10.0.0.31"} {
		if !strings.Contains(s, want) {
			t.Errorf("no %q in:\n%s", want, s)
		}
	}
	c, err := inventory.Parse("cluster.yaml", out)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Spec.Hosts) != 3 || c.Spec.Hosts[1].Address != "10.0.0.31" || c.Spec.Hosts[1].SSH == nil || c.Spec.Hosts[2].Name != "w-2" {
		t.Errorf("hosts after: %+v", c.Spec.Hosts)
	}
	// A new host with its own SSH login.
	out, err = inventory.SetHosts("cluster.yaml", []byte(in), []inventory.Host{{Name: "w-4", Address: "10.0.0.24", Roles: []string{"worker"}, SSH: &inventory.SSH{User: "ops", Port: 2222, KeyFile: "~/.ssh/w4"}}})
	if err != nil || !strings.Contains(string(out), "{name: w-4, address: 10.0.0.24, roles: [worker], ssh: {user: ops, port: 2222, keyFile: ~/.ssh/w4}}") {
		t.Errorf("a host with ssh: %v\n%s", err, out)
	}
	// A host that makes the file invalid is refused: the same address twice.
	if _, err := inventory.SetHosts("cluster.yaml", []byte(in), []inventory.Host{{Name: "w-3", Address: "10.0.0.21", Roles: []string{"worker"}}}); err == nil {
		t.Error("a duplicate address was accepted")
	}
}

func TestRemoveHosts(t *testing.T) {
	in := strings.Replace(minimal, "    - name: w-1\n", "    # the worker\n    - name: w-1\n", 1)
	in = strings.Replace(in, "  controlPlaneEndpoint:", "    - {name: w-2, address: 10.0.0.22, roles: [worker]} # spare\n  controlPlaneEndpoint:", 1)
	out, err := inventory.RemoveHosts("cluster.yaml", []byte(in), []string{"w-1"})
	if err != nil {
		t.Fatal(err)
	}
	c, err := inventory.Parse("cluster.yaml", out)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Spec.Hosts) != 2 || c.Spec.Hosts[1].Name != "w-2" || !strings.Contains(string(out), "# spare") {
		t.Errorf("after removing w-1:\n%s", out)
	}
	// The last control plane cannot go: the file would be invalid.
	if _, err := inventory.RemoveHosts("cluster.yaml", []byte(in), []string{"cp-1"}); err == nil {
		t.Error("a file without a control plane was accepted")
	}
}
