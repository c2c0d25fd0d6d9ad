package testbed

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/hacluster/hacluster/pkg/fileutil"
)

// Options chooses what Start runs.
type Options struct {
	// Components also runs kube-controller-manager and kube-scheduler (leader
	// election on, so they hold the kube-system leader Leases) and kwok, which
	// makes Nodes it manages Ready and their Pods Running.
	Components bool
	// Dir is the state directory (certs, etcd data, logs, pid files, kubeconfigs).
	// Empty: a fresh temporary directory that Stop removes.
	Dir string
	// VIPHost is the loopback address of the VIP forwarder; default 127.0.0.100.
	VIPHost string
	// Logf, when set, receives progress lines.
	Logf func(format string, args ...any)
}

// DefaultVIPHost is where the bed's VIP (the HAProxy/keepalived stand-in) listens.
const DefaultVIPHost = "127.0.0.100"

// Bed is a running control plane.
type Bed struct {
	Kubeconfig string       // admin kubeconfig file (client certificate, system:masters)
	Config     *rest.Config // the same as a rest.Config
	Client     kubernetes.Interface
	Dynamic    dynamic.Interface
	URL        string // https://127.0.0.1:<port>, the apiserver itself
	VIP        string // host:port of the TCP forwarder to the apiserver (the HA endpoint)
	Bin        string // directory of the Kubernetes binaries
	Dir        string // state directory
	Version    string // Kubernetes version of the binaries

	opts        Options
	tempDir     bool
	pki         *pki
	kubeletPort int // kwok's kubelet API port, the same on every simulated node address

	mu      sync.Mutex
	procs   []*proc
	fwds    []*forwarder
	nodeFwd map[string]*forwarder // node IP -> kubelet port forwarder
	stopped bool
}

// Start runs a control plane for the test and stops it (every process, by
// PID and process group) in t.Cleanup. Without binaries it fails when env CI
// is set and skips otherwise.
func Start(t testing.TB, opts Options) *Bed {
	t.Helper()
	if _, err := BinDir(); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("testbed: %v", err)
		}
		t.Skipf("testbed: %v", err)
	}
	if opts.Logf == nil && testing.Verbose() {
		opts.Logf = t.Logf
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	b, err := New(ctx, opts)
	if err != nil {
		t.Fatalf("testbed: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			b.logTails(t.Logf, 15)
		}
		b.Stop()
	})
	return b
}

// New starts a control plane; the caller must call Stop. For a bed shared by
// a whole test package, call it from TestMain.
func New(ctx context.Context, opts Options) (b *Bed, err error) {
	bin, err := BinDir()
	if err != nil {
		return nil, err
	}
	if opts.VIPHost == "" {
		opts.VIPHost = DefaultVIPHost
	}
	if opts.Logf == nil {
		opts.Logf = func(string, ...any) {}
	}
	b = &Bed{Bin: bin, Version: Version(), opts: opts, Dir: opts.Dir, nodeFwd: map[string]*forwarder{}}
	if b.Dir == "" {
		if b.Dir, err = os.MkdirTemp("", "hacluster-testbed-"); err != nil {
			return nil, err
		}
		b.tempDir = true
	} else if err := os.MkdirAll(b.Dir, 0o755); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			b.Stop()
		}
	}()
	start := time.Now()
	if err := b.startControlPlane(ctx); err != nil {
		return nil, err
	}
	opts.Logf("testbed: kube-apiserver %s ready at %s after %s (VIP %s)", b.Version, b.URL, time.Since(start).Round(time.Millisecond), b.VIP)
	if opts.Components {
		if err := b.startComponents(ctx); err != nil {
			return nil, err
		}
		opts.Logf("testbed: controller-manager, scheduler and kwok up after %s", time.Since(start).Round(time.Millisecond))
	}
	return b, nil
}

func (b *Bed) startControlPlane(ctx context.Context) error {
	p, err := newPKI(filepath.Join(b.Dir, "pki"))
	if err != nil {
		return fmt.Errorf("pki: %w", err)
	}
	b.pki = p
	vipIP := net.ParseIP(b.opts.VIPHost)
	if vipIP == nil {
		return fmt.Errorf("VIPHost %q is not an IP address", b.opts.VIPHost)
	}
	if _, _, err := p.issue(leaf{name: "apiserver", cn: "kube-apiserver", server: true,
		ips: []net.IP{net.IPv4(127, 0, 0, 1), vipIP, net.IPv4(10, 96, 0, 1)},
		dns: []string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"}}); err != nil {
		return err
	}
	if _, _, err := p.issue(leaf{name: "apiserver-kubelet-client", cn: "kube-apiserver-kubelet-client", orgs: []string{"kubeadm:cluster-admins"}, client: true}); err != nil {
		return err
	}
	if err := p.serviceAccountKeys(); err != nil {
		return err
	}

	ports, err := freePorts(3)
	if err != nil {
		return err
	}
	clientURL := "http://127.0.0.1:" + strconv.Itoa(ports[0])
	peerURL := "http://127.0.0.1:" + strconv.Itoa(ports[1])
	apiPort := ports[2]
	b.opts.Logf("testbed: starting etcd on %s", clientURL)
	etcd, err := b.run("etcd", "--name", "testbed", "--data-dir", filepath.Join(b.Dir, "etcd"),
		"--listen-client-urls", clientURL, "--advertise-client-urls", clientURL,
		"--listen-peer-urls", peerURL, "--initial-advertise-peer-urls", peerURL,
		"--initial-cluster", "testbed="+peerURL, "--unsafe-no-fsync", "--log-level", "warn",
		"--quota-backend-bytes", strconv.Itoa(2<<30))
	if err != nil {
		return err
	}
	hc := &http.Client{Timeout: 2 * time.Second}
	if err := poll(ctx, 30*time.Second, etcd, func() bool {
		resp, err := hc.Get(clientURL + "/health")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}); err != nil {
		return fmt.Errorf("etcd: %w", err)
	}

	b.opts.Logf("testbed: starting kube-apiserver on 127.0.0.1:%d", apiPort)
	api, err := b.run("kube-apiserver",
		"--advertise-address", "127.0.0.1", "--bind-address", "127.0.0.1", "--secure-port", strconv.Itoa(apiPort),
		"--etcd-servers", clientURL,
		"--client-ca-file", p.path("ca.crt"),
		"--tls-cert-file", p.path("apiserver.crt"), "--tls-private-key-file", p.path("apiserver.key"),
		"--kubelet-client-certificate", p.path("apiserver-kubelet-client.crt"),
		"--kubelet-client-key", p.path("apiserver-kubelet-client.key"),
		"--kubelet-preferred-address-types", "InternalIP,ExternalIP,Hostname",
		"--service-account-issuer", "https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file", p.path("sa.pub"), "--service-account-signing-key-file", p.path("sa.key"),
		"--service-cluster-ip-range", "10.96.0.0/12",
		"--authorization-mode", "Node,RBAC", "--enable-admission-plugins", "NodeRestriction",
		"--enable-bootstrap-token-auth=true", "--allow-privileged=true",
		"--endpoint-reconciler-type", "none", "--profiling=false",
		"--cert-dir", filepath.Join(b.Dir, "apiserver-certs"))
	if err != nil {
		return err
	}
	b.URL = "https://127.0.0.1:" + strconv.Itoa(apiPort)

	vip, err := forward(net.JoinHostPort(b.opts.VIPHost, "0"), "127.0.0.1:"+strconv.Itoa(apiPort))
	if err != nil {
		return fmt.Errorf("VIP forwarder on %s: %w", b.opts.VIPHost, err)
	}
	b.addForwarder(vip)
	b.VIP = vip.Addr()

	certPEM, keyPEM, err := p.issue(leaf{name: "admin", cn: "kubernetes-admin", orgs: []string{"system:masters"}, client: true})
	if err != nil {
		return err
	}
	b.Kubeconfig = filepath.Join(b.Dir, "admin.conf")
	if err := b.writeKubeconfig(b.Kubeconfig, b.URL, "kubernetes-admin", certPEM, keyPEM); err != nil {
		return err
	}
	if b.Config, err = clientcmd.BuildConfigFromFlags("", b.Kubeconfig); err != nil {
		return err
	}
	b.Config.QPS, b.Config.Burst = 200, 400
	if b.Client, err = kubernetes.NewForConfig(b.Config); err != nil {
		return err
	}
	if b.Dynamic, err = dynamic.NewForConfig(b.Config); err != nil {
		return err
	}
	if err := poll(ctx, 90*time.Second, api, func() bool {
		rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		body, err := b.Client.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(rctx)
		return err == nil && string(body) == "ok"
	}); err != nil {
		return fmt.Errorf("kube-apiserver /readyz: %w", err)
	}
	return nil
}

func (b *Bed) startComponents(ctx context.Context) error {
	p := b.pki
	kc := func(name, cn string, orgs ...string) (string, error) {
		certPEM, keyPEM, err := p.issue(leaf{name: name, cn: cn, orgs: orgs, client: true})
		if err != nil {
			return "", err
		}
		path := filepath.Join(b.Dir, name+".conf")
		return path, b.writeKubeconfig(path, b.URL, cn, certPEM, keyPEM)
	}
	// kubeadm runs the controllers with one ServiceAccount token each
	// (--use-service-account-credentials); requesting those tokens one by one
	// costs ~5 s per start, so here the controller-manager is a cluster admin.
	kcmConf, err := kc("controller-manager", "system:kube-controller-manager", "system:masters")
	if err != nil {
		return err
	}
	schedConf, err := kc("scheduler", "system:kube-scheduler")
	if err != nil {
		return err
	}
	kwokConf, err := kc("kwok", "kwok-controller", "system:masters")
	if err != nil {
		return err
	}
	if err := b.installKwokCRDs(ctx); err != nil {
		return err
	}

	kcm, err := b.run("kube-controller-manager",
		"--kubeconfig", kcmConf, "--authentication-kubeconfig", kcmConf, "--authorization-kubeconfig", kcmConf,
		"--bind-address", "127.0.0.1", "--secure-port", "0",
		"--leader-elect=true", "--controllers", "*,bootstrapsigner,tokencleaner",
		"--cluster-signing-cert-file", p.path("ca.crt"), "--cluster-signing-key-file", p.path("ca.key"),
		"--root-ca-file", p.path("ca.crt"), "--service-account-private-key-file", p.path("sa.key"),
		"--use-service-account-credentials=false",
		"--allocate-node-cidrs=true", "--cluster-cidr", PodSubnet, "--service-cluster-ip-range", "10.96.0.0/12",
		"--cluster-name", "kubernetes")
	if err != nil {
		return err
	}
	sched, err := b.run("kube-scheduler",
		"--kubeconfig", schedConf, "--authentication-kubeconfig", schedConf, "--authorization-kubeconfig", schedConf,
		"--bind-address", "127.0.0.1", "--secure-port", "0", "--leader-elect=true")
	if err != nil {
		return err
	}

	// kwok serves the kubelet API (logs, exec, ...) for every node it
	// simulates; the same port on each node's address is forwarded to it.
	if _, _, err := p.issue(leaf{name: "kwok-kubelet", cn: "kwok-kubelet", server: true, ips: kubeletIPs(), dns: []string{"localhost"}}); err != nil {
		return err
	}
	ports, err := freePorts(1)
	if err != nil {
		return err
	}
	b.kubeletPort = ports[0]
	// `kubectl exec` into the etcd container of a kube-system Pod on a kwok
	// node runs the command here, looked up on ExecDir only (SetExecProgram):
	// kwok's PATH is that folder, so nothing of the host can be exec'ed.
	execConf, err := b.kwokExecConfig()
	if err != nil {
		return err
	}
	kwok, err := b.runEnv("kwok", []string{"PATH=" + b.ExecDir()}, "--kubeconfig", kwokConf,
		"--config", filepath.Join(b.Bin, "kwok-stages.yaml"), "--config", execConf,
		"--manage-all-nodes=false", "--manage-nodes-with-annotation-selector", KwokAnnotation+"=fake",
		"--node-lease-duration-seconds", "40", "--cidr", PodSubnet,
		"--node-port", strconv.Itoa(b.kubeletPort), "--server-address", "127.0.0.1:"+strconv.Itoa(b.kubeletPort),
		"--tls-cert-file", p.path("kwok-kubelet.crt"), "--tls-private-key-file", p.path("kwok-kubelet.key"),
		"--enable-crds", "Logs")
	if err != nil {
		return err
	}

	// Pods are refused until the controller-manager has made the default
	// ServiceAccounts; tests expect the leader Leases to be held.
	procs := []*proc{kcm, sched, kwok}
	return pollAll(ctx, 60*time.Second, procs, func() bool {
		for _, ns := range []string{"default", "kube-system"} {
			if _, err := b.Client.CoreV1().ServiceAccounts(ns).Get(ctx, "default", metav1.GetOptions{}); err != nil {
				return false
			}
		}
		for _, name := range []string{"kube-controller-manager", "kube-scheduler"} {
			l, err := b.Client.CoordinationV1().Leases("kube-system").Get(ctx, name, metav1.GetOptions{})
			if err != nil || l.Spec.HolderIdentity == nil || *l.Spec.HolderIdentity == "" {
				return false
			}
		}
		return true
	})
}

// kubeletIPs are the addresses kwok's serving certificate is valid for: the
// loopback and the node address ranges of the HA shape.
func kubeletIPs() []net.IP {
	ips := []net.IP{net.IPv4(127, 0, 0, 1)}
	for i := 10; i < 40; i++ {
		ips = append(ips, net.IPv4(127, 0, 0, byte(i)))
	}
	return ips
}

func (b *Bed) run(name string, args ...string) (*proc, error) {
	return b.runEnv(name, nil, args...)
}

func (b *Bed) runEnv(name string, env []string, args ...string) (*proc, error) {
	p, err := startProcEnv(b.Dir, name, filepath.Join(b.Bin, name), env, args...)
	if err != nil {
		return nil, err
	}
	b.mu.Lock()
	b.procs = append(b.procs, p)
	b.mu.Unlock()
	return p, nil
}

func (b *Bed) addForwarder(f *forwarder) {
	b.mu.Lock()
	b.fwds = append(b.fwds, f)
	b.mu.Unlock()
}

// Stop stops every process (newest first) and forwarder, and removes a
// temporary state directory. It is safe to call more than once.
func (b *Bed) Stop() {
	b.mu.Lock()
	if b.stopped {
		b.mu.Unlock()
		return
	}
	b.stopped = true
	procs, fwds := b.procs, b.fwds
	b.mu.Unlock()
	for i := len(procs) - 1; i >= 0; i-- {
		procs[i].stop(10 * time.Second)
	}
	for _, f := range fwds {
		_ = f.Close()
	}
	if b.tempDir && os.Getenv("HACLUSTER_TESTBED_KEEP") == "" {
		_ = os.RemoveAll(b.Dir)
	}
}

// PIDs returns the process IDs of the running processes by name.
func (b *Bed) PIDs() map[string]int {
	b.mu.Lock()
	defer b.mu.Unlock()
	m := map[string]int{}
	for _, p := range b.procs {
		if !p.exited() {
			m[p.name] = p.cmd.Process.Pid
		}
	}
	return m
}

// Wait blocks until one of the bed's processes exits or ctx ends, and says which.
func (b *Bed) Wait(ctx context.Context) error {
	b.mu.Lock()
	procs := append([]*proc(nil), b.procs...)
	b.mu.Unlock()
	for {
		for _, p := range procs {
			if p.exited() {
				return p.exitErr()
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

func (b *Bed) logTails(logf func(string, ...any), n int) {
	b.mu.Lock()
	procs := append([]*proc(nil), b.procs...)
	b.mu.Unlock()
	for _, p := range procs {
		logf("testbed: last lines of %s:\n%s", p.logPath, p.tail(n))
	}
}

// Namespace creates a fresh namespace named after the test and deletes it at cleanup.
func (b *Bed) Namespace(t testing.TB) string {
	t.Helper()
	ctx := context.Background()
	base := strings.ToLower(t.Name())
	base = strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			return r
		}
		return '-'
	}, base)
	if len(base) > 40 {
		base = base[:40]
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: strings.Trim(base, "-") + "-"}}
	created, err := b.Client.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("testbed: create namespace: %v", err)
	}
	t.Cleanup(func() {
		err := b.Client.CoreV1().Namespaces().Delete(context.Background(), created.Name, metav1.DeleteOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			t.Logf("testbed: delete namespace %s: %v", created.Name, err)
		}
	})
	return created.Name
}

// Kubectl runs the bed's own kubectl (the server's version) with its admin
// kubeconfig. It returns stdout; on failure it returns stdout and stderr
// together and an error that quotes stderr.
func (b *Bed) Kubectl(ctx context.Context, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, filepath.Join(b.Bin, "kubectl"), append([]string{"--kubeconfig", b.Kubeconfig}, args...)...)
	cmd.Env = append(cleanEnv(), "KUBECONFIG="+b.Kubeconfig)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		out := append(stdout.Bytes(), stderr.Bytes()...)
		return out, fmt.Errorf("kubectl %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.Bytes(), nil
}

// CACertPEM is the bed's CA certificate.
func (b *Bed) CACertPEM() []byte { return b.pki.caPEM }

// writeKubeconfig writes a kubeconfig with embedded credentials, atomically.
func (b *Bed) writeKubeconfig(path, server, user string, certPEM, keyPEM []byte) error {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["kubernetes"] = &clientcmdapi.Cluster{Server: server, CertificateAuthorityData: b.pki.caPEM}
	cfg.AuthInfos[user] = &clientcmdapi.AuthInfo{ClientCertificateData: certPEM, ClientKeyData: keyPEM}
	ctxName := user + "@kubernetes"
	cfg.Contexts[ctxName] = &clientcmdapi.Context{Cluster: "kubernetes", AuthInfo: user}
	cfg.CurrentContext = ctxName
	data, err := clientcmd.Write(*cfg)
	if err != nil {
		return err
	}
	return fileutil.WriteAtomic(path, data, 0o600)
}

// handedOut remembers the ports freePorts returned, so that beds started in
// parallel by one test binary never get the same port between the check and
// the process binding it.
var (
	portsMu   sync.Mutex
	handedOut = map[int]bool{}
)

// freePorts returns n TCP ports that are free on every local address.
func freePorts(n int) ([]int, error) {
	portsMu.Lock()
	defer portsMu.Unlock()
	var lns []net.Listener
	defer func() {
		for _, l := range lns {
			l.Close()
		}
	}()
	var ports []int
	for len(ports) < n {
		l, err := net.Listen("tcp", "0.0.0.0:0")
		if err != nil {
			return nil, fmt.Errorf("no free port: %w", err)
		}
		lns = append(lns, l)
		port := l.Addr().(*net.TCPAddr).Port
		if handedOut[port] {
			continue
		}
		handedOut[port] = true
		ports = append(ports, port)
	}
	return ports, nil
}

// poll calls ok every 100ms until it is true, p exits, or the timeout/ctx ends.
func poll(ctx context.Context, timeout time.Duration, p *proc, ok func() bool) error {
	return pollAll(ctx, timeout, []*proc{p}, ok)
}

func pollAll(ctx context.Context, timeout time.Duration, procs []*proc, ok func() bool) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		for _, p := range procs {
			if p.exited() {
				return p.exitErr()
			}
		}
		if ok() {
			return nil
		}
		select {
		case <-ctx.Done():
			var tails []string
			for _, p := range procs {
				tails = append(tails, fmt.Sprintf("last lines of %s:\n%s", p.logPath, p.tail(20)))
			}
			return errors.New("not ready after " + timeout.String() + "; " + strings.Join(tails, "\n"))
		case <-time.After(100 * time.Millisecond):
		}
	}
}
