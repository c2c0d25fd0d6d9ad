package bootstrap

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/hacluster/hacluster/pkg/remote"
	"github.com/hacluster/hacluster/pkg/servingcert"
)

// kubectlOnFirst runs kubectl as root on the first control plane with its
// admin.conf; stdin, when set, is given to it.
func (r *run) kubectlOnFirst(ctx context.Context, args string, stdin []byte) (string, error) {
	c := r.fleet.Conns[r.first]
	cmd := remote.Cmd{Script: "kubectl --kubeconfig " + adminConf + " " + args, Sudo: true}
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	res, err := c.Run(ctx, cmd)
	return res.Stdout, err
}

// flannelNetwork is the pod network line of kube-flannel.yml's net-conf.json.
const flannelNetwork = `"Network": "10.244.0.0/16"`

// The CNI configuration's spec version: kube-flannel.yml says 1.0.0; 0.4.0
// is what every flannel CNI plugin speaks, the one the release image ships
// and the older one of containernetworking/plugins that the node bed's image
// carries (the newer one's module is not served here), and bridge and
// portmap accept it too.
const (
	flannelCNIVersion = `"cniVersion": "1.0.0"`
	cniVersion        = `"cniVersion": "0.4.0"`
)

// cni installs the network plugin right after init, as kubeadm's guide
// does: the nodes that join next get their flannel Pod as they register, in
// parallel with the joins that follow (nodesReady waits for them at the end).
// flannel: the release's kube-flannel.yml (checksum pinned), with the
// cluster's pod subnet, applied with kubectl on the first control plane.
func (r *run) cni(ctx context.Context) error {
	t0 := time.Now()
	switch r.c.Spec.Network.CNI {
	case "none":
		r.record(PhaseResult{Phase: "cni", Detail: "cni: none (install your own; nodes stay NotReady until then)"})
		return nil
	case "calico":
		return r.installCalico(ctx)
	}
	f, ok := r.files["manifest/kube-flannel.yml"]
	if !ok {
		return fmt.Errorf("kube-flannel.yml was not downloaded")
	}
	raw, err := os.ReadFile(f.Path)
	if err != nil {
		return err
	}
	if !bytes.Contains(raw, []byte(flannelNetwork)) {
		return fmt.Errorf("kube-flannel.yml %s has no %s line to set the pod subnet in", r.c.Spec.Artifacts.Flannel, flannelNetwork)
	}
	manifest := bytes.Replace(raw, []byte(flannelNetwork), []byte(fmt.Sprintf(`"Network": %q`, r.c.Spec.Network.PodSubnet)), 1)
	manifest = bytes.Replace(manifest, []byte(flannelCNIVersion), []byte(cniVersion), 1)
	sum := sha256.Sum256(manifest)
	want := hex.EncodeToString(sum[:])
	first := r.fleet.Conns[r.first]
	stamp := stampDir + "/cni-flannel.sha256"
	have := r.stamp(ctx, first, stamp)
	ds, _ := r.kubectlOnFirst(ctx, "-n kube-flannel get daemonset kube-flannel-ds -o name --ignore-not-found", nil)
	changed := false
	if have != want || strings.TrimSpace(ds) == "" {
		if _, err := r.kubectlOnFirst(ctx, "apply -f -", manifest); err != nil {
			return fmt.Errorf("apply kube-flannel.yml: %w", err)
		}
		if err := r.writeStamp(ctx, first, stamp, want); err != nil {
			return err
		}
		changed = true
	}
	detail := "flannel " + r.c.Spec.Artifacts.Flannel + " already applied"
	if changed {
		detail = "flannel " + r.c.Spec.Artifacts.Flannel + " applied (pod network " + r.c.Spec.Network.PodSubnet + ")"
	}
	r.record(PhaseResult{Phase: "cni", Changed: changed, Detail: detail, Duration: time.Since(t0)})
	r.o.Logf("  %s (%s)", detail, time.Since(t0).Round(time.Millisecond))
	return nil
}

// nodesReady: every host of the cluster file is a Ready Node (the CNI up
// on each).
func (r *run) nodesReady(ctx context.Context) error {
	t0 := time.Now()
	if err := r.waitNodesReady(ctx, 5*time.Minute); err != nil {
		return err
	}
	detail := fmt.Sprintf("%d nodes Ready", len(r.c.Spec.Hosts))
	changed := false
	cs, err := r.kube(ctx)
	if err != nil {
		return err
	}
	if on, err := servingcert.Enabled(ctx, cs); err != nil {
		return err
	} else if on {
		var live []servingcert.Node
		for _, h := range r.c.Spec.Hosts {
			if !slices.Contains(r.dead, h.Name) {
				live = append(live, servingcert.Node{Name: h.Name, Addresses: slices.Compact([]string{h.Address, h.InternalAddress})})
			}
		}
		issued := func(ctx context.Context, n servingcert.Node) (bool, error) {
			return exists(ctx, r.fleet.Conns[n.Name], servingcert.KubeletFile), nil
		}
		n, err := servingcert.Approve(ctx, cs, live, issued, 2*time.Minute)
		if err != nil {
			return err
		}
		changed = n > 0
		detail += fmt.Sprintf(", kubelet serving certificates issued (%d approved now)", n)
	}
	r.record(PhaseResult{Phase: "nodes-ready", Detail: detail, Changed: changed, Duration: time.Since(t0)})
	r.o.Logf("  %s", detail)
	return nil
}

// waitNodesReady waits until every host of the cluster file is a Ready Node.
func (r *run) waitNodesReady(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	var last string
	for {
		out, err := r.kubectlOnFirst(ctx, `get nodes -o jsonpath='{range .items[*]}{.metadata.name}={.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}'`, nil)
		if err == nil {
			ready := map[string]bool{}
			for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
				name, st, _ := strings.Cut(l, "=")
				ready[name] = st == "True"
			}
			var waiting []string
			for _, h := range r.c.Spec.Hosts {
				if !ready[h.Name] {
					waiting = append(waiting, h.Name)
				}
			}
			if len(waiting) == 0 {
				return nil
			}
			last = "not Ready: " + strings.Join(waiting, ", ")
		} else {
			last = err.Error()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("nodes not Ready after %s (%s)", timeout, last)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(2 * time.Second):
		}
	}
}

// spreadCoreDNS: kubeadm creates CoreDNS while the first control plane is the
// only node, so both replicas run there and the cluster's DNS dies with that
// node. Once the other nodes are Ready, one of the two is deleted: the
// scheduler puts its replacement on another node (CoreDNS's anti-affinity is
// preferred, not required), and the other replica serves meanwhile.
func (r *run) spreadCoreDNS(ctx context.Context) error {
	t0 := time.Now()
	pods, err := r.coreDNSPods(ctx)
	if err != nil {
		return err
	}
	nodes := map[string]bool{}
	for _, p := range pods {
		nodes[p.node] = true
	}
	if len(pods) < 2 || len(nodes) > 1 || len(r.c.Spec.Hosts) < 2 {
		r.record(PhaseResult{Phase: "coredns", Detail: fmt.Sprintf("%d replicas on %d node(s)", len(pods), len(nodes)), Duration: time.Since(t0)})
		return nil
	}
	if _, err := r.kubectlOnFirst(ctx, "-n kube-system delete pod "+remote.Quote(pods[0].name)+" --wait=false", nil); err != nil {
		return err
	}
	for deadline := time.Now().Add(3 * time.Minute); ; {
		pods, err := r.coreDNSPods(ctx)
		ready := map[string]bool{}
		for _, p := range pods {
			if p.ready {
				ready[p.node] = true
			}
		}
		if err == nil && len(ready) >= 2 {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("CoreDNS is not Ready on two nodes after 3m: %v %v", pods, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
	r.record(PhaseResult{Phase: "coredns", Changed: true, Detail: "both replicas were on one node: one moved to another", Duration: time.Since(t0)})
	return nil
}

type dnsPod struct {
	name, node string
	ready      bool
}

func (r *run) coreDNSPods(ctx context.Context) ([]dnsPod, error) {
	out, err := r.kubectlOnFirst(ctx, `-n kube-system get pods -l k8s-app=kube-dns -o jsonpath='{range .items[*]}{.metadata.name}|{.spec.nodeName}|{.status.conditions[?(@.type=="Ready")].status}|{.metadata.deletionTimestamp}{"\n"}{end}'`, nil)
	if err != nil {
		return nil, err
	}
	var pods []dnsPod
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Split(l, "|")
		if len(f) != 4 || f[1] == "" || f[3] != "" { // unscheduled or going away
			continue
		}
		pods = append(pods, dnsPod{name: f[0], node: f[1], ready: f[2] == "True"})
	}
	return pods, nil
}
