// Package facts reads what a host is, over SSH and read-only, in one round
// trip: OS, kernel, cgroup version, init system, CPUs, memory, addresses and
// MACs, product_uuid, machine-id, clock, swap, SELinux, the kernel features
// Kubernetes needs, sysctls, what is already installed or running, which
// ports are taken, and the resolvers. Preflight judges them; the install
// phases look at them before they change anything.
package facts

import (
	"bufio"
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hacluster/hacluster/pkg/remote"
)

// Facts of one host.
type Facts struct {
	Hostname    string `json:"hostname"`
	OS          string `json:"os"`        // ID VERSION_ID from /etc/os-release, e.g. "debian 12"
	OSPretty    string `json:"osPretty"`  // PRETTY_NAME
	Kernel      string `json:"kernel"`    // uname -r
	Arch        string `json:"arch"`      // uname -m
	CgroupV2    bool   `json:"cgroupV2"`  // /sys/fs/cgroup is cgroup2fs
	Init        string `json:"init"`      // /proc/1/comm
	CPUs        int    `json:"cpus"`      // nproc
	MemoryMiB   int    `json:"memoryMiB"` // MemTotal
	MachineID   string `json:"machineID"`
	ProductUUID string `json:"productUUID"`
	// Clock is the host's time when it answered, and Offset its difference
	// to this machine's clock (half the round trip corrected).
	Clock  time.Time     `json:"clock"`
	Offset time.Duration `json:"offset"`
	// SwapKiB is the swap in use by /proc/swaps (0: none).
	SwapKiB int `json:"swapKiB"`
	// SELinux: "absent", "disabled", "permissive" or "enforcing".
	SELinux string `json:"selinux"`
	// BrNetfilter: /proc/sys/net/bridge exists (module loaded or built in);
	// Overlay: the overlay file system is available.
	BrNetfilter bool `json:"brNetfilter"`
	Overlay     bool `json:"overlay"`
	// Sysctls holds the ones Kubernetes needs, by dotted name ("" = absent).
	Sysctls    map[string]string `json:"sysctls"`
	Interfaces []Interface       `json:"interfaces"`
	// DefaultRouteInterface is the interface of the default IPv4 route.
	DefaultRouteInterface string `json:"defaultRouteInterface"`
	// Installed maps a command to its path ("" = not installed); Active a
	// systemd unit to its state.
	Installed map[string]string `json:"installed"`
	Active    map[string]string `json:"active"`
	// Listening are the TCP ports something listens on.
	Listening []int `json:"listening"`
	// Nameservers of /etc/resolv.conf.
	Nameservers []string `json:"nameservers"`
	// PackageManager: apt-get, dnf, yum, zypper or "".
	PackageManager string `json:"packageManager"`
	// KubeletConf: /etc/kubernetes/kubelet.conf exists (the host is already
	// a node of some cluster).
	KubeletConf bool `json:"kubeletConf"`
	// Cluster is the cluster file's metadata.name that bootstrap wrote to
	// ClusterMarker when it began preparing the host ("" when it never did).
	Cluster string `json:"cluster,omitempty"`
	// CanLowerOOMScore: CAP_SYS_RESOURCE is in the bounding set, so
	// processes (runc for Pod sandboxes) may lower oom_score_adj below 0.
	// Containers run without it (the node bed's hosts), and containerd then
	// needs restrict_oom_score_adj.
	CanLowerOOMScore bool `json:"canLowerOOMScore"`
}

// Interface is one network interface.
type Interface struct {
	Name      string   `json:"name"`
	MAC       string   `json:"mac"`
	Up        bool     `json:"up"`
	Addresses []string `json:"addresses"` // CIDR form, IPv4 and IPv6
}

// Commands looked for, and units whose state is read.
var (
	Commands = []string{"kubeadm", "kubelet", "kubectl", "containerd", "runc", "crictl", "ctr", "haproxy", "keepalived", "conntrack", "socat", "ebtables", "ethtool", "iptables", "nft", "ipset", "ip", "curl", "tar", "sha256sum", "systemctl"}
	Units    = []string{"kubelet", "containerd", "docker", "haproxy", "keepalived", "firewalld", "ufw", "apparmor"}
	Sysctls  = []string{"net.ipv4.ip_forward", "net.bridge.bridge-nf-call-iptables", "net.bridge.bridge-nf-call-ip6tables", "net.ipv6.conf.all.forwarding"}
)

// ClusterMarker is the file on a host that names the cluster bootstrap is
// building there (written before its first change to the host).
const ClusterMarker = "/var/lib/hacluster/cluster"

// script prints "key=value" lines; each probe tolerates its tool's absence.
func script() string {
	var b strings.Builder
	b.WriteString(`export LC_ALL=C
kv() { printf '%s=%s\n' "$1" "$2"; }
. /etc/os-release 2>/dev/null
kv os "${ID:-} ${VERSION_ID:-}"
kv ospretty "${PRETTY_NAME:-}"
kv hostname "$(hostname)"
kv kernel "$(uname -r)"
kv arch "$(uname -m)"
kv cgroupfs "$(stat -fc %T /sys/fs/cgroup 2>/dev/null)"
kv init "$(cat /proc/1/comm 2>/dev/null)"
kv cpus "$(nproc 2>/dev/null)"
kv memkib "$(awk '/^MemTotal:/{print $2}' /proc/meminfo)"
kv machineid "$(cat /etc/machine-id 2>/dev/null)"
kv productuuid "$(cat /sys/class/dmi/id/product_uuid 2>/dev/null)"
kv swapkib "$(awk 'NR>1{s+=$4} END{print s+0}' /proc/swaps 2>/dev/null)"
if command -v getenforce >/dev/null 2>&1; then kv selinux "$(getenforce | tr A-Z a-z)"; else kv selinux absent; fi
[ -d /proc/sys/net/bridge ] && kv brnetfilter yes || kv brnetfilter no
grep -qw overlay /proc/filesystems 2>/dev/null && kv overlay yes || kv overlay no
for n in /sys/class/net/*; do
  i=${n##*/}
  kv iface "$i $(cat $n/address 2>/dev/null) $(cat $n/operstate 2>/dev/null) $(ip -o addr show dev "$i" 2>/dev/null | awk '{printf "%s,", $4}')"
done
kv defaultroute "$(ip -4 route show default 2>/dev/null | awk '{for(i=1;i<NF;i++) if($i=="dev"){print $(i+1); exit}}')"
kv listening "$(ss -Hltn 2>/dev/null | awk '{n=split($4,a,":"); printf "%s,", a[n]}')"
kv nameservers "$(awk '/^nameserver/{printf "%s,", $2}' /etc/resolv.conf 2>/dev/null)"
kv capbnd "$(awk '/^CapBnd:/{print $2}' /proc/self/status)"
[ -e /etc/kubernetes/kubelet.conf ] && kv kubeletconf yes || kv kubeletconf no
kv cluster "$(head -c 253 ` + ClusterMarker + ` 2>/dev/null)"
for p in apt-get dnf yum zypper; do if command -v $p >/dev/null 2>&1; then kv pkg $p; break; fi; done
`)
	for _, s := range Sysctls {
		fmt.Fprintf(&b, "kv sysctl.%s \"$(cat /proc/sys/%s 2>/dev/null)\"\n", s, strings.ReplaceAll(s, ".", "/"))
	}
	for _, c := range Commands {
		fmt.Fprintf(&b, "kv cmd.%s \"$(command -v %s 2>/dev/null)\"\n", c, c)
	}
	for _, u := range Units {
		fmt.Fprintf(&b, "kv unit.%s \"$(systemctl is-active %s.service 2>/dev/null)\"\n", u, u)
	}
	return b.String()
}

// Gather reads the facts of the host behind c. It runs as root (sudo) for
// product_uuid, which only root may read.
func Gather(ctx context.Context, c *remote.Conn) (*Facts, error) {
	out, err := c.Output(ctx, script(), true)
	if err != nil {
		return nil, err
	}
	f, err := Parse(out)
	if err != nil {
		return nil, fmt.Errorf("%s: facts: %w", c.Target.Name, err)
	}
	// The clock on its own, so that the round trip is short: the host read
	// it about half-way, give or take half the round trip.
	start := time.Now()
	clock, err := c.Output(ctx, "date +%s.%N", false)
	rtt := time.Since(start)
	if err != nil {
		return nil, err
	}
	if sec, err := strconv.ParseFloat(strings.TrimSpace(clock), 64); err == nil {
		s := int64(sec)
		f.Clock = time.Unix(s, int64((sec-float64(s))*1e9))
		f.Offset = f.Clock.Sub(start.Add(rtt / 2))
	}
	return f, nil
}

// Parse reads the script's output.
func Parse(out string) (*Facts, error) {
	f := &Facts{Sysctls: map[string]string{}, Installed: map[string]string{}, Active: map[string]string{}}
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	seen := 0
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), "=")
		if !ok {
			continue
		}
		seen++
		v = strings.TrimSpace(v)
		switch {
		case k == "os":
			f.OS = v
		case k == "ospretty":
			f.OSPretty = v
		case k == "hostname":
			f.Hostname = v
		case k == "kernel":
			f.Kernel = v
		case k == "arch":
			f.Arch = v
		case k == "cgroupfs":
			f.CgroupV2 = v == "cgroup2fs"
		case k == "init":
			f.Init = v
		case k == "cpus":
			f.CPUs, _ = strconv.Atoi(v)
		case k == "memkib":
			kib, _ := strconv.Atoi(v)
			f.MemoryMiB = kib / 1024
		case k == "machineid":
			f.MachineID = v
		case k == "productuuid":
			f.ProductUUID = strings.ToLower(v)
		case k == "swapkib":
			f.SwapKiB, _ = strconv.Atoi(v)
		case k == "selinux":
			f.SELinux = v
		case k == "brnetfilter":
			f.BrNetfilter = v == "yes"
		case k == "overlay":
			f.Overlay = v == "yes"
		case k == "iface":
			fs := strings.Fields(v)
			if len(fs) >= 1 {
				i := Interface{Name: fs[0]}
				if len(fs) >= 2 {
					i.MAC = fs[1]
				}
				if len(fs) >= 3 {
					i.Up = fs[2] == "up" || fs[2] == "unknown"
				}
				if len(fs) >= 4 {
					i.Addresses = list(fs[3])
				}
				f.Interfaces = append(f.Interfaces, i)
			}
		case k == "defaultroute":
			f.DefaultRouteInterface = v
		case k == "listening":
			for _, p := range list(v) {
				if n, err := strconv.Atoi(p); err == nil && !slices.Contains(f.Listening, n) {
					f.Listening = append(f.Listening, n)
				}
			}
		case k == "nameservers":
			f.Nameservers = list(v)
		case k == "pkg":
			f.PackageManager = v
		case k == "kubeletconf":
			f.KubeletConf = v == "yes"
		case k == "cluster":
			f.Cluster = strings.TrimSpace(v)
		case k == "capbnd":
			if bnd, err := strconv.ParseUint(v, 16, 64); err == nil {
				f.CanLowerOOMScore = bnd&(1<<24) != 0 // CAP_SYS_RESOURCE
			}
		case strings.HasPrefix(k, "sysctl."):
			f.Sysctls[strings.TrimPrefix(k, "sysctl.")] = v
		case strings.HasPrefix(k, "cmd."):
			f.Installed[strings.TrimPrefix(k, "cmd.")] = v
		case strings.HasPrefix(k, "unit."):
			if v == "" {
				v = "inactive"
			}
			f.Active[strings.TrimPrefix(k, "unit.")] = v
		}
	}
	if seen == 0 || f.Hostname == "" {
		return nil, fmt.Errorf("no facts in the output (is /bin/sh a POSIX shell?)")
	}
	return f, nil
}

func list(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// InterfaceFor returns the interface holding addr, or nil.
func (f *Facts) InterfaceFor(addr netip.Addr) (*Interface, netip.Prefix) {
	for i := range f.Interfaces {
		for _, a := range f.Interfaces[i].Addresses {
			p, err := netip.ParsePrefix(a)
			if err == nil && p.Addr() == addr {
				return &f.Interfaces[i], p.Masked()
			}
		}
	}
	return nil, netip.Prefix{}
}

// Networks are the subnets of the host's addresses (loopback excluded).
func (f *Facts) Networks() []netip.Prefix {
	var out []netip.Prefix
	for _, i := range f.Interfaces {
		for _, a := range i.Addresses {
			p, err := netip.ParsePrefix(a)
			if err == nil && !p.Addr().IsLoopback() && !p.Addr().IsLinkLocalUnicast() {
				out = append(out, p.Masked())
			}
		}
	}
	return out
}

// Listens reports whether something listens on TCP port.
func (f *Facts) Listens(port int) bool { return slices.Contains(f.Listening, port) }
