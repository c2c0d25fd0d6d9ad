package bootstrap

import (
	"context"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hacluster/hacluster/pkg/artifacts"
	"github.com/hacluster/hacluster/pkg/facts"
	"github.com/hacluster/hacluster/pkg/inventory"
	"github.com/hacluster/hacluster/pkg/remote"
)

// Where the runtime goes, as the containerd and CNI install guides put it.
const (
	stampDir        = "/var/lib/hacluster/installed" // sha256 of each unpacked archive
	containerdConf  = "/etc/containerd/config.toml"
	containerdUnit  = "/etc/systemd/system/containerd.service"
	crictlConf      = "/etc/crictl.yaml"
	containerdSock  = "unix:///run/containerd/containerd.sock"
	registryCertsD  = "/etc/containerd/certs.d"
	pauseImageMinor = "3.10.2"
)

// runtime: containerd (+ shim, ctr), runc, the CNI plugins and crictl from
// the release archives; containerd's config (systemd cgroups as the kubelet
// uses, the sandbox image kubeadm expects, registry mirrors) and unit;
// started, and the CRI answering.
func (r *run) runtime(ctx context.Context, h inventory.Host, c *remote.Conn, f *facts.Facts) (bool, string, error) {
	var did []string
	for _, u := range []struct {
		name, dir string
	}{{"containerd", "/usr/local"}, {"cni-plugins", "/opt/cni/bin"}, {"crictl", "/usr/local/bin"}} {
		changed, err := r.unpack(ctx, c, r.file(u.name, f), u.dir)
		if err != nil {
			return false, "", fmt.Errorf("%s: %w", u.name, err)
		}
		if changed {
			did = append(did, u.name)
		}
	}
	runc := r.file("runc", f)
	changed, err := r.ensureUpload(ctx, c, "/usr/local/sbin/runc", runc.Path, runc.SHA256, 0o755)
	if err != nil {
		return false, "", err
	}
	if changed {
		did = append(did, "runc")
	}
	restart := false
	for _, file := range []struct {
		path string
		data string
	}{
		{containerdConf, containerdConfig(r.c, f)},
		{containerdUnit, containerdService(f)},
		{crictlConf, "runtime-endpoint: " + containerdSock + "\nimage-endpoint: " + containerdSock + "\ntimeout: 10\n"},
	} {
		changed, err := r.ensureContent(ctx, c, file.path, []byte(file.data), 0o644)
		if err != nil {
			return false, "", err
		}
		if changed {
			did, restart = append(did, file.path), true
		}
	}
	for reg, eps := range r.c.Spec.Registries.Mirrors {
		changed, err := r.ensureContent(ctx, c, registryCertsD+"/"+reg+"/hosts.toml", []byte(hostsTOML(reg, eps)), 0o644)
		if err != nil {
			return false, "", err
		}
		if changed {
			did = append(did, "mirror "+reg) // read per pull: no restart needed
		}
	}
	active, _ := c.Output(ctx, "systemctl is-active containerd || true", false)
	switch {
	case strings.TrimSpace(active) != "active":
		if _, err := c.Output(ctx, "systemctl daemon-reload && systemctl enable --now -q containerd", true); err != nil {
			return false, "", err
		}
		did = append(did, "containerd started")
	case restart || len(did) > 0: // new binaries or configuration
		if _, err := c.Output(ctx, "systemctl daemon-reload && systemctl restart containerd", true); err != nil {
			return false, "", err
		}
		did = append(did, "containerd restarted")
	}
	// The CRI must answer before the kubelet is given to it.
	var last error
	for t0 := time.Now(); time.Since(t0) < 30*time.Second; time.Sleep(300 * time.Millisecond) {
		if _, last = c.Output(ctx, "crictl info >/dev/null", true); last == nil {
			break
		}
	}
	if last != nil {
		logs, _ := c.Output(ctx, "journalctl -u containerd -n 20 --no-pager", true)
		return len(did) > 0, "", fmt.Errorf("containerd's CRI does not answer: %v\n%s", last, logs)
	}
	imported, err := r.importImages(ctx, c, archOf(f))
	if err != nil {
		return true, "", err
	}
	if imported {
		did = append(did, "bundle images imported")
	}
	// Pulls in the background change no setting: a re-run that starts the
	// pulls an earlier one left unfinished has still converged.
	pulling := ""
	if r.bundlePath() == "" {
		n, err := prePull(ctx, c, r.nodeImages(h))
		if err != nil {
			return len(did) > 0, "", fmt.Errorf("pre-pulling images: %w", err)
		}
		if n > 0 {
			pulling = fmt.Sprintf("pulling %d images in the background", n)
			if n == 1 {
				pulling = "pulling 1 image in the background"
			}
		}
	}
	if len(did) == 0 {
		detail := "containerd " + r.c.Spec.Artifacts.Containerd + ", runc, CNI plugins, crictl already installed; CRI answers"
		if pulling != "" {
			detail += "; " + pulling
		}
		return false, detail, nil
	}
	if pulling != "" {
		did = append(did, pulling)
	}
	return true, strings.Join(did, ", "), nil
}

// file is the downloaded artifact of that name for the host's architecture.
func (r *run) file(name string, f *facts.Facts) artifacts.Fetched {
	return r.files[archOf(f)+"/"+name]
}

func archOf(f *facts.Facts) string {
	if f.Arch == "aarch64" {
		return "arm64"
	}
	return "amd64"
}

// unpack extracts a release archive into dir unless the stamp says this
// archive was unpacked there already. The archive streams over SSH.
func (r *run) unpack(ctx context.Context, c *remote.Conn, a artifacts.Fetched, dir string) (bool, error) {
	stamp := stampDir + "/" + a.Name + ".sha256"
	if r.stamp(ctx, c, stamp) == a.SHA256 {
		return false, nil
	}
	in, err := os.Open(a.Path)
	if err != nil {
		return false, err
	}
	defer in.Close()
	script := fmt.Sprintf("set -e; mkdir -p %[1]s %[2]s; tar -xzf - --no-same-owner -C %[1]s; echo %[3]s >%[4]s", remote.Quote(dir), stampDir, a.SHA256, remote.Quote(stamp))
	if _, err = c.Run(ctx, remote.Cmd{Script: script, Sudo: true, Stdin: in}); err != nil {
		return true, err
	}
	if s := r.snap(c); s != nil {
		s.mu.Lock()
		s.stamps[stamp] = a.SHA256
		s.mu.Unlock()
	}
	return true, nil
}

// containerdConfig renders /etc/containerd/config.toml (containerd 2.x,
// config version 3).
func containerdConfig(c *inventory.Cluster, f *facts.Facts) string {
	pause := c.Spec.Kubernetes.ImageRepository + "/pause:" + pauseImageMinor
	var b strings.Builder
	fmt.Fprintf(&b, `# Written by kubectl hacluster bootstrap; a re-run rewrites it.
version = 3

[plugins.'io.containerd.cri.v1.images']
  [plugins.'io.containerd.cri.v1.images'.pinned_images]
    # The Pod sandbox image kubeadm %s expects (under spec.kubernetes.imageRepository).
    sandbox = '%s'
  [plugins.'io.containerd.cri.v1.images'.registry]
    # One hosts.toml per mirrored registry (spec.registries.mirrors).
    config_path = '%s'

[plugins.'io.containerd.cri.v1.runtime']
`, c.Spec.Kubernetes.Version, pause, registryCertsD)
	if !f.CanLowerOOMScore {
		b.WriteString(`  # CAP_SYS_RESOURCE is not in this host's capability bounding set (a
  # container host, for one): no process may lower its oom_score_adj, and
  # every Pod sandbox would fail ("can't get final child's PID from pipe").
  restrict_oom_score_adj = true
`)
	}
	b.WriteString(`  [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
    runtime_type = 'io.containerd.runc.v2'
    [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
      BinaryName = '/usr/local/sbin/runc'
      # The kubelet's cgroupDriver is systemd (kubeadm's default): both must agree.
      SystemdCgroup = true
  [plugins.'io.containerd.cri.v1.runtime'.cni]
    bin_dirs = ['/opt/cni/bin']
    conf_dir = '/etc/cni/net.d'
`)
	return b.String()
}

// hostsTOML is containerd's registry host configuration for one registry:
// the mirrors first, in order, then the registry itself. A mirror path that
// already names /v2/... is used as it is (override_path).
func hostsTOML(registry string, endpoints []string) string {
	server := "https://" + registry
	if registry == "docker.io" {
		server = "https://registry-1.docker.io"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "# Written by kubectl hacluster bootstrap (spec.registries.mirrors).\nserver = %q\n", server)
	for _, ep := range endpoints {
		fmt.Fprintf(&b, "\n[host.%q]\n  capabilities = [\"pull\", \"resolve\"]\n", ep)
		if strings.Contains(ep, "/v2/") || strings.HasSuffix(ep, "/v2") {
			b.WriteString("  override_path = true\n")
		}
	}
	return b.String()
}

// containerdService is the unit containerd's release ships; OOMScoreAdjust
// only where the host allows lowering it (systemd refuses to start the unit
// otherwise).
func containerdService(f *facts.Facts) string {
	oom := "OOMScoreAdjust=-999\n"
	if !f.CanLowerOOMScore {
		oom = "# No OOMScoreAdjust: CAP_SYS_RESOURCE is not in this host's bounding set.\n"
	}
	return `# Written by kubectl hacluster bootstrap (as containerd's release ships it).
[Unit]
Description=containerd container runtime
Documentation=https://containerd.io
After=network.target dbus.service

[Service]
ExecStartPre=-/sbin/modprobe overlay
ExecStart=/usr/local/bin/containerd
Type=notify
Delegate=yes
KillMode=process
Restart=always
RestartSec=5
LimitNPROC=infinity
LimitCORE=infinity
TasksMax=infinity
` + oom + `
[Install]
WantedBy=multi-user.target
`
}

// nodeImages are the images the host's kubelet will ask for first: the
// sandbox, kube-proxy, flannel's, and on a control plane its static pods'
// (kubeadm pulls etcd and CoreDNS itself).
func (r *run) nodeImages(h inventory.Host) []string {
	repo, v := r.c.Spec.Kubernetes.ImageRepository, r.c.Spec.Kubernetes.Version
	imgs := []string{repo + "/pause:" + pauseImageMinor, repo + "/kube-proxy:" + v}
	if isControlPlane(h) {
		for _, c := range []string{"kube-apiserver", "kube-controller-manager", "kube-scheduler"} {
			imgs = append(imgs, repo+"/"+c+":"+v)
		}
	}
	if m, ok := r.files["manifest/kube-flannel.yml"]; ok {
		if b, err := os.ReadFile(m.Path); err == nil {
			for _, l := range strings.Split(string(b), "\n") {
				if ref, ok := strings.CutPrefix(strings.TrimSpace(l), "image: "); ok {
					if ref = strings.Trim(strings.TrimSpace(ref), `"'`); !slices.Contains(imgs, ref) {
						imgs = append(imgs, ref)
					}
				}
			}
		}
	}
	return slices.DeleteFunc(imgs, func(s string) bool { return !imageRef().MatchString(s) })
}

var imageRef = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9./:@_-]*$`) })

// prePull starts pulling the images the host lacks in the background
// (several at once; the kubelet pulls one at a time), so that they arrive
// while the binaries are uploaded and kubeadm runs. It returns how many it
// started; a pull that fails is the kubelet's to retry.
func prePull(ctx context.Context, c *remote.Conn, images []string) (int, error) {
	if len(images) == 0 {
		return 0, nil
	}
	list := strings.Join(images, " ")
	out, err := c.Output(ctx, `n=0; missing=""
for i in `+list+`; do crictl inspecti -q "$i" >/dev/null 2>&1 || { n=$((n+1)); missing="$missing $i"; }; done
if [ -n "$missing" ]; then
  setsid nohup sh -c 'for i in '"$missing"'; do crictl pull "$i" & done; wait' </dev/null >/dev/null 2>&1 &
fi
echo $n`, true)
	if err != nil {
		return 0, err
	}
	n, _ := strconv.Atoi(strings.TrimSpace(out))
	return n, nil
}
