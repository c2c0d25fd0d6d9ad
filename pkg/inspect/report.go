// Package inspect reads an HA Kubernetes control plane through the API and
// judges it: static-pod components per control-plane node, leader leases,
// API server health checks and serving certificate, etcd quorum, the HA
// endpoint, node versions against the skew policy, and the networking
// add-ons. It knows nothing of cobra: Collect gathers a Snapshot with a fixed
// number of parallel, paginated requests and Analyze turns it into a Report.
//
// The JSON field names of Report are a stable interface for scripts
// (documented in the README, section "inspect").
package inspect

import "time"

// Severity of a Finding.
type Severity string

const (
	OK      Severity = "ok"
	Warning Severity = "warning"
	Error   Severity = "error"
)

func (s Severity) rank() int {
	switch s {
	case Error:
		return 2
	case Warning:
		return 1
	}
	return 0
}

// AtLeast reports whether s is as severe as t or more.
func (s Severity) AtLeast(t Severity) bool { return s.rank() >= t.rank() }

// Verdicts.
const (
	Healthy  = "Healthy"
	Degraded = "Degraded"
	Failing  = "Failing"
)

// APIVersion names the schema of Report for scripts.
const APIVersion = "hacluster.io/v1alpha1"

// Report is the result of an inspection; its JSON form is what
// `inspect components -o json` prints.
type Report struct {
	APIVersion   string        `json:"apiVersion"`
	Kind         string        `json:"kind"`
	Cluster      ClusterInfo   `json:"cluster"`
	ControlPlane []Component   `json:"controlPlane"`
	Leaders      []Leader      `json:"leaders"`
	APIServer    APIServerInfo `json:"apiServer"`
	Etcd         EtcdInfo      `json:"etcd"`
	Endpoint     EndpointInfo  `json:"endpoint"`
	// LoadBalancer is read over SSH with a cluster file (-f); nil without.
	LoadBalancer *LoadBalancerInfo `json:"loadBalancer,omitempty"`
	NodeSummary  NodeSummary       `json:"nodeSummary"`
	Nodes        []Node            `json:"nodes"`
	Network      NetworkInfo       `json:"network"`
	Findings     []Finding         `json:"findings"`
	Notes        []string          `json:"notes"`
	Verdict      string            `json:"verdict"`
	Reasons      []string          `json:"reasons"`
	Stats        Stats             `json:"stats"`
}

// ClusterInfo is the header, like `kubectl cluster-info`.
type ClusterInfo struct {
	Server              string `json:"server"`
	KubernetesVersion   string `json:"kubernetesVersion"`
	CoreDNS             string `json:"coreDNS"`
	ManagedControlPlane bool   `json:"managedControlPlane"`
}

// Component is one control-plane component on one control-plane node, from
// its static-pod mirror Pod. Present is false when the Pod is missing.
type Component struct {
	Node      string     `json:"node"`
	Name      string     `json:"component"`
	Present   bool       `json:"present"`
	Pod       string     `json:"pod,omitempty"`
	Ready     bool       `json:"ready"`
	Restarts  int32      `json:"restarts"`
	Image     string     `json:"image,omitempty"`
	Version   string     `json:"version,omitempty"`
	CreatedAt *time.Time `json:"createdAt,omitempty"`
}

// Leader is the holder of a leader-election Lease.
type Leader struct {
	Lease                string     `json:"lease"`
	Found                bool       `json:"found"`
	Holder               string     `json:"holder,omitempty"`
	Node                 string     `json:"node,omitempty"`
	RenewTime            *time.Time `json:"renewTime,omitempty"`
	SecondsSinceRenewal  int64      `json:"secondsSinceRenewal"`
	LeaseDurationSeconds int32      `json:"leaseDurationSeconds"`
	Fresh                bool       `json:"fresh"`
}

// HealthCheck is one line of /readyz?verbose or /livez?verbose.
type HealthCheck struct {
	Name    string `json:"name"`
	OK      bool   `json:"ok"`
	Message string `json:"message,omitempty"`
}

// APIServerInfo is what the API servers say about themselves.
type APIServerInfo struct {
	Readyz       []HealthCheck `json:"readyz"`
	Livez        []HealthCheck `json:"livez"`
	Registered   int           `json:"registeredEndpoints"`
	Addresses    []string      `json:"addresses"`
	Certificates []Certificate `json:"certificates"`
}

// Certificate is the serving certificate seen when TLS-dialling Target.
// Via says why Target was dialled: "kubeconfig" (the server of your
// kubeconfig), "controlPlaneEndpoint" (the VIP or load balancer), or one API
// server's own address ("advertise-address" of its Pod, "endpointslice").
// Server names the API server's node; AnsweredBy, for the kubeconfig and
// the endpoint rows, the API server whose certificate came back (the same
// SHA-256 as the one read at its own address; "" when none matched).
type Certificate struct {
	Target         string    `json:"target"`
	Via            string    `json:"via"`
	Server         string    `json:"server,omitempty"`
	AnsweredBy     string    `json:"answeredBy,omitempty"`
	Reachable      bool      `json:"reachable"`
	Error          string    `json:"error,omitempty"`
	Subject        string    `json:"subject,omitempty"`
	NotAfter       time.Time `json:"notAfter,omitempty"`
	DaysLeft       int       `json:"daysLeft"`
	DNSNames       []string  `json:"dnsNames,omitempty"`
	IPAddresses    []string  `json:"ipAddresses,omitempty"`
	SHA256         string    `json:"sha256,omitempty"`
	CoversEndpoint bool      `json:"coversEndpoint"`
	// CoversNode: the SANs include the address the server was dialled at
	// (its advertise address); only for rows of one API server.
	CoversNode *bool `json:"coversNode,omitempty"`
}

// EtcdInfo describes the etcd cluster as far as the API shows it: stacked
// members are the etcd static pods on the control-plane nodes.
// ToleratesFailures counts from the members that are up (1 of 3 down: 0);
// ToleratesFailuresAllUp is what the member count allows when all are up.
type EtcdInfo struct {
	External               bool     `json:"external"`
	ExternalEndpoints      []string `json:"externalEndpoints,omitempty"`
	Members                int      `json:"members"`
	ReadyMembers           int      `json:"readyMembers"`
	Quorum                 int      `json:"quorum"`
	ToleratesFailures      int      `json:"toleratesFailures"`
	ToleratesFailuresAllUp int      `json:"toleratesFailuresAllUp"`
	MemberNodes            []string `json:"memberNodes"`
	// Source says where the members were read: etcd itself ("etcdctl in
	// kube-system/etcd-cp-1 (pods/exec)") or "etcd static Pods" (a guess:
	// a stale member is invisible there).
	Source string `json:"source,omitempty"`
	// MemberList is etcd's own member list, when it could be read.
	MemberList []EtcdMember `json:"memberList,omitempty"`
}

// EndpointInfo is the HA endpoint (kubeadm's controlPlaneEndpoint).
type EndpointInfo struct {
	ControlPlaneEndpoint string `json:"controlPlaneEndpoint"`
	Host                 string `json:"host,omitempty"`
	Port                 string `json:"port,omitempty"`
	OnNode               string `json:"onNode,omitempty"`
	Reachable            *bool  `json:"reachable,omitempty"`
	ReachError           string `json:"reachError,omitempty"`
	ClusterInfoServer    string `json:"clusterInfoServer,omitempty"`
	MatchesClusterInfo   *bool  `json:"matchesClusterInfo,omitempty"`
	KubeconfigServer     string `json:"kubeconfigServer"`
}

// NodeSummary counts nodes.
type NodeSummary struct {
	Total         int `json:"total"`
	Ready         int `json:"ready"`
	ControlPlanes int `json:"controlPlanes"`
	Workers       int `json:"workers"`
}

// Node is one node with its versions and its skew against the API server.
type Node struct {
	Name             string   `json:"name"`
	Roles            []string `json:"roles"`
	Ready            bool     `json:"ready"`
	InternalIP       string   `json:"internalIP,omitempty"`
	KubeletVersion   string   `json:"kubeletVersion"`
	ContainerRuntime string   `json:"containerRuntime"`
	Skew             string   `json:"skew"`
	SkewOK           bool     `json:"skewOK"`
	Taints           []string `json:"taints"`
}

// NetworkInfo covers kube-proxy, the CNI, CoreDNS and metrics-server.
type NetworkInfo struct {
	KubeProxyDeployed bool       `json:"kubeProxyDeployed"`
	KubeProxyMode     string     `json:"kubeProxyMode,omitempty"`
	KubeProxyReady    string     `json:"kubeProxyReady,omitempty"`
	CNI               []string   `json:"cni"`
	CoreDNS           AddonState `json:"coreDNS"`
	MetricsServer     AddonState `json:"metricsServer"`
	// CriticalDeployments are the kube-system Deployments the cluster's
	// availability rests on (CoreDNS, metrics-server, the CNI's controllers)
	// with 2 or more ready replicas, and the nodes those replicas run on.
	CriticalDeployments []DeploymentSpread `json:"criticalDeployments"`
}

// DeploymentSpread is where the ready replicas of a Deployment run.
type DeploymentSpread struct {
	Namespace string   `json:"namespace"`
	Name      string   `json:"name"`
	Role      string   `json:"role"`
	Ready     int32    `json:"ready"`
	Desired   int32    `json:"desired"`
	Nodes     []string `json:"nodes"` // distinct nodes of the ready replicas, sorted
}

// AddonState is whether an add-on is there and working.
type AddonState struct {
	Present bool   `json:"present"`
	Ready   int32  `json:"ready"`
	Desired int32  `json:"desired"`
	Version string `json:"version,omitempty"`
	Status  string `json:"status,omitempty"`
}

// Finding is one judged check. Check is a stable identifier (see the README).
type Finding struct {
	Severity Severity `json:"severity"`
	Check    string   `json:"check"`
	Subject  string   `json:"subject,omitempty"`
	Message  string   `json:"message"`
}

// Stats are the cost of the inspection.
type Stats struct {
	APIRequests    int64 `json:"apiRequests"`
	DurationMillis int64 `json:"durationMillis"`
}

// Worst returns the most severe severity among the findings.
func (r *Report) Worst() Severity {
	w := OK
	for _, f := range r.Findings {
		if f.Severity.rank() > w.rank() {
			w = f.Severity
		}
	}
	return w
}
