// Package proxymode finds out how Services are implemented on each node of a
// cluster: the kube-proxy mode configured in its ConfigMap, the mode each
// kube-proxy Pod really runs (from its logs and its /proxyMode endpoint), or
// a kube-proxy replacement such as Cilium; and it switches the mode with a
// rolling restart. It knows nothing of cobra.
package proxymode

import (
	"fmt"
	"regexp"
	"strings"
)

// Mode is a kube-proxy mode.
type Mode string

// The modes kube-proxy knows. Settable lists the Linux ones `set` accepts.
const (
	IPTables    Mode = "iptables"
	IPVS        Mode = "ipvs"
	NFTables    Mode = "nftables"
	KernelSpace Mode = "kernelspace" // Windows
)

// Settable are the modes `proxymode set` accepts.
var Settable = []Mode{IPTables, IPVS, NFTables}

// ParseMode validates a mode given by a user.
func ParseMode(s string) (Mode, error) {
	m := Mode(strings.ToLower(strings.TrimSpace(s)))
	for _, v := range Settable {
		if m == v {
			return m, nil
		}
	}
	return "", fmt.Errorf("unknown proxy mode %q: use iptables, ipvs or nftables", s)
}

// Effective returns the mode kube-proxy on Linux runs for a configured value:
// an empty mode means iptables.
func Effective(configured string) Mode {
	if strings.TrimSpace(configured) == "" {
		return IPTables
	}
	return Mode(strings.ToLower(strings.TrimSpace(configured)))
}

// LogWording documents the start-up lines kube-proxy writes per Kubernetes
// version (cmd/kube-proxy/app/server_linux.go, createProxier). ModeFromLogs
// recognises all of them, in klog text and JSON log format.
var LogWording = []struct {
	Versions string `json:"versions"`
	Lines    string `json:"lines"`
}{
	{"1.33, 1.34", `"Using iptables Proxier" | "Using ipvs Proxier" | "Using nftables Proxier"`},
	{"1.35, 1.36", `same, and after ipvs: "The ipvs proxier is now deprecated and may be removed in a future release. Please use 'nftables' instead."`},
	{"1.37", `same, ipvs: "The ipvs proxier has been deprecated and will be disabled by default in Kubernetes 1.40 ..."; with no mode set: "No kube-proxy mode specified: defaulting to 'iptables'. ..."`},
	{"before 1.23", `"Using iptables Proxier." | "Using ipvs Proxier." (trailing dot, unstructured); very old: "Using iptables proxy" / "Unknown proxy mode \"\", assuming iptables proxy"`},
}

var (
	usingRE     = regexp.MustCompile(`(?i)Using (iptables|ipvs|nftables|kernelspace|winkernel|userspace) (?:Proxier|proxy)`)
	assumingRE  = regexp.MustCompile(`(?i)assuming (iptables|ipvs|nftables) proxy`)
	defaultedRE = regexp.MustCompile(`(?i)No kube-proxy mode specified: defaulting to '(iptables|nftables)'`)
)

// LogEvidence is what ModeFromLogs found.
type LogEvidence struct {
	Mode      Mode   `json:"mode,omitempty"`
	Line      string `json:"line,omitempty"`
	Defaulted bool   `json:"defaulted,omitempty"`
}

// ModeFromLogs finds the proxier kube-proxy started with in its log. The last
// "Using ... Proxier" line wins (the container may log a retried start).
func ModeFromLogs(logs string) LogEvidence {
	var ev LogEvidence
	for _, line := range strings.Split(logs, "\n") {
		if m := usingRE.FindStringSubmatch(line); m != nil {
			ev.Mode = normalizeLogMode(m[1])
			ev.Line = strings.TrimSpace(line)
		} else if m := assumingRE.FindStringSubmatch(line); m != nil {
			ev.Mode, ev.Line, ev.Defaulted = normalizeLogMode(m[1]), strings.TrimSpace(line), true
		}
		if defaultedRE.MatchString(line) {
			ev.Defaulted = true
		}
	}
	return ev
}

func normalizeLogMode(s string) Mode {
	s = strings.ToLower(s)
	if s == "winkernel" {
		return KernelSpace
	}
	return Mode(s)
}

// TradeOff compares the modes, for people choosing one.
type TradeOff struct {
	Mode     Mode   `json:"mode"`
	How      string `json:"how"`
	Good     string `json:"good"`
	Bad      string `json:"bad"`
	Requires string `json:"requires"`
}

// TradeOffs explains iptables vs IPVS (the source article) plus nftables.
func TradeOffs() []TradeOff {
	return []TradeOff{
		{IPTables,
			"one chain per Service and one rule per endpoint in the nat table; a packet walks the Service list, the endpoint is picked by random probability rules",
			"the default on Linux, everywhere, well understood, works with every CNI and NetworkPolicy engine",
			"matching is O(Services) per new connection and every change rewrites large tables: slow to update beyond ~5,000 Services/10,000s of endpoints; random balancing only",
			"iptables (legacy or nft backend) in the kube-proxy image; nothing else"},
		{IPVS,
			"a kernel L4 load balancer: each ClusterIP is bound to the dummy interface kube-ipvs0, endpoints are IPVS real servers; iptables/ipset only for masquerade and filtering",
			"O(1) hash lookups and fast updates for very large clusters; balancing algorithms (rr, lc, sh, ...)",
			"deprecated since 1.35 (nftables is the successor); needs kernel modules; ClusterIPs answer on every port of the node's kube-ipvs0; MetalLB L2 / kube-vip need ipvs.strictARP: true",
			"kernel modules ip_vs, ip_vs_rr, ip_vs_wrr, ip_vs_sh, nf_conntrack and ipset on every node; kube-proxy fails to start without them"},
		{NFTables,
			"one nftables table with verdict maps: Service lookup is a map lookup, updates are incremental transactions",
			"scales like IPVS without its quirks, fast incremental updates; the successor of both (GA in 1.33, planned default)",
			"needs a recent kernel and nft; NodePorts answer only on the node's primary IPs by default; some older tools and CNIs that expect iptables chains do not see its rules",
			"Kubernetes 1.31+ (beta; GA 1.33), Linux kernel 5.13+, nft 1.0.1+ in the kube-proxy image"},
	}
}
