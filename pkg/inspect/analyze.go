package inspect

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	utilversion "k8s.io/apimachinery/pkg/util/version"
)

// Components are the static-pod components kubeadm runs on every control-plane node.
var Components = []string{"kube-apiserver", "kube-controller-manager", "kube-scheduler", "etcd"}

// LeaderLeases are the leader-election Leases in kube-system that are checked.
var LeaderLeases = []string{"kube-controller-manager", "kube-scheduler"}

// Thresholds.
const (
	CertWarnDays   = 30 // serving certificate: warning below this many days left
	MaxKubeletSkew = 3  // kubelet may be this many minors older than the API server
)

// Inspect collects and analyzes. It fails only when opts.Node names no node.
func Inspect(ctx context.Context, src *Source, opts AnalyzeOptions) (*Report, error) {
	s := Collect(ctx, src)
	if err := unreachable(s); err != nil {
		return nil, err
	}
	if opts.Node != "" && s.Errs[srcNodes] == nil {
		found := false
		for i := range s.Nodes {
			found = found || s.Nodes[i].Name == opts.Node
		}
		if !found {
			return nil, fmt.Errorf("node %q not found", opts.Node)
		}
	}
	return Analyze(s, opts), nil
}

// unreachable turns "no API server answered at all" into one error, as kubectl
// does, instead of a report made only of failed reads. An answer with an API
// status (Forbidden, NotFound, ...) means the server is there.
func unreachable(s *Snapshot) error {
	if len(s.Errs) == 0 {
		return nil
	}
	var first error
	for _, name := range []string{srcVersion, srcNodes, srcPods, srcReadyz} {
		err := s.Errs[name]
		if err == nil {
			return nil
		}
		var status apierrors.APIStatus
		if errors.As(err, &status) {
			return nil
		}
		if first == nil {
			first = err
		}
	}
	return fmt.Errorf("cannot reach the Kubernetes API server at %s: %v", s.Server, first)
}

// AnalyzeOptions narrows the report.
type AnalyzeOptions struct {
	// Node limits the per-node sections and per-node findings to one node.
	Node string
}

type analyzer struct {
	s        *Snapshot
	r        *Report
	cpNodes  []string
	nodeAddr map[string]string // address or name -> node name
}

func (a *analyzer) add(sev Severity, check, subject, format string, args ...any) {
	a.r.Findings = append(a.r.Findings, Finding{Severity: sev, Check: check, Subject: subject, Message: fmt.Sprintf(format, args...)})
}

func (a *analyzer) note(format string, args ...any) {
	a.r.Notes = append(a.r.Notes, fmt.Sprintf(format, args...))
}

// readErr turns a failed read into a note (Forbidden) or a warning, and
// reports whether the source failed.
func (a *analyzer) readErr(src string) bool {
	err, ok := a.s.Errs[src]
	if !ok {
		return false
	}
	if apierrors.IsForbidden(err) || apierrors.IsUnauthorized(err) {
		a.note("cannot read %s: forbidden by RBAC; the checks that need it are skipped (see the ClusterRole in the README)", src)
	} else {
		a.add(Warning, "read.failed", "", "cannot read %s: %v", src, firstLine(err.Error()))
	}
	return true
}

// Analyze judges a Snapshot.
func Analyze(s *Snapshot, opts AnalyzeOptions) *Report {
	r := &Report{APIVersion: APIVersion, Kind: "ComponentsReport", Findings: []Finding{}, Notes: []string{},
		ControlPlane: []Component{}, Leaders: []Leader{}, Nodes: []Node{}, Reasons: []string{}}
	a := &analyzer{s: s, r: r, nodeAddr: map[string]string{}}
	r.Cluster.Server = s.Server
	r.Endpoint.KubeconfigServer = s.Server
	if s.ServerVersion != nil {
		r.Cluster.KubernetesVersion = s.ServerVersion.GitVersion
	}
	a.readErr(srcVersion)
	for _, src := range []string{srcNodes, srcPods, srcLeases, srcKubeadm, srcKubeProxy, srcClusterInfo, srcSlices,
		srcDaemonSets, srcDeployments, srcDeploymentPods, srcServices, srcAPIService, srcReadyz, srcLivez} {
		a.readErr(src)
	}
	a.controlPlane()
	a.leaders()
	a.apiServer()
	a.etcd()
	a.endpoint()
	if s.LoadBalancer != nil {
		info, fs := AnalyzeLoadBalancer(s.LoadBalancer)
		r.LoadBalancer = info
		r.Findings = append(r.Findings, fs...)
	}
	a.nodes()
	a.network()
	a.spread()
	if opts.Node != "" {
		a.onlyNode(opts.Node)
	}
	a.verdict()
	r.Stats = Stats{APIRequests: s.Requests, DurationMillis: s.Duration.Milliseconds()}
	return r
}

func isControlPlane(n *corev1.Node) bool {
	_, cp := n.Labels["node-role.kubernetes.io/control-plane"]
	_, master := n.Labels["node-role.kubernetes.io/master"]
	return cp || master
}

func (a *analyzer) controlPlane() {
	s, r := a.s, a.r
	seen := map[string]bool{}
	for i := range s.Nodes {
		n := &s.Nodes[i]
		a.nodeAddr[n.Name] = n.Name
		for _, ad := range n.Status.Addresses {
			a.nodeAddr[ad.Address] = n.Name
		}
		if isControlPlane(n) {
			seen[n.Name] = true
		}
	}
	byNodeComp := map[string]*corev1.Pod{}
	for i := range s.Pods {
		p := &s.Pods[i]
		comp := p.Labels["component"]
		if p.Spec.NodeName == "" || comp == "" {
			continue
		}
		seen[p.Spec.NodeName] = true
		byNodeComp[p.Spec.NodeName+"/"+comp] = p
	}
	for n := range seen {
		a.cpNodes = append(a.cpNodes, n)
	}
	sort.Strings(a.cpNodes)
	_, podsFailed := s.Errs[srcPods]
	if podsFailed {
		return
	}
	if len(s.Pods) == 0 {
		r.Cluster.ManagedControlPlane = true
		a.note("no control-plane Pods are visible in kube-system (a managed control plane, or not kubeadm): the control-plane, etcd and leader checks are skipped")
		return
	}
	external := parseClusterConfiguration(cmData(s.KubeadmConfig, "ClusterConfiguration")).Etcd.External != nil
	readyCount := map[string]int{}
	for _, node := range a.cpNodes {
		for _, comp := range Components {
			if comp == "etcd" && external {
				continue
			}
			c := Component{Node: node, Name: comp}
			if p := byNodeComp[node+"/"+comp]; p != nil {
				c.Present = true
				c.Pod = p.Name
				c.Ready = podReady(p)
				for _, cs := range p.Status.ContainerStatuses {
					c.Restarts += cs.RestartCount
				}
				if len(p.Spec.Containers) > 0 {
					c.Image = p.Spec.Containers[0].Image
					c.Version = imageVersion(c.Image)
				}
				t := p.CreationTimestamp.Time
				c.CreatedAt = &t
				if c.Ready {
					readyCount[comp]++
				} else {
					a.add(Warning, "controlplane.not-ready", node, "%s on %s is not Ready (pod %s)", comp, node, p.Name)
				}
			} else {
				a.add(Warning, "controlplane.missing", node, "%s is missing on control-plane node %s", comp, node)
			}
			r.ControlPlane = append(r.ControlPlane, c)
		}
	}
	for _, comp := range Components {
		if comp == "etcd" && external {
			continue
		}
		if readyCount[comp] == 0 {
			a.add(Error, "controlplane.unavailable", "", "no Ready %s on any control-plane node", comp)
		}
	}
	a.componentSkew()
}

// componentSkew applies the skew policy between control-plane components:
// API servers within one minor of each other; controller-manager and
// scheduler not newer than the oldest API server and at most one minor older.
func (a *analyzer) componentSkew() {
	var oldest, newest *utilversion.Version
	for _, c := range a.r.ControlPlane {
		if c.Name != "kube-apiserver" || !c.Present {
			continue
		}
		v, err := utilversion.ParseGeneric(c.Version)
		if err != nil {
			continue
		}
		if oldest == nil || v.LessThan(oldest) {
			oldest = v
		}
		if newest == nil || newest.LessThan(v) {
			newest = v
		}
	}
	if oldest == nil {
		return
	}
	if newest.Minor()-oldest.Minor() > 1 {
		a.add(Error, "controlplane.skew", "", "kube-apiserver versions differ by more than one minor (%s .. %s)", oldest, newest)
	}
	for _, c := range a.r.ControlPlane {
		if c.Name != "kube-controller-manager" && c.Name != "kube-scheduler" || !c.Present {
			continue
		}
		v, err := utilversion.ParseGeneric(c.Version)
		if err != nil {
			continue
		}
		if int(oldest.Minor())-int(v.Minor()) > 1 || v.Minor() > oldest.Minor() {
			a.add(Warning, "controlplane.skew", c.Node, "%s %s on %s is outside the skew policy against kube-apiserver %s (same minor or one older)", c.Name, c.Version, c.Node, oldest)
		}
	}
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func cmData(cm *corev1.ConfigMap, key string) string {
	if cm == nil {
		return ""
	}
	return cm.Data[key]
}

func (a *analyzer) leaders() {
	s, r := a.s, a.r
	if _, failed := s.Errs[srcLeases]; failed {
		return
	}
	for _, name := range LeaderLeases {
		l := Leader{Lease: "kube-system/" + name}
		for i := range s.Leases {
			ls := &s.Leases[i]
			if ls.Name != name {
				continue
			}
			l.Found = true
			if ls.Spec.HolderIdentity != nil {
				l.Holder = *ls.Spec.HolderIdentity
				l.Node, _, _ = strings.Cut(l.Holder, "_")
			}
			if ls.Spec.LeaseDurationSeconds != nil {
				l.LeaseDurationSeconds = *ls.Spec.LeaseDurationSeconds
			}
			if ls.Spec.RenewTime != nil {
				t := ls.Spec.RenewTime.Time
				l.RenewTime = &t
				l.SecondsSinceRenewal = int64(s.Now.Sub(t) / time.Second)
				l.Fresh = l.Holder != "" && s.Now.Sub(t) <= time.Duration(l.LeaseDurationSeconds)*time.Second
			}
		}
		r.Leaders = append(r.Leaders, l)
		switch {
		case !l.Found && r.Cluster.ManagedControlPlane:
		case !l.Found:
			a.add(Warning, "leader.missing", "", "no Lease kube-system/%s: %s runs without leader election or is not running", name, name)
		case l.Holder == "":
			a.add(Error, "leader.none", "", "Lease kube-system/%s has no holder: no active %s", name, name)
		case !l.Fresh:
			a.add(Error, "leader.stale", "", "the %s leader %s last renewed its Lease %s ago (duration %ds): no active leader",
				name, l.Holder, (time.Duration(l.SecondsSinceRenewal) * time.Second).String(), l.LeaseDurationSeconds)
		default:
			a.add(OK, "leader.fresh", "", "%s leader is %s, renewed %ds ago", name, l.Holder, l.SecondsSinceRenewal)
		}
	}
}

func (a *analyzer) apiServer() {
	s, r := a.s, a.r
	for _, h := range []struct {
		raw  *RawHealth
		name string
		dst  *[]HealthCheck
	}{{s.Readyz, "readyz", &r.APIServer.Readyz}, {s.Livez, "livez", &r.APIServer.Livez}} {
		*h.dst = []HealthCheck{}
		if h.raw == nil {
			continue
		}
		*h.dst = parseHealth(h.raw.Body)
		var failed []string
		for _, c := range *h.dst {
			if !c.OK {
				failed = append(failed, c.Name)
			}
		}
		switch {
		case len(failed) > 0:
			a.add(Error, "apiserver."+h.name, "", "/%s reports failing checks: %s", h.name, strings.Join(failed, ", "))
		case h.raw.Code != 200:
			a.add(Error, "apiserver."+h.name, "", "/%s answered HTTP %d: %s", h.name, h.raw.Code, firstLine(h.raw.Body))
		default:
			a.add(OK, "apiserver."+h.name, "", "/%s: %d checks pass", h.name, len(*h.dst))
		}
	}
	r.APIServer.Addresses = []string{}
	for _, sl := range s.Slices {
		port := ""
		for _, p := range sl.Ports {
			if p.Port != nil {
				port = fmt.Sprint(*p.Port)
			}
		}
		for _, ep := range sl.Endpoints {
			if ep.Conditions.Ready != nil && !*ep.Conditions.Ready {
				continue
			}
			for _, ad := range ep.Addresses {
				if port != "" {
					ad = net.JoinHostPort(ad, port)
				}
				r.APIServer.Addresses = append(r.APIServer.Addresses, ad)
			}
		}
	}
	sort.Strings(r.APIServer.Addresses)
	r.APIServer.Registered = len(r.APIServer.Addresses)
	if _, failed := s.Errs[srcSlices]; !failed {
		want := 0
		for _, c := range r.ControlPlane {
			if c.Name == "kube-apiserver" && c.Present {
				want++
			}
		}
		switch {
		case len(s.Slices) == 0:
			a.note("no EndpointSlice for the kubernetes Service in default (endpoint reconciler off?): registered API servers not checked")
		case r.APIServer.Registered == 0:
			a.add(Warning, "apiserver.endpoints", "", "the kubernetes EndpointSlice lists no ready API server")
		case r.APIServer.Registered < want:
			a.add(Warning, "apiserver.endpoints", "", "only %d API servers are registered in the kubernetes EndpointSlice, %d kube-apiserver Pods exist", r.APIServer.Registered, want)
		default:
			a.add(OK, "apiserver.endpoints", "", "%d API servers registered in the kubernetes EndpointSlice", r.APIServer.Registered)
		}
	}
	a.certificates()
}

// certificates reads the serving certificates: of the kubeconfig server, of
// the controlPlaneEndpoint (which API server answered there), and of each
// API server at its own address, each row naming its server.
func (a *analyzer) certificates() {
	s, r := a.s, a.r
	r.APIServer.Certificates = []Certificate{}
	epHost := ""
	if ep := parseClusterConfiguration(cmData(s.KubeadmConfig, "ClusterConfiguration")).ControlPlaneEndpoint; ep != "" {
		epHost, _ = splitHostPortDefault(ep, "6443")
	}
	servers := map[string]*Probe{} // target -> the API server dialled there
	byFP := map[string]string{}    // certificate SHA-256 -> API server
	for _, p := range s.APIServerCerts {
		q := *p
		if q.Server == "" {
			h, _ := splitHostPortDefault(q.Target, "")
			q.Server = a.nodeAddr[h]
		}
		servers[q.Target] = &q
		if q.Cert != nil {
			if q.Server != "" {
				byFP[fingerprint(q.Cert)] = q.Server
			} else if _, named := byFP[fingerprint(q.Cert)]; !named {
				byFP[fingerprint(q.Cert)] = q.Target // known only by its address
			}
		}
	}
	type row struct {
		p   *Probe
		via string
	}
	var rows []row
	done := map[string]bool{}
	for _, rw := range []row{{s.ServerCert, ViaKubeconfig}, {s.EndpointCert, ViaEndpoint}} {
		if rw.p == nil || done[rw.p.Target] {
			continue // the kubeconfig talks to the endpoint itself: one certificate
		}
		done[rw.p.Target] = true
		rows = append(rows, rw)
	}
	for _, p := range s.APIServerCerts {
		if !done[p.Target] {
			done[p.Target] = true
			rows = append(rows, row{servers[p.Target], p.Via})
		}
	}
	for _, rw := range rows {
		p := rw.p
		c := Certificate{Target: p.Target, Via: rw.via, Reachable: p.Reachable}
		one := servers[p.Target] // this address is one API server's own
		if one != nil {
			c.Server = one.Server
		}
		if p.Err != nil {
			c.Error = p.Err.Error()
		}
		label := ""
		switch {
		case rw.via == ViaKubeconfig:
			label = "the kubeconfig server " + p.Target
		case rw.via == ViaEndpoint:
			label = "controlPlaneEndpoint " + p.Target
		case c.Server != "":
			label = "kube-apiserver on " + c.Server + " (" + p.Target + ")"
		default:
			label = "the API server at " + p.Target
		}
		if p.Cert != nil {
			c.Subject = p.Cert.Subject.CommonName
			c.NotAfter = p.Cert.NotAfter
			c.DaysLeft = int(p.Cert.NotAfter.Sub(s.Now).Hours() / 24)
			c.DNSNames = p.Cert.DNSNames
			for _, ip := range p.Cert.IPAddresses {
				c.IPAddresses = append(c.IPAddresses, ip.String())
			}
			c.SHA256 = fingerprint(p.Cert)
			if rw.via == ViaKubeconfig || rw.via == ViaEndpoint {
				c.AnsweredBy = byFP[c.SHA256]
				switch {
				case strings.Contains(c.AnsweredBy, ":"): // known only by its address
					label += ", answered by the API server at " + c.AnsweredBy
				case c.AnsweredBy != "":
					label += ", answered by kube-apiserver on " + c.AnsweredBy
				case len(byFP) > 0:
					label += ", answered by an API server whose own address gave another certificate"
				case len(s.APIServerCerts) > 0:
					label += ", answered by an unknown API server (no API server's own address answered from here)"
				}
			}
			c.CoversEndpoint = epHost == "" || p.Cert.VerifyHostname(epHost) == nil
			switch {
			case p.Cert.NotAfter.Before(s.Now):
				a.add(Error, "cert.expiry", p.Target, "the serving certificate of %s expired on %s", label, p.Cert.NotAfter.Format(time.DateOnly))
			case c.DaysLeft < CertWarnDays:
				a.add(Warning, "cert.expiry", p.Target, "the serving certificate of %s expires in %d days (%s)", label, c.DaysLeft, p.Cert.NotAfter.Format(time.DateOnly))
			default:
				a.add(OK, "cert.expiry", p.Target, "the serving certificate of %s is valid for %d more days", label, c.DaysLeft)
			}
			if epHost != "" {
				if c.CoversEndpoint {
					a.add(OK, "cert.san", p.Target, "the certificate of %s includes the endpoint host %s", label, epHost)
				} else {
					a.add(Error, "cert.san", p.Target, "the certificate of %s does not include the endpoint host %s in its SANs (DNS %v, IP %v)",
						label, epHost, c.DNSNames, c.IPAddresses)
				}
			}
			if one != nil && rw.via != ViaEndpoint {
				host, _ := splitHostPortDefault(p.Target, "")
				ok := p.Cert.VerifyHostname(host) == nil
				c.CoversNode = &ok
				if ok {
					a.add(OK, "cert.san", p.Target, "the certificate of %s includes its own address %s", label, host)
				} else {
					a.add(Error, "cert.san", p.Target, "the certificate of %s does not include its own address %s in its SANs (DNS %v, IP %v): clients that reach that server directly reject it",
						label, host, c.DNSNames, c.IPAddresses)
				}
			}
		} else if rw.via != ViaEndpoint {
			a.note("could not read the serving certificate of %s: %s", label, firstLine(c.Error))
		}
		r.APIServer.Certificates = append(r.APIServer.Certificates, c)
	}
}

// fingerprint is the SHA-256 of a certificate's DER, in hex.
func fingerprint(c *x509.Certificate) string {
	sum := sha256.Sum256(c.Raw)
	return hex.EncodeToString(sum[:])
}

func (a *analyzer) etcd() {
	s, r := a.s, a.r
	cc := parseClusterConfiguration(cmData(s.KubeadmConfig, "ClusterConfiguration"))
	r.Etcd.MemberNodes = []string{}
	if cc.Etcd.External != nil {
		r.Etcd.External = true
		r.Etcd.ExternalEndpoints = cc.Etcd.External.Endpoints
		a.note("etcd is external (%s): its members are not visible through the API", strings.Join(cc.Etcd.External.Endpoints, ", "))
		return
	}
	if _, failed := s.Errs[srcPods]; failed || r.Cluster.ManagedControlPlane {
		return
	}
	if !a.etcdFromEtcd() {
		r.Etcd.Source = "etcd static Pods"
		switch err := s.EtcdErr; {
		case err == nil || errors.Is(err, ErrNoEtcdPod):
		case forbidden(err):
			a.note("etcd's member list was not read from etcd: this user may not exec into the etcd Pods (create on pods/exec in kube-system, the optional Role in the README); members are counted from the etcd Pods, where a stale member does not show")
		default:
			a.note("etcd's member list could not be read with etcdctl in an etcd Pod (%s); members are counted from the etcd Pods, where a stale member does not show", shortURLs(firstLine(err.Error())))
		}
		for _, c := range r.ControlPlane {
			if c.Name != "etcd" || !c.Present {
				continue
			}
			r.Etcd.Members++
			r.Etcd.MemberNodes = append(r.Etcd.MemberNodes, c.Node)
			if c.Ready {
				r.Etcd.ReadyMembers++
			}
		}
	}
	n := r.Etcd.Members
	if n == 0 {
		a.add(Error, "etcd.members", "", "no etcd Pods on the control-plane nodes and no external etcd in kubeadm-config")
		return
	}
	from := "etcd Pods"
	if r.Etcd.MemberList != nil {
		from = "etcd's member list"
	}
	up := r.Etcd.ReadyMembers
	r.Etcd.Quorum, r.Etcd.ToleratesFailures = EtcdQuorum(n, up)
	_, r.Etcd.ToleratesFailuresAllUp = EtcdQuorum(n, n)
	switch {
	case n < 3:
		a.add(Error, "etcd.members", "", "etcd has %d member(s) (%s): quorum is %d, it tolerates no failure; HA needs 3 or 5", n, from, r.Etcd.Quorum)
	case n%2 == 0:
		a.add(Warning, "etcd.members", "", "etcd has an even number of members (%d, %s): quorum %d, tolerates %d failure(s) with all members up, no more than %d members would; use an odd count",
			n, from, r.Etcd.Quorum, r.Etcd.ToleratesFailuresAllUp, n-1)
	default:
		a.add(OK, "etcd.members", "", "etcd has %d members (%s): quorum %d, tolerates %d failure(s) with all members up", n, from, r.Etcd.Quorum, r.Etcd.ToleratesFailuresAllUp)
	}
	switch {
	case up < r.Etcd.Quorum:
		a.add(Error, "etcd.quorum", "", "only %d of %d etcd members are up: quorum (%d) is lost", up, n, r.Etcd.Quorum)
	case up < n:
		a.add(Warning, "etcd.quorum", "", "%d of %d etcd members are down: quorum %d still holds, but etcd tolerates only %d more failure(s) (%d with all members up)",
			n-up, n, r.Etcd.Quorum, r.Etcd.ToleratesFailures, r.Etcd.ToleratesFailuresAllUp)
	default:
		a.add(OK, "etcd.quorum", "", "%d of %d etcd members up: quorum %d, tolerates %d more failure(s)", up, n, r.Etcd.Quorum, r.Etcd.ToleratesFailures)
	}
}

// EtcdQuorum returns the quorum of an etcd cluster of members and how many
// more members may fail, counted from the up members that are left: 0 when
// quorum is already at its limit or lost.
func EtcdQuorum(members, up int) (quorum, tolerates int) {
	if members <= 0 {
		return 0, 0
	}
	quorum = members/2 + 1
	return quorum, max(0, min(up, members)-quorum)
}

func (a *analyzer) endpoint() {
	s, r := a.s, a.r
	e := &r.Endpoint
	if srv := clusterInfoServer(cmMap(s.ClusterInfo)); srv != "" {
		e.ClusterInfoServer = srv
	}
	if _, failed := s.Errs[srcKubeadm]; failed {
		return
	}
	if s.KubeadmConfig == nil {
		a.note("no kube-system/kubeadm-config ConfigMap (not a kubeadm cluster?): the HA endpoint is not checked")
		return
	}
	ep := parseClusterConfiguration(s.KubeadmConfig.Data["ClusterConfiguration"]).ControlPlaneEndpoint
	e.ControlPlaneEndpoint = ep
	if ep == "" {
		a.add(Error, "endpoint.unset", "", "controlPlaneEndpoint is not set in kubeadm-config: clients and kubelets talk to a single API server, there is no HA endpoint")
		return
	}
	e.Host, e.Port = splitHostPortDefault(ep, "6443")
	if node, ok := a.nodeAddr[e.Host]; ok {
		e.OnNode = node
		a.add(Error, "endpoint.single-node", node, "controlPlaneEndpoint %s is the address of node %s, not a VIP or load balancer: losing that node loses the endpoint", ep, node)
	} else {
		a.add(OK, "endpoint.ha", "", "controlPlaneEndpoint %s is not a node's own address", ep)
	}
	if p := s.EndpointCert; p != nil {
		e.Reachable = &p.Reachable
		if !p.Reachable {
			e.ReachError = firstLine(p.Err.Error())
			a.add(Warning, "endpoint.unreachable", "", "controlPlaneEndpoint %s is not reachable from here: %s", ep, e.ReachError)
		} else {
			a.add(OK, "endpoint.reachable", "", "controlPlaneEndpoint %s accepts TCP connections", ep)
		}
	}
	if e.ClusterInfoServer != "" {
		h, p := splitURLHostPort(e.ClusterInfoServer)
		m := h == e.Host && p == e.Port
		e.MatchesClusterInfo = &m
		if !m {
			a.add(Warning, "endpoint.cluster-info", "", "kube-public/cluster-info points joining nodes at %s, not at controlPlaneEndpoint %s", e.ClusterInfoServer, ep)
		}
	}
	if h, p := splitURLHostPort(s.Server); h != "" && (h != e.Host || p != e.Port) {
		if node, ok := a.nodeAddr[h]; ok {
			a.note("your kubeconfig talks to node %s directly (%s), not through controlPlaneEndpoint %s", node, s.Server, ep)
		}
	}
}

func (a *analyzer) nodes() {
	s, r := a.s, a.r
	var apiVer *utilversion.Version
	if s.ServerVersion != nil {
		apiVer, _ = utilversion.ParseGeneric(s.ServerVersion.GitVersion)
	}
	for _, c := range r.ControlPlane { // the oldest API server decides
		if c.Name == "kube-apiserver" && c.Present {
			if v, err := utilversion.ParseGeneric(c.Version); err == nil && (apiVer == nil || v.LessThan(apiVer)) {
				apiVer = v
			}
		}
	}
	nodes := append([]corev1.Node(nil), s.Nodes...)
	sort.Slice(nodes, func(i, j int) bool { return nodes[i].Name < nodes[j].Name })
	for i := range nodes {
		n := &nodes[i]
		out := Node{Name: n.Name, KubeletVersion: n.Status.NodeInfo.KubeletVersion,
			ContainerRuntime: n.Status.NodeInfo.ContainerRuntimeVersion, Roles: []string{}, Taints: []string{}, SkewOK: true}
		for k := range n.Labels {
			if role, ok := strings.CutPrefix(k, "node-role.kubernetes.io/"); ok && role != "" {
				out.Roles = append(out.Roles, role)
			}
		}
		sort.Strings(out.Roles)
		for _, ad := range n.Status.Addresses {
			if ad.Type == corev1.NodeInternalIP && out.InternalIP == "" {
				out.InternalIP = ad.Address
			}
		}
		for _, c := range n.Status.Conditions {
			if c.Type == corev1.NodeReady {
				out.Ready = c.Status == corev1.ConditionTrue
			}
		}
		for _, t := range n.Spec.Taints {
			s := t.Key
			if t.Value != "" {
				s += "=" + t.Value
			}
			out.Taints = append(out.Taints, s+":"+string(t.Effect))
		}
		cp := isControlPlane(n)
		r.NodeSummary.Total++
		if cp {
			r.NodeSummary.ControlPlanes++
		} else {
			r.NodeSummary.Workers++
		}
		if out.Ready {
			r.NodeSummary.Ready++
		} else {
			a.add(Warning, "node.not-ready", n.Name, "node %s is not Ready", n.Name)
		}
		out.Skew, out.SkewOK = kubeletSkew(out.KubeletVersion, apiVer)
		if !out.SkewOK {
			a.add(Error, "node.skew", n.Name, "kubelet %s on %s is outside the skew policy against kube-apiserver v%s: %s", out.KubeletVersion, n.Name, apiVer, out.Skew)
		}
		if cp && !hasNoScheduleTaint(n) {
			a.note("control-plane node %s has no NoSchedule taint: workloads may run next to the control plane", n.Name)
		}
		r.Nodes = append(r.Nodes, out)
	}
	if len(s.Nodes) > 0 {
		a.add(OK, "node.summary", "", "%d/%d nodes Ready (%d control planes, %d workers)", r.NodeSummary.Ready, r.NodeSummary.Total, r.NodeSummary.ControlPlanes, r.NodeSummary.Workers)
	}
}

func hasNoScheduleTaint(n *corev1.Node) bool {
	for _, t := range n.Spec.Taints {
		if t.Effect == corev1.TaintEffectNoSchedule || t.Effect == corev1.TaintEffectNoExecute {
			return true
		}
	}
	return false
}

// kubeletSkew applies the version skew policy: a kubelet must not be newer
// than kube-apiserver and may be up to MaxKubeletSkew minor versions older.
func kubeletSkew(kubelet string, api *utilversion.Version) (string, bool) {
	if api == nil {
		return "unknown", true
	}
	v, err := utilversion.ParseGeneric(kubelet)
	if err != nil {
		return "unknown", true
	}
	if v.Major() != api.Major() {
		return "different major version", false
	}
	d := int(api.Minor()) - int(v.Minor())
	switch {
	case d < 0:
		return fmt.Sprintf("%d minor newer than the API server", -d), false
	case d > MaxKubeletSkew:
		return fmt.Sprintf("%d minors older (at most %d allowed)", d, MaxKubeletSkew), false
	case d == 0:
		return "none", true
	}
	return fmt.Sprintf("%d minor older (allowed)", d), true
}

func (a *analyzer) network() {
	s, r := a.s, a.r
	nw := &r.Network
	nw.CNI = []string{}
	seen := map[string]bool{}
	for i := range s.DaemonSets {
		ds := &s.DaemonSets[i]
		if ds.Namespace == "kube-system" && ds.Name == "kube-proxy" {
			nw.KubeProxyDeployed = true
			nw.KubeProxyReady = fmt.Sprintf("%d/%d", ds.Status.NumberReady, ds.Status.DesiredNumberScheduled)
			if ds.Status.NumberReady < ds.Status.DesiredNumberScheduled {
				a.add(Warning, "kube-proxy.not-ready", "", "kube-proxy: %s Pods ready", nw.KubeProxyReady)
			}
		}
		img := ""
		if len(ds.Spec.Template.Spec.Containers) > 0 {
			img = ds.Spec.Template.Spec.Containers[0].Image
		}
		if c := cniFromDaemonSet(ds.Name, img); c != "" && !seen[c] {
			seen[c] = true
			nw.CNI = append(nw.CNI, c)
		}
	}
	sort.Strings(nw.CNI)
	if s.KubeProxy != nil {
		nw.KubeProxyMode = kubeProxyMode(s.KubeProxy.Data)
	}
	_, dsFailed := s.Errs[srcDaemonSets]
	if !dsFailed && !nw.KubeProxyDeployed {
		a.note("no kube-proxy DaemonSet in kube-system (a CNI such as Cilium may replace it)")
	}
	if !dsFailed && len(nw.CNI) == 0 {
		a.note("no known CNI DaemonSet found (Calico, Cilium, Flannel, ...): the CNI may be installed on the hosts")
	}
	var dns *appsv1.Deployment
	for i := range s.Deployments {
		d := &s.Deployments[i]
		if d.Name == "coredns" || d.Labels["k8s-app"] == "kube-dns" {
			dns = d
			break
		}
	}
	if _, failed := s.Errs[srcDeployments]; !failed {
		switch {
		case dns == nil:
			a.add(Warning, "coredns.missing", "", "no CoreDNS Deployment in kube-system")
		default:
			cd := &nw.CoreDNS
			cd.Present = true
			cd.Ready = dns.Status.ReadyReplicas
			cd.Desired = 1
			if dns.Spec.Replicas != nil {
				cd.Desired = *dns.Spec.Replicas
			}
			if len(dns.Spec.Template.Spec.Containers) > 0 {
				cd.Version = imageVersion(dns.Spec.Template.Spec.Containers[0].Image)
			}
			cd.Status = fmt.Sprintf("%d/%d ready", cd.Ready, cd.Desired)
			switch {
			case cd.Ready == 0:
				a.add(Error, "coredns.unavailable", "", "CoreDNS has no ready replica: cluster DNS is down")
			case cd.Ready < cd.Desired:
				a.add(Warning, "coredns.degraded", "", "CoreDNS: %s", cd.Status)
			default:
				a.add(OK, "coredns.ready", "", "CoreDNS: %s", cd.Status)
			}
		}
	}
	r.Cluster.CoreDNS = nw.CoreDNS.Status
	for _, svc := range s.DNSServices {
		if svc.Spec.ClusterIP != "" && nw.CoreDNS.Present {
			r.Cluster.CoreDNS = strings.TrimSpace(fmt.Sprintf("%s %s, service %s/%s %s", nw.CoreDNS.Version, nw.CoreDNS.Status, svc.Namespace, svc.Name, svc.Spec.ClusterIP))
			break
		}
	}
	ms := &nw.MetricsServer
	if _, failed := s.Errs[srcAPIService]; !failed {
		if s.MetricsAPIService == nil {
			ms.Status = "not installed"
			a.note("metrics-server is not installed (no APIService v1beta1.metrics.k8s.io): `kubectl top` and autoscaling on CPU will not work")
		} else {
			ms.Present = true
			ok, msg := apiServiceAvailable(s.MetricsAPIService)
			if ok {
				ms.Status = "Available"
				a.add(OK, "metrics.available", "", "metrics-server APIService is Available")
			} else {
				ms.Status = "Unavailable: " + msg
				a.add(Warning, "metrics.unavailable", "", "metrics-server APIService v1beta1.metrics.k8s.io is not Available: %s", msg)
			}
		}
	}
}

// CriticalDeployment names what a kube-system Deployment does for the
// cluster's availability ("CoreDNS", "metrics-server", "Calico controller",
// ...), or "" for other Deployments.
func CriticalDeployment(d *appsv1.Deployment) string {
	img := ""
	if len(d.Spec.Template.Spec.Containers) > 0 {
		img = d.Spec.Template.Spec.Containers[0].Image
	}
	switch {
	case d.Name == "coredns" || d.Labels["k8s-app"] == "kube-dns":
		return "CoreDNS"
	case d.Name == "metrics-server" || d.Labels["k8s-app"] == "metrics-server":
		return "metrics-server"
	}
	if c := cniFromDaemonSet(d.Name, img); c != "" {
		return c + " controller"
	}
	return ""
}

// spread flags critical Deployments whose ready replicas all run on one
// node: losing that node takes the add-on down although it has replicas.
// kubeadm creates CoreDNS while the first control plane is the only node,
// and its anti-affinity is only preferred, so both replicas stay there.
func (a *analyzer) spread() {
	s, r := a.s, a.r
	nw := &r.Network
	nw.CriticalDeployments = []DeploymentSpread{}
	if _, failed := s.Errs[srcDeploymentPods]; failed {
		return
	}
	schedulable := 0
	for i := range s.Nodes {
		n := &s.Nodes[i]
		if !n.Spec.Unschedulable && nodeIsReady(n) {
			schedulable++
		}
	}
	for i := range s.Deployments {
		d := &s.Deployments[i]
		pods, ok := s.DeploymentPods[d.Name]
		role := CriticalDeployment(d)
		if !ok || role == "" {
			continue
		}
		sp := DeploymentSpread{Namespace: d.Namespace, Name: d.Name, Role: role, Ready: d.Status.ReadyReplicas, Desired: 1, Nodes: []string{}}
		if d.Spec.Replicas != nil {
			sp.Desired = *d.Spec.Replicas
		}
		seen := map[string]bool{}
		ready := 0
		for j := range pods {
			p := &pods[j]
			if p.DeletionTimestamp != nil || p.Spec.NodeName == "" || !podReady(p) {
				continue
			}
			ready++
			if !seen[p.Spec.NodeName] {
				seen[p.Spec.NodeName] = true
				sp.Nodes = append(sp.Nodes, p.Spec.NodeName)
			}
		}
		sort.Strings(sp.Nodes)
		nw.CriticalDeployments = append(nw.CriticalDeployments, sp)
		subject := d.Namespace + "/" + d.Name
		fix := fmt.Sprintf("kubectl -n %s rollout restart deploy/%s", d.Namespace, d.Name)
		switch {
		case ready < 2:
		case len(sp.Nodes) == 1 && schedulable < 2:
			a.add(Warning, "addon.single-node", subject, "all %d ready replicas of %s (%s) run on node %s: losing that node stops %s; once other nodes are Ready, spread them with `%s`",
				ready, role, subject, sp.Nodes[0], role, fix)
		case len(sp.Nodes) == 1:
			a.add(Warning, "addon.single-node", subject, "all %d ready replicas of %s (%s) run on node %s: losing that node stops %s; spread them over the other nodes with `%s`",
				ready, role, subject, sp.Nodes[0], role, fix)
		default:
			a.add(OK, "addon.single-node", subject, "the %d ready replicas of %s (%s) run on %d nodes (%s)", ready, role, subject, len(sp.Nodes), strings.Join(sp.Nodes, ", "))
		}
	}
	sort.Slice(nw.CriticalDeployments, func(i, j int) bool { return nw.CriticalDeployments[i].Name < nw.CriticalDeployments[j].Name })
}

func nodeIsReady(n *corev1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// onlyNode keeps the per-node rows and findings of one node.
func (a *analyzer) onlyNode(name string) {
	r := a.r
	cp := r.ControlPlane[:0]
	for _, c := range r.ControlPlane {
		if c.Node == name {
			cp = append(cp, c)
		}
	}
	r.ControlPlane = cp
	ns := r.Nodes[:0]
	for _, n := range r.Nodes {
		if n.Name == name {
			ns = append(ns, n)
		}
	}
	r.Nodes = ns
	if lb := r.LoadBalancer; lb != nil {
		hs := lb.Hosts[:0]
		for _, h := range lb.Hosts {
			if h.Name == name {
				hs = append(hs, h)
			}
		}
		lb.Hosts = hs
	}
	fs := r.Findings[:0]
	for _, f := range r.Findings {
		if _, isNode := a.nodeAddr[f.Subject]; !isNode || f.Subject == name || f.Check == "endpoint.single-node" {
			fs = append(fs, f)
		}
	}
	r.Findings = fs
}

func (a *analyzer) verdict() {
	r := a.r
	sort.SliceStable(r.Findings, func(i, j int) bool { return r.Findings[i].Severity.rank() > r.Findings[j].Severity.rank() })
	switch r.Worst() {
	case Error:
		r.Verdict = Failing
	case Warning:
		r.Verdict = Degraded
	default:
		r.Verdict = Healthy
	}
	for _, f := range r.Findings {
		if f.Severity != OK {
			r.Reasons = append(r.Reasons, f.Message)
		}
	}
}

// shortURLs drops the query of URLs in an error (an exec URL carries the
// whole command line).
func shortURLs(s string) string {
	return urlQuery().ReplaceAllString(s, "$1?...")
}

var urlQuery = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`(https?://[^\s?"]+)\?[^\s"]*`) })

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

func cmMap(cm *corev1.ConfigMap) map[string]string {
	if cm == nil {
		return nil
	}
	return cm.Data
}
