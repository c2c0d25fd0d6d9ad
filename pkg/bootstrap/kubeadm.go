package bootstrap

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/yaml"

	"github.com/hacluster/hacluster/pkg/facts"
	"github.com/hacluster/hacluster/pkg/fileutil"
	"github.com/hacluster/hacluster/pkg/inventory"
	"github.com/hacluster/hacluster/pkg/kubeconfig"
	"github.com/hacluster/hacluster/pkg/remote"
)

// kubeadm's configuration files on the hosts. They hold the certificate key
// or a bootstrap token, so they are 0600 and removed after use: secrets go to
// kubeadm in files, never on its command line.
const (
	kubeadmDir       = "/etc/kubernetes/hacluster"
	initConfigFile   = kubeadmDir + "/kubeadm-init.yaml"
	joinConfigFile   = kubeadmDir + "/kubeadm-join.yaml"
	adminConf        = "/etc/kubernetes/admin.conf"
	kubeletConf      = "/etc/kubernetes/kubelet.conf"
	kubeadmAPI       = "kubeadm.k8s.io/v1beta4"
	criSocket        = "unix:///run/containerd/containerd.sock"
	kubeadmLogFile   = "/var/log/hacluster-kubeadm.log"
	tokenTTL         = time.Hour
	tokenDescription = "kubectl hacluster bootstrap"
	certKeyBytes     = 32
	joinWaitTimeout  = 15 * time.Minute
)

// initFirst: `kubeadm init` on the first control plane, unless it already is
// one. A run killed during init leaves kubeadm running on the host (an SSH
// session that dies does not stop its command): the re-run waits for it.
// An init that died half-way (the host rebooted, kubeadm was killed) is run
// again over what it left: kubeadm reuses the CA, the certificates, the
// kubeconfigs and etcd's data it finds, so the cluster keeps its identity.
func (r *run) initFirst(ctx context.Context) error {
	h := r.c.ControlPlanes()[0]
	c := r.fleet.Conns[h.Name]
	t0 := time.Now()
	if err := r.waitForKubeadm(ctx, c); err != nil {
		return err
	}
	state := r.initState(ctx, c)
	if state == done {
		r.record(PhaseResult{Phase: "init", Host: h.Name, Detail: "already initialised", Duration: time.Since(t0)})
		r.o.Logf("  %-12s unchanged already initialised", h.Name)
		return nil
	}
	key, err := randomHex(certKeyBytes)
	if err != nil {
		return err
	}
	cfg, err := r.initConfig(h, r.facts[h.Name], key, state == partial)
	if err != nil {
		return err
	}
	cmd, detail := "kubeadm init --config "+initConfigFile+" --upload-certs --skip-token-print --skip-certificate-key-print", "kubeadm init"
	if state == partial {
		// What the interrupted init left (manifests, ports in use) fails
		// kubeadm's preflight (ignored through the config); everything
		// else it reuses.
		detail = "kubeadm init, resumed over what an interrupted one left"
	}
	if err := r.kubeadm(ctx, c, initConfigFile, cfg, cmd); err != nil {
		return fmt.Errorf("%s: %w", h.Name, err)
	}
	if err := r.writeStamp(ctx, c, initDone, "kubeadm init"); err != nil {
		return err
	}
	r.certificateKey = key
	r.record(PhaseResult{Phase: "init", Host: h.Name, Changed: true, Detail: detail, Duration: time.Since(t0)})
	r.o.Logf("  %-12s changed   %s (%s)", h.Name, detail, time.Since(t0).Round(time.Millisecond))
	return nil
}

// progress of kubeadm init or join on a host.
type progress int

const (
	absent  progress = iota // never ran
	partial                 // started, did not finish
	done
)

// initState: done once init's last phases are visible in the cluster (the
// cluster-info ConfigMap its bootstrap-token phase writes, and CoreDNS from
// its addon phase); partial when it left files but not those.
//
// A kubeadm that bootstrap saw finish leaves a stamp (initDone): then the
// host is done whatever the API says now, so a re-run never runs init again
// on a working control plane whose API is slow or down at that moment.
func (r *run) initState(ctx context.Context, c *remote.Conn) progress {
	if r.stamp(ctx, c, initDone) != "" {
		return done
	}
	out, _ := c.Output(ctx, "ls /etc/kubernetes/manifests 2>/dev/null | grep -c . ; test -e "+adminConf+" && echo admin", true)
	if !strings.Contains(out, "admin") && strings.HasPrefix(strings.TrimSpace(out), "0") {
		return absent
	}
	if _, err := c.Output(ctx, "kubectl --kubeconfig "+adminConf+" --request-timeout=10s -n kube-public get configmap cluster-info -o name && kubectl --kubeconfig "+adminConf+" --request-timeout=10s -n kube-system get deployment coredns -o name", true); err != nil {
		return partial
	}
	// Finished by a kubeadm that an interrupted run started.
	if !r.o.DryRun {
		_ = r.writeStamp(ctx, c, initDone, "kubeadm init")
	}
	return done
}

// Stamps of a kubeadm init or join that finished.
const (
	initDone = stampDir + "/kubeadm-init.done"
	joinDone = stampDir + "/kubeadm-join.done"
)

// joinState: a worker is done once its kubelet has its own kubeconfig; a
// control plane once its etcd and API server manifests are written and its
// Node carries the control-plane label (the last thing join changes).
func (r *run) joinState(ctx context.Context, h inventory.Host, c *remote.Conn, controlPlane bool) progress {
	if r.stamp(ctx, c, joinDone) != "" {
		return done
	}
	out, _ := c.Output(ctx, "for f in "+kubeletConf+" /etc/kubernetes/manifests/etcd.yaml /etc/kubernetes/manifests/kube-apiserver.yaml /etc/kubernetes/pki/ca.crt; do test -e $f && echo $f; done; true", true)
	have := strings.Fields(out)
	switch {
	case len(have) == 0:
		return absent
	case !controlPlane && slices.Contains(have, kubeletConf):
		return done
	case !controlPlane || len(have) < 4:
		return partial
	}
	labelled, err := r.kubectlOnFirst(ctx, "get nodes -l node-role.kubernetes.io/control-plane --field-selector metadata.name="+remote.Quote(h.Name)+" -o name", nil)
	if err != nil || strings.TrimSpace(labelled) == "" {
		return partial
	}
	if !r.o.DryRun {
		_ = r.writeStamp(ctx, c, joinDone, "kubeadm join --control-plane")
	}
	return done
}

// nodeReady: the cluster has a Node of the name with Ready=True.
func (r *run) nodeReady(ctx context.Context, name string) bool {
	out, err := r.kubectlOnFirst(ctx, "get node "+remote.Quote(name)+` --ignore-not-found -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}'`, nil)
	return err == nil && strings.TrimSpace(out) == "True"
}

// waitForKubeadm waits while a kubeadm that an earlier, interrupted run
// started still runs on the host.
func (r *run) waitForKubeadm(ctx context.Context, c *remote.Conn) error {
	deadline := time.Now().Add(joinWaitTimeout)
	for said := false; ; said = true {
		out, err := c.Output(ctx, "pgrep -x kubeadm >/dev/null && echo running; true", true)
		if err != nil {
			return err
		}
		if strings.TrimSpace(out) != "running" {
			// No kubeadm runs: a config file left behind (it holds a token
			// or the certificate key) is stale.
			_, err := c.Output(ctx, "rm -f "+kubeadmDir+"/*", true)
			return err
		}
		if !said {
			r.o.Logf("  %-12s waiting   for the kubeadm an interrupted run started (its output: %s)", c.Target.Name, kubeadmLogFile)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: a kubeadm started earlier is still running after %s (see %s)", c.Target.Name, joinWaitTimeout, kubeadmLogFile)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(2 * time.Second):
		}
	}
}

// joinControlPlanes joins the other control planes one at a time (etcd adds
// one member at a time), then the workers in parallel.
func (r *run) joinControlPlanes(ctx context.Context) error {
	for _, h := range r.c.ControlPlanes()[1:] {
		if err := r.join(ctx, h, true); err != nil {
			return err
		}
	}
	return nil
}

func (r *run) joinWorkers(ctx context.Context) error {
	err := r.onEveryHost("join-workers", func(ctx context.Context, h inventory.Host, c *remote.Conn, f *facts.Facts) (bool, string, error) {
		if h.HasRole(inventory.RoleControlPlane) {
			return false, "a control plane", nil
		}
		return r.joinIfNeeded(ctx, h, false)
	})(ctx)
	if err != nil {
		return err
	}
	r.deleteRunTokens(ctx)
	return nil
}

// deleteRunTokens: every host has joined, so the bootstrap tokens that
// bootstrap made (this run's, and any an interrupted run left) have no use
// left.
func (r *run) deleteRunTokens(ctx context.Context) {
	cs, err := r.kube(ctx)
	if err == nil {
		_, err = deleteTokens(ctx, cs, tokenDescription)
	}
	if err != nil {
		r.o.Logf("  warning: could not delete the bootstrap tokens (they expire in %s): %v", tokenTTL, err)
	}
}

func (r *run) join(ctx context.Context, h inventory.Host, controlPlane bool) error {
	t0 := time.Now()
	changed, detail, err := r.joinIfNeeded(ctx, h, controlPlane)
	if err != nil {
		return err
	}
	state := "unchanged"
	if changed {
		state = "changed"
	}
	r.record(PhaseResult{Phase: "join-control-planes", Host: h.Name, Changed: changed, Detail: detail, Duration: time.Since(t0)})
	r.o.Logf("  %-12s %-9s %s (%s)", h.Name, state, detail, time.Since(t0).Round(time.Millisecond))
	return nil
}

// joinIfNeeded joins h unless it has joined; a join an interrupted run left
// running is waited for, one that died half-way is finished.
func (r *run) joinIfNeeded(ctx context.Context, h inventory.Host, controlPlane bool) (bool, string, error) {
	c := r.fleet.Conns[h.Name]
	if err := r.waitForKubeadm(ctx, c); err != nil {
		return false, "", err
	}
	cmd, detail, resume := "kubeadm join --config "+joinConfigFile, "kubeadm join", false
	if controlPlane {
		detail += " --control-plane"
	}
	switch r.joinState(ctx, h, c, controlPlane) {
	case done:
		return false, "already a node", nil
	case partial:
		// Join again over what the interrupted one left: kubeadm reuses
		// the certificates and kubeconfigs it finds, and its etcd-join
		// finds the member it added (a learner until promoted) and goes
		// on. Its preflight objects to the files and ports in use (ignored
		// through the config), and
		// check-etcd to that unpromoted learner; kubelet-start refuses a
		// Node of the name that is Ready already. Once the kubelet has its
		// own kubeconfig (its TLS bootstrap, the end of kubelet-start) it
		// has nothing left to do there; the Node may turn Ready any moment.
		detail += ", resumed over what an interrupted one left"
		skip := []string{"check-etcd"}
		_, kerr := c.Output(ctx, "test -e "+kubeletConf+" && systemctl start kubelet", true)
		if kerr == nil || r.nodeReady(ctx, h.Name) {
			skip = append(skip, "kubelet-start")
		}
		cmd += " --skip-phases=" + strings.Join(skip, ",")
		resume = true
	}
	creds, err := r.joinCredentials(ctx, controlPlane)
	if err != nil {
		return false, "", err
	}
	cfg, err := r.joinConfig(h, r.facts[h.Name], creds, controlPlane, resume)
	if err != nil {
		return false, "", err
	}
	if err := r.kubeadm(ctx, c, joinConfigFile, cfg, cmd); err != nil {
		return true, "", fmt.Errorf("%s: %w", h.Name, err)
	}
	return true, detail, r.writeStamp(ctx, c, joinDone, detail)
}

// joinCreds are what a join needs from the cluster.
type joinCreds struct {
	token, caHash, certKey string
}

// joinCredentials makes a short-lived bootstrap token through the API (the
// CA hash comes with it, from cluster-info), and for a control plane a
// certificate key with the certificates uploaded again on a control plane
// that runs (the 2-hour window of `--upload-certs` never bites; the key of an
// upload that bootstrap did not make is unknown, so a new run always uploads).
func (r *run) joinCredentials(ctx context.Context, controlPlane bool) (joinCreds, error) {
	r.credsMu.Lock()
	defer r.credsMu.Unlock()
	if r.creds.token == "" {
		cs, err := r.kube(ctx)
		if err != nil {
			return joinCreds{}, err
		}
		t, err := createToken(ctx, cs, tokenTTL, tokenDescription, time.Minute)
		if err != nil {
			return joinCreds{}, err
		}
		r.creds.token, r.creds.caHash = t.Value, t.CAHash
	}
	if controlPlane && r.creds.certKey == "" {
		key := r.certificateKey
		if key == "" {
			var err error
			if key, err = r.uploadCerts(ctx); err != nil {
				return joinCreds{}, err
			}
		}
		r.creds.certKey = key
	}
	return r.creds, nil
}

// uploadCerts: `kubeadm init phase upload-certs` on the first control plane
// with a new certificate key, which goes in a config file (0600), not on the
// command line. The kubeadm-certs Secret it writes lives 2 hours.
func (r *run) uploadCerts(ctx context.Context) (string, error) {
	key, err := randomHex(certKeyBytes)
	if err != nil {
		return "", err
	}
	first := r.fleet.Conns[r.first]
	cfg := fmt.Sprintf("apiVersion: %s\nkind: InitConfiguration\ncertificateKey: %s\n", kubeadmAPI, key)
	if err := first.WriteFile(ctx, initConfigFile, strings.NewReader(cfg), 0o600, true); err != nil {
		return "", err
	}
	_, err = first.Output(ctx, "kubeadm init phase upload-certs --upload-certs --config "+initConfigFile+" --kubeconfig "+adminConf+" >/dev/null; rc=$?; rm -f "+initConfigFile+"; exit $rc", true)
	if err != nil {
		return "", fmt.Errorf("upload-certs on %s: %w", r.first, err)
	}
	return key, nil
}

// kube is a client of the cluster with the admin kubeconfig of the first
// control plane (it names the endpoint), read once over SSH.
func (r *run) kube(ctx context.Context) (kubernetes.Interface, error) {
	r.kubeMu.Lock()
	defer r.kubeMu.Unlock()
	if r.kubeClient != nil {
		return r.kubeClient, nil
	}
	b := r.adminConf
	if b == nil {
		var err error
		if b, err = r.fleet.Conns[r.first].ReadFile(ctx, adminConf, true); err != nil {
			return nil, err
		}
	}
	cfg, err := clientcmd.RESTConfigFromKubeConfig(b)
	if err != nil {
		return nil, fmt.Errorf("%s on %s: %w", adminConf, r.first, err)
	}
	cfg.Timeout = 30 * time.Second
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	r.kubeClient, r.kubeConfig = cs, cfg
	if r.adminConf == nil {
		r.adminConf = b // verify's, in a join (bootstrap's kubeconfig phase sets it)
	}
	return cs, nil
}

// caCertHash is kubeadm's discovery hash: sha256 of the CA's public key info.
func caCertHash(pemBytes []byte) (string, error) {
	block, _ := pem.Decode(pemBytes)
	if block == nil {
		return "", fmt.Errorf("ca.crt is not PEM")
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
	return "sha256:" + hex.EncodeToString(sum[:]), nil
}

// kubeadm writes the config (0600), runs the command with its output in a
// root-only log on the host (kubeadm is told not to print the token or the
// certificate key), and removes the config whatever happened.
func (r *run) kubeadm(ctx context.Context, c *remote.Conn, file, cfg, cmd string) error {
	if err := c.WriteFile(ctx, file, strings.NewReader(cfg), 0o600, true); err != nil {
		return err
	}
	// The log is made 0600 first; kubeadm itself keeps the default umask
	// (the files it writes have their own modes).
	script := fmt.Sprintf("(umask 077; : >%[2]s); { %[1]s; } >>%[2]s 2>&1; rc=$?; rm -f %[3]s; if [ $rc -ne 0 ]; then tail -n 25 %[2]s >&2; fi; exit $rc", cmd, kubeadmLogFile, file)
	ctx, cancel := context.WithTimeout(ctx, joinWaitTimeout)
	defer cancel()
	_, err := c.Run(ctx, remote.Cmd{Script: script, Sudo: true})
	var ee *remote.ExitError
	if errors.As(err, &ee) {
		return fmt.Errorf("%s failed: %s (the whole output: %s on %s)", strings.Fields(cmd)[0]+" "+strings.Fields(cmd)[1], kubeadmReason(ee.Stderr), kubeadmLogFile, c.Target.Name)
	}
	return err
}

// kubeadmReason picks the line of kubeadm's output that says what failed.
func kubeadmReason(out string) string {
	lines := strings.Split(strings.TrimSpace(out), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		l := strings.TrimSpace(lines[i])
		if strings.Contains(strings.ToLower(l), "error") && !strings.Contains(l, "To see the stack trace") {
			return l
		}
	}
	if len(lines) > 0 {
		return strings.TrimSpace(lines[len(lines)-1])
	}
	return "no output"
}

func exists(ctx context.Context, c *remote.Conn, path string) bool {
	_, err := c.Output(ctx, "test -e "+remote.Quote(path), true)
	return err == nil
}

func randomHex(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return hex.EncodeToString(b), nil
}

// kubeadmTimeouts double kubeadm's defaults for the waits a busy or small
// machine overruns (a joining etcd member that must start and catch up
// within 2 minutes, the kubelet's first start, TLS bootstrap): a slow host
// then takes longer instead of failing half-way.
var kubeadmTimeouts = map[string]any{
	"controlPlaneComponentHealthCheck": "8m0s",
	"kubeletHealthCheck":               "8m0s",
	"etcdAPICall":                      "4m0s",
	"tlsBootstrap":                     "10m0s",
	"discovery":                        "10m0s",
}

// nodeRegistration is shared by init and join.
// With resume, kubeadm's preflight errors are all ignored: what an
// interrupted init or join left (files, ports in use) fails them.
func (r *run) nodeRegistration(h inventory.Host, f *facts.Facts, controlPlane, resume bool) map[string]any {
	var ignore []string
	if resume {
		ignore = []string{"all"}
	} else if !f.CgroupV2 {
		ignore = append(ignore, "SystemVerification") // cgroup v1: see failCgroupV1 below
	}
	nr := map[string]any{"name": h.Name, "criSocket": criSocket}
	if len(ignore) > 0 {
		nr["ignorePreflightErrors"] = ignore
	}
	if controlPlane && !h.HasRole(inventory.RoleWorker) {
		nr["taints"] = []any{map[string]any{"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}}
	} else if controlPlane {
		nr["taints"] = []any{}
	}
	return nr
}

// initConfig renders kubeadm's InitConfiguration, ClusterConfiguration,
// KubeletConfiguration and KubeProxyConfiguration, with the cluster file's
// passthrough settings merged over the ones it models.
func (r *run) initConfig(h inventory.Host, f *facts.Facts, certKey string, resume bool) (string, error) {
	k := r.c.Spec.Kubernetes
	n := r.c.Spec.Network
	initCfg := map[string]any{
		"apiVersion":     kubeadmAPI,
		"kind":           "InitConfiguration",
		"certificateKey": certKey,
		// kubeadm's own token lives 24 h by default; joins make their own.
		"bootstrapTokens":  []any{map[string]any{"ttl": "1h0m0s", "description": "kubeadm init (joins use their own token)"}},
		"localAPIEndpoint": map[string]any{"advertiseAddress": h.InternalAddress, "bindPort": 6443},
		"nodeRegistration": r.nodeRegistration(h, f, true, resume),
		"timeouts":         kubeadmTimeouts,
	}
	sans := []string{}
	if e := r.c.Spec.ControlPlaneEndpoint; e.VIP != "" {
		sans = append(sans, e.VIP)
	} else {
		host, _, _ := strings.Cut(e.LoadBalancer, ":")
		sans = append(sans, host)
	}
	for _, cp := range r.c.ControlPlanes() {
		sans = append(sans, cp.InternalAddress, cp.Name)
		if cp.Address != cp.InternalAddress {
			sans = append(sans, cp.Address)
		}
	}
	sans = append(sans, k.CertSANs...)
	cluster := map[string]any{
		"apiVersion":           kubeadmAPI,
		"kind":                 "ClusterConfiguration",
		"kubernetesVersion":    k.Version,
		"controlPlaneEndpoint": r.c.Endpoint(),
		"imageRepository":      k.ImageRepository,
		"clusterName":          r.c.Metadata.Name,
		"networking":           map[string]any{"podSubnet": n.PodSubnet, "serviceSubnet": n.ServiceSubnet, "dnsDomain": n.DNSDomain},
		"apiServer":            map[string]any{"certSANs": sans},
	}
	maps.Copy(cluster, k.Kubeadm)
	kubelet := map[string]any{
		"apiVersion":   "kubelet.config.k8s.io/v1beta1",
		"kind":         "KubeletConfiguration",
		"cgroupDriver": "systemd",
	}
	if !f.CgroupV2 {
		// kubelet 1.35 and later refuse cgroup v1 unless told otherwise.
		kubelet["failCgroupV1"] = false
	}
	if wantsServingCerts(r.c) {
		// metrics-server verifies the kubelets' serving certificates: they
		// ask the cluster CA for one (approved in nodes-ready).
		kubelet["serverTLSBootstrap"] = true
	}
	maps.Copy(kubelet, k.Kubelet)
	proxy := map[string]any{
		"apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
		"kind":       "KubeProxyConfiguration",
		"mode":       n.KubeProxyMode,
	}
	maps.Copy(proxy, k.KubeProxy)
	return yamlDocs(initCfg, cluster, kubelet, proxy)
}

func (r *run) joinConfig(h inventory.Host, f *facts.Facts, creds joinCreds, controlPlane, resume bool) (string, error) {
	j := map[string]any{
		"apiVersion": kubeadmAPI,
		"kind":       "JoinConfiguration",
		"discovery": map[string]any{"bootstrapToken": map[string]any{
			"token":             creds.token,
			"apiServerEndpoint": r.c.Endpoint(),
			"caCertHashes":      []string{creds.caHash},
		}},
		"nodeRegistration": r.nodeRegistration(h, f, controlPlane, resume),
		"timeouts":         kubeadmTimeouts,
	}
	if controlPlane {
		j["controlPlane"] = map[string]any{
			"localAPIEndpoint": map[string]any{"advertiseAddress": h.InternalAddress, "bindPort": 6443},
			"certificateKey":   creds.certKey,
		}
	}
	return yamlDocs(j)
}

func yamlDocs(docs ...map[string]any) (string, error) {
	var parts []string
	for _, d := range docs {
		b, err := yaml.Marshal(d)
		if err != nil {
			return "", err
		}
		parts = append(parts, string(b))
	}
	return "# Written by kubectl hacluster bootstrap; removed after use.\n" + strings.Join(parts, "---\n"), nil
}

// kubeconfig copies admin.conf from the first control plane into the state
// directory (0600). It already names the endpoint (the VIP), as kubeadm
// writes it with controlPlaneEndpoint. With Options.MergeKubeconfig it is
// also merged into that file as context hacluster-<name> (pkg/kubeconfig:
// backup, atomic write).
func (r *run) kubeconfig(ctx context.Context) error {
	t0 := time.Now()
	b, err := r.fleet.Conns[r.first].ReadFile(ctx, adminConf, true)
	if err != nil {
		return err
	}
	p := filepath.Join(r.stateDir(), "admin.conf")
	if err := os.MkdirAll(r.stateDir(), 0o700); err != nil {
		return err
	}
	old, _ := os.ReadFile(p)
	changed := string(old) != string(b)
	if changed {
		if err := fileutil.WriteAtomic(p, b, 0o600); err != nil {
			return err
		}
	}
	if r.o.ClusterFile != "" {
		abs, err := filepath.Abs(r.o.ClusterFile)
		if err != nil {
			return err
		}
		ptr := filepath.Join(r.stateDir(), ClusterFilePointer)
		if have, _ := os.ReadFile(ptr); string(have) != abs+"\n" {
			if err := fileutil.WriteAtomic(ptr, []byte(abs+"\n"), 0o600); err != nil {
				return err
			}
			changed = true
		}
	}
	r.adminConf = b
	r.res.Kubeconfig = p
	r.record(PhaseResult{Phase: "kubeconfig", Changed: changed, Detail: p, Duration: time.Since(t0)})
	if r.o.MergeKubeconfig == "" {
		return nil
	}
	t0 = time.Now()
	m, err := kubeconfig.Merge(r.o.MergeKubeconfig, b, r.c.ContextName())
	if err != nil {
		return err
	}
	r.res.Merged = m
	detail := "context " + m.Context + " in " + m.Path
	switch {
	case !m.Changed:
		detail += ", already there"
	case m.Backup != "":
		detail += fmt.Sprintf(" (was %q; backup %s)", m.Previous, m.Backup)
	}
	r.record(PhaseResult{Phase: "kubeconfig", Changed: m.Changed, Detail: detail, Duration: time.Since(t0)})
	r.o.Logf("  %s", detail)
	return nil
}
