#!/usr/bin/env bash
# Sourced by the bench scripts: the host preparation a person types by hand
# (the article's steps, adapted to bare hosts and to the upstream in a box):
# swap, modules, sysctls, packages, containerd + runc + CNI plugins + crictl
# from their release archives with curl, kubelet/kubeadm/kubectl, the
# kubelet's units. Needs the nodebed.env variables.

# hand_prep IP LOG [PACKAGES...]: prepares the host at IP over ssh as root,
# with the extra packages (haproxy keepalived on a control plane).
hand_prep() {
	local ip=$1 logf=$2
	shift 2
	local lb="$*"
	local SSH=(ssh -i "$NODEBED_KEY" -o UserKnownHostsFile="$NODEBED_KNOWN_HOSTS" -o BatchMode=yes -o LogLevel=ERROR)
	local U=$NODEBED_UPSTREAM K=$K8S_VERSION C=${CONTAINERD_VERSION#v}
	local gh=$U/github.com
	"${SSH[@]}" "root@$ip" bash -s >"$logf" 2>&1 <<EOF || { tail -20 "$logf" >&2; return 1; }
set -e
swapoff -a; sed -i '/ swap / s/^/#/' /etc/fstab
printf 'overlay\nbr_netfilter\n' >/etc/modules-load.d/k8s.conf
# (the bed's hosts share this machine's kernel: no /lib/modules, the modules are loaded already)
modprobe overlay 2>/dev/null || true; modprobe br_netfilter 2>/dev/null || true
printf 'net.bridge.bridge-nf-call-iptables = 1\nnet.bridge.bridge-nf-call-ip6tables = 1\nnet.ipv4.ip_forward = 1\n' >/etc/sysctl.d/k8s.conf
# only this file: sysctl --system would apply Debian's kernel.* files to the shared kernel
sysctl -q -p /etc/sysctl.d/k8s.conf
apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends conntrack socat ebtables $lb >/dev/null
cd /tmp
curl -fsSL $gh/containerd/containerd/releases/download/v$C/containerd-$C-linux-amd64.tar.gz | tar Cxz /usr/local
curl -fsSLo /usr/local/sbin/runc $gh/opencontainers/runc/releases/download/$RUNC_VERSION/runc.amd64 && chmod 755 /usr/local/sbin/runc
mkdir -p /opt/cni/bin && curl -fsSL $gh/containernetworking/plugins/releases/download/$CNI_PLUGINS_VERSION/cni-plugins-linux-amd64-$CNI_PLUGINS_VERSION.tgz | tar Cxz /opt/cni/bin
curl -fsSL $gh/kubernetes-sigs/cri-tools/releases/download/$CRICTL_VERSION/crictl-$CRICTL_VERSION-linux-amd64.tar.gz | tar Cxz /usr/local/bin
for b in kubelet kubeadm kubectl; do curl -fsSLo /usr/bin/\$b $U/dl.k8s.io/release/$K/bin/linux/amd64/\$b && chmod 755 /usr/bin/\$b; done
PAUSE=\$(kubeadm config images list --kubernetes-version $K 2>/dev/null | grep /pause:)
mkdir -p /etc/containerd /etc/containerd/certs.d/registry.k8s.io /etc/containerd/certs.d/ghcr.io
containerd config default >/etc/containerd/config.toml
sed -i "s/SystemdCgroup = false/SystemdCgroup = true/; s#sandbox = .*#sandbox = '\$PAUSE'#; s#config_path = ''#config_path = '/etc/containerd/certs.d'#; s/restrict_oom_score_adj = false/restrict_oom_score_adj = true/" /etc/containerd/config.toml
for r in registry.k8s.io ghcr.io; do printf 'server = "https://%s"\n[host."%s/v2/%s"]\n  capabilities = ["pull", "resolve"]\n  override_path = true\n' \$r $U \$r >/etc/containerd/certs.d/\$r/hosts.toml; done
cat >/etc/systemd/system/containerd.service <<'X'
[Unit]
Description=containerd container runtime
After=network.target
[Service]
ExecStartPre=-/sbin/modprobe overlay
ExecStart=/usr/local/bin/containerd
Type=notify
Delegate=yes
KillMode=process
Restart=always
LimitNPROC=infinity
LimitCORE=infinity
TasksMax=infinity
[Install]
WantedBy=multi-user.target
X
printf 'runtime-endpoint: unix:///run/containerd/containerd.sock\nimage-endpoint: unix:///run/containerd/containerd.sock\n' >/etc/crictl.yaml
cat >/etc/systemd/system/kubelet.service <<'X'
[Unit]
Description=kubelet
Wants=network-online.target
After=network-online.target containerd.service
[Service]
ExecStart=/usr/bin/kubelet
Restart=always
StartLimitInterval=0
RestartSec=10
[Install]
WantedBy=multi-user.target
X
mkdir -p /etc/systemd/system/kubelet.service.d
cat >/etc/systemd/system/kubelet.service.d/10-kubeadm.conf <<'X'
[Service]
Environment="KUBELET_KUBECONFIG_ARGS=--bootstrap-kubeconfig=/etc/kubernetes/bootstrap-kubelet.conf --kubeconfig=/etc/kubernetes/kubelet.conf"
Environment="KUBELET_CONFIG_ARGS=--config=/var/lib/kubelet/config.yaml"
EnvironmentFile=-/var/lib/kubelet/kubeadm-flags.env
ExecStart=
ExecStart=/usr/bin/kubelet \$KUBELET_KUBECONFIG_ARGS \$KUBELET_CONFIG_ARGS \$KUBELET_KUBEADM_ARGS
X
systemctl daemon-reload && systemctl enable --now containerd && systemctl enable kubelet
until crictl info >/dev/null 2>&1; do sleep 0.3; done
EOF
}
