package bootstrap

import "testing"

// The snapshot script's output, as a host with some of bootstrap's files
// prints it.
func TestParseSnapshot(t *testing.T) {
	s := parseSnapshot(`list /etc/modules-load.d/hacluster-kubernetes.conf
sum 1111111111111111111111111111111111111111111111111111111111111111  /etc/modules-load.d/hacluster-kubernetes.conf
list /etc/haproxy/haproxy.cfg
list /usr/bin/kubelet
size 104857600 /usr/bin/kubelet
list /var/lib/hacluster/images.tar
stamp /var/lib/hacluster/installed/usr_bin_kubelet.sha256 2222222222222222222222222222222222222222222222222222222222222222
stamp /var/lib/hacluster/installed/empty.sha256
`)
	if s.sums["/etc/modules-load.d/hacluster-kubernetes.conf"] != "1111111111111111111111111111111111111111111111111111111111111111" {
		t.Errorf("sums %v", s.sums)
	}
	if !s.listed["/etc/haproxy/haproxy.cfg"] || s.sums["/etc/haproxy/haproxy.cfg"] != "" {
		t.Error("an absent listed file must be known as absent")
	}
	if s.sizes["/usr/bin/kubelet"] != 104857600 || !s.listed["/var/lib/hacluster/images.tar"] {
		t.Errorf("sizes %v", s.sizes)
	}
	if s.stamps["/var/lib/hacluster/installed/usr_bin_kubelet.sha256"] != "2222222222222222222222222222222222222222222222222222222222222222" || s.stamps["/var/lib/hacluster/installed/empty.sha256"] != "" {
		t.Errorf("stamps %v", s.stamps)
	}
	if s.listed["/etc/containerd/config.toml"] {
		t.Error("a path the script did not list is unknown, not absent")
	}
}
