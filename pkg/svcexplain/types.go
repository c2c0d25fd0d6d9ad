// Package svcexplain explains Kubernetes Services: the four Service types in
// general (Types) and, for live Services, how traffic reaches them and which
// common mistakes they contain (Explain). It knows nothing of cobra.
package svcexplain

// TypeInfo describes one kind of Service. The json field names are stable.
type TypeInfo struct {
	Type        string   `json:"type"`
	BuildsOn    string   `json:"buildsOn,omitempty"`
	Creates     []string `json:"creates"`
	ReachableBy string   `json:"reachableBy"`
	UseWhen     string   `json:"useWhen"`
	Cost        string   `json:"cost"`
	Example     string   `json:"example"`
}

// Types returns the explanation of ClusterIP, headless, NodePort,
// LoadBalancer and ExternalName Services, in that order: each of the first
// three is part of the next.
func Types() []TypeInfo {
	return []TypeInfo{
		{
			Type: "ClusterIP",
			Creates: []string{
				"a virtual IP from the service CIDR (no interface owns it)",
				"a DNS A/AAAA record <name>.<namespace>.svc.<cluster-domain>",
				"EndpointSlices listing the ready Pods that match the selector",
				"kube-proxy (or its replacement) rules on every node that DNAT the IP:port to a Pod",
			},
			ReachableBy: "Pods and nodes inside the cluster only",
			UseWhen:     "the default: one service calls another inside the cluster",
			Cost:        "free; one set of proxy rules per node (iptables: rules grow with Services x endpoints)",
			Example:     "kubectl create service clusterip web --tcp=80:8080",
		},
		{
			Type:     "Headless (ClusterIP: None)",
			BuildsOn: "ClusterIP (without the virtual IP)",
			Creates: []string{
				"no virtual IP and no proxy rules",
				"DNS records that return the Pod IPs directly, plus <pod>.<name>.<namespace>.svc records for StatefulSets",
			},
			ReachableBy: "Pods inside the cluster, straight to Pod IPs; the client chooses the Pod",
			UseWhen:     "StatefulSets (databases, etcd, Kafka) and clients that balance themselves",
			Cost:        "free; no load balancing: DNS caching in clients can pin them to one Pod",
			Example:     "kubectl create service clusterip db --clusterip=None --tcp=3306:3306",
		},
		{
			Type:     "NodePort",
			BuildsOn: "ClusterIP",
			Creates: []string{
				"everything a ClusterIP Service creates",
				"a port from the node-port range (default 30000-32767) opened on EVERY node's addresses",
			},
			ReachableBy: "anything that can reach a node IP: <any-node-ip>:<nodePort>",
			UseWhen:     "bare metal without a load balancer, labs, or as the backend of an external load balancer you manage",
			Cost:        "free, but clients must know node IPs and a high port; a dead node breaks clients pinned to it; ports are a shared, limited range",
			Example:     "kubectl create service nodeport web --tcp=80:8080 --node-port=30080",
		},
		{
			Type:     "LoadBalancer",
			BuildsOn: "NodePort (and so ClusterIP)",
			Creates: []string{
				"everything a NodePort Service creates (unless allocateLoadBalancerNodePorts: false)",
				"an external load balancer provisioned by a controller (cloud-controller-manager, MetalLB, kube-vip, ...) whose address appears in status.loadBalancer.ingress",
			},
			ReachableBy: "clients outside the cluster through the load balancer's IP or hostname",
			UseWhen:     "production traffic from outside, one stable address per Service",
			Cost:        "a cloud load balancer per Service (money) or an address pool to manage on bare metal; without a controller it stays <pending> forever",
			Example:     "kubectl create service loadbalancer web --tcp=80:8080",
		},
		{
			Type: "ExternalName",
			Creates: []string{
				"only a DNS CNAME record <name>.<namespace>.svc -> spec.externalName",
				"no IP, no proxy rules, no endpoints, no port mapping",
			},
			ReachableBy: "Pods inside the cluster, resolving to an outside DNS name",
			UseWhen:     "give an external database or API an in-cluster name you can later switch to a real Service",
			Cost:        "free; TLS and HTTP Host headers still see the in-cluster name; an IP address as target does not work (a CNAME needs a name)",
			Example:     "kubectl create service externalname mydb --external-name db.example.com",
		},
	}
}
