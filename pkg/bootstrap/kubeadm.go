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
	"strings"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/hacluster/hacluster/pkg/facts"
	"github.com/hacluster/hacluster/pkg/fileutil"
	"github.com/hacluster/hacluster/pkg/inventory"
	"github.com/hacluster/hacluster/pkg/remote"
)

// kubeadm's configuration files on the hosts. They hold the certificate key
// or a bootstrap token, so they are 0600 and removed after use: secrets go to
// kubeadm in files, never on its command line.
const (
	kubeadmDir      = "/etc/kubernetes/hacluster"
	initConfigFile  = kubeadmDir + "/kubeadm-init.yaml"
	joinConfigFile  = kubeadmDir + "/kubeadm-join.yaml"
	adminConf       = "/etc/kubernetes/admin.conf"
	kubeletConf     = "/etc/kubernetes/kubelet.conf"
	kubeadmAPI      = "kubeadm.k8s.io/v1beta4"
	criSocket       = "unix:///run/containerd/containerd.sock"
	kubeadmLogFile  = "/var/log/hacluster-kubeadm.log"
	tokenTTL        = "1h"
	certKeyBytes    = 32
	joinWaitTimeout = 10 * time.Minute
)

// initFirst: `kubeadm init` on the first control plane, unless it already is
// one (its admin.conf exists).
func (r *run) initFirst(ctx context.Context) error {
	h := r.c.ControlPlanes()[0]
	c := r.fleet.Conns[h.Name]
	t0 := time.Now()
	if exists(ctx, c, adminConf) {
		r.record(PhaseResult{Phase: "init", Host: h.Name, Detail: "already initialised", Duration: time.Since(t0)})
		r.o.Logf("  %-12s unchanged already initialised", h.Name)
		return nil
	}
	key, err := randomHex(certKeyBytes)
	if err != nil {
		return err
	}
	cfg, err := r.initConfig(h, r.facts[h.Name], key)
	if err != nil {
		return err
	}
	if err := r.kubeadm(ctx, c, initConfigFile, cfg, "kubeadm init --config "+initConfigFile+" --upload-certs --skip-token-print --skip-certificate-key-print"); err != nil {
		return fmt.Errorf("%s: %w", h.Name, err)
	}
	r.certificateKey = key
	r.record(PhaseResult{Phase: "init", Host: h.Name, Changed: true, Detail: "kubeadm init", Duration: time.Since(t0)})
	r.o.Logf("  %-12s changed   kubeadm init (%s)", h.Name, time.Since(t0).Round(time.Millisecond))
	return nil
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
		if exists(ctx, c, kubeletConf) {
			return false, "already a node", nil
		}
		return true, "kubeadm join", r.joinHost(ctx, h, false)
	})(ctx)
	if err != nil {
		return err
	}
	// Every host has joined: the token this run made has no use left.
	if id, _, ok := strings.Cut(r.creds.token, "."); ok {
		if _, err := r.fleet.Conns[r.c.ControlPlanes()[0].Name].Output(ctx, "kubeadm token delete "+id+" --kubeconfig "+adminConf+" >/dev/null", true); err != nil {
			r.o.Logf("  warning: could not delete bootstrap token %s (it expires in %s): %v", id, tokenTTL, err)
		}
	}
	return nil
}

func (r *run) join(ctx context.Context, h inventory.Host, controlPlane bool) error {
	c := r.fleet.Conns[h.Name]
	t0 := time.Now()
	if exists(ctx, c, kubeletConf) {
		r.record(PhaseResult{Phase: "join-control-planes", Host: h.Name, Detail: "already a node", Duration: time.Since(t0)})
		r.o.Logf("  %-12s unchanged already a node", h.Name)
		return nil
	}
	if err := r.joinHost(ctx, h, controlPlane); err != nil {
		return err
	}
	r.record(PhaseResult{Phase: "join-control-planes", Host: h.Name, Changed: true, Detail: "kubeadm join --control-plane", Duration: time.Since(t0)})
	r.o.Logf("  %-12s changed   kubeadm join --control-plane (%s)", h.Name, time.Since(t0).Round(time.Millisecond))
	return nil
}

func (r *run) joinHost(ctx context.Context, h inventory.Host, controlPlane bool) error {
	creds, err := r.joinCredentials(ctx, controlPlane)
	if err != nil {
		return err
	}
	cfg, err := r.joinConfig(h, r.facts[h.Name], creds, controlPlane)
	if err != nil {
		return err
	}
	if err := r.kubeadm(ctx, r.fleet.Conns[h.Name], joinConfigFile, cfg, "kubeadm join --config "+joinConfigFile); err != nil {
		return fmt.Errorf("%s: %w", h.Name, err)
	}
	return nil
}

// joinCreds are what a join needs from the first control plane.
type joinCreds struct {
	token, caHash, certKey string
}

// joinCredentials makes a short-lived bootstrap token on the first control
// plane (it comes back on the command's stdout, not through an argv), the CA
// hash from the CA certificate, and for a control plane a certificate key
// with the certificates uploaded again (the 2-hour window of
// `--upload-certs` never bites).
func (r *run) joinCredentials(ctx context.Context, controlPlane bool) (joinCreds, error) {
	r.credsMu.Lock()
	defer r.credsMu.Unlock()
	first := r.fleet.Conns[r.c.ControlPlanes()[0].Name]
	if r.creds.token == "" {
		out, err := first.Output(ctx, "kubeadm token create --ttl "+tokenTTL+" --description 'kubectl hacluster bootstrap' --kubeconfig "+adminConf, true)
		if err != nil {
			return joinCreds{}, fmt.Errorf("bootstrap token: %w", err)
		}
		r.creds.token = strings.TrimSpace(out)
		ca, err := first.ReadFile(ctx, "/etc/kubernetes/pki/ca.crt", true)
		if err != nil {
			return joinCreds{}, err
		}
		if r.creds.caHash, err = caCertHash(ca); err != nil {
			return joinCreds{}, err
		}
	}
	if controlPlane && r.creds.certKey == "" {
		key := r.certificateKey
		if key == "" {
			var err error
			if key, err = randomHex(certKeyBytes); err != nil {
				return joinCreds{}, err
			}
			// The key goes in a config file (0600), not on the command line.
			cfg := fmt.Sprintf("apiVersion: %s\nkind: InitConfiguration\ncertificateKey: %s\n", kubeadmAPI, key)
			if err := first.WriteFile(ctx, initConfigFile, strings.NewReader(cfg), 0o600, true); err != nil {
				return joinCreds{}, err
			}
			_, err = first.Output(ctx, "kubeadm init phase upload-certs --upload-certs --config "+initConfigFile+" --kubeconfig "+adminConf+" >/dev/null; rc=$?; rm -f "+initConfigFile+"; exit $rc", true)
			if err != nil {
				return joinCreds{}, fmt.Errorf("upload-certs: %w", err)
			}
		}
		r.creds.certKey = key
	}
	return r.creds, nil
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
	script := fmt.Sprintf("(umask 077; : >%[2]s); %[1]s >>%[2]s 2>&1; rc=$?; rm -f %[3]s; if [ $rc -ne 0 ]; then tail -n 25 %[2]s >&2; fi; exit $rc", cmd, kubeadmLogFile, file)
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

// nodeRegistration is shared by init and join.
func (r *run) nodeRegistration(h inventory.Host, f *facts.Facts, controlPlane bool) map[string]any {
	var ignore []string
	if !f.CgroupV2 {
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
func (r *run) initConfig(h inventory.Host, f *facts.Facts, certKey string) (string, error) {
	k := r.c.Spec.Kubernetes
	n := r.c.Spec.Network
	initCfg := map[string]any{
		"apiVersion":     kubeadmAPI,
		"kind":           "InitConfiguration",
		"certificateKey": certKey,
		// kubeadm's own token lives 24 h by default; joins make their own.
		"bootstrapTokens":  []any{map[string]any{"ttl": "1h0m0s", "description": "kubeadm init (joins use their own token)"}},
		"localAPIEndpoint": map[string]any{"advertiseAddress": h.InternalAddress, "bindPort": 6443},
		"nodeRegistration": r.nodeRegistration(h, f, true),
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
	maps.Copy(kubelet, k.Kubelet)
	proxy := map[string]any{
		"apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
		"kind":       "KubeProxyConfiguration",
		"mode":       n.KubeProxyMode,
	}
	maps.Copy(proxy, k.KubeProxy)
	return yamlDocs(initCfg, cluster, kubelet, proxy)
}

func (r *run) joinConfig(h inventory.Host, f *facts.Facts, creds joinCreds, controlPlane bool) (string, error) {
	j := map[string]any{
		"apiVersion": kubeadmAPI,
		"kind":       "JoinConfiguration",
		"discovery": map[string]any{"bootstrapToken": map[string]any{
			"token":             creds.token,
			"apiServerEndpoint": r.c.Endpoint(),
			"caCertHashes":      []string{creds.caHash},
		}},
		"nodeRegistration": r.nodeRegistration(h, f, controlPlane),
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
// writes it with controlPlaneEndpoint.
func (r *run) kubeconfig(ctx context.Context) error {
	b, err := r.fleet.Conns[r.c.ControlPlanes()[0].Name].ReadFile(ctx, adminConf, true)
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
	r.res.Kubeconfig = p
	r.record(PhaseResult{Phase: "kubeconfig", Changed: changed, Detail: p})
	return nil
}
