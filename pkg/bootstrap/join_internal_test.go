package bootstrap

import (
	"strings"
	"testing"

	"github.com/hacluster/hacluster/pkg/inventory"
)

// Which dead running hosts a join goes on without.
func TestDeadHostsAllowed(t *testing.T) {
	cp := func(n string) inventory.Host {
		return inventory.Host{Name: n, Address: "10.0.0." + n[len(n)-1:], Roles: []string{inventory.RoleControlPlane}}
	}
	w := func(n string) inventory.Host {
		return inventory.Host{Name: n, Address: "10.0.1." + n[len(n)-1:], Roles: []string{inventory.RoleWorker}}
	}
	c := &inventory.Cluster{Metadata: inventory.Metadata{Name: "lab"}, Spec: inventory.Spec{Hosts: []inventory.Host{cp("cp-1"), cp("cp-2"), cp("cp-3"), w("w-1"), w("w-2"), cp("cp-4")}}}
	for _, tc := range []struct {
		joining []inventory.Host
		dead    []string
		want    string // "" allowed
	}{
		{[]inventory.Host{w("w-2")}, []string{"w-1"}, ""},
		{[]inventory.Host{w("w-2")}, []string{"cp-3", "w-1"}, ""},
		{[]inventory.Host{cp("cp-4")}, []string{"w-1"}, ""},
		{[]inventory.Host{w("w-2")}, []string{"w-2"}, "w-2 does not answer SSH at 10.0.1.2: a host to join must"},
		{[]inventory.Host{cp("cp-4")}, []string{"cp-2"}, "control plane cp-2 does not answer SSH: a control plane joins only when all answer"},
		{[]inventory.Host{w("w-2")}, []string{"cp-1", "cp-2", "cp-3", "cp-4"}, "no control plane of lab answers SSH"},
	} {
		err := deadHostsAllowed(c, tc.joining, tc.dead)
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("joining %v, dead %v: %v, want %q", tc.joining[0].Name, tc.dead, err, tc.want)
		}
	}
}
