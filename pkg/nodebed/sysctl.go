package nodebed

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/hacluster/hacluster/pkg/fileutil"
)

// HostSysctls are the kernel settings a kubelet (or kube-proxy) inside a host
// may change on this machine: they are not namespaced, so the hosts share
// them with it. The kubelet sets the first six at start (its "kernel
// tunables"); kube-proxy may raise the conntrack table.
var HostSysctls = []string{
	"kernel/panic",
	"kernel/panic_on_oops",
	"vm/overcommit_memory",
	"vm/panic_on_oom",
	"kernel/keys/root_maxkeys",
	"kernel/keys/root_maxbytes",
	"net/netfilter/nf_conntrack_max",
}

// Sysctl is a recorded value of /proc/sys/<Name>.
type Sysctl struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// sysctlFile in the bed's directory keeps the recorded values, for Remove.
const sysctlFile = "host-sysctls.json"

func saveSysctls(path string, s []Sysctl) error {
	b, err := json.Marshal(s)
	if err != nil {
		return err
	}
	return fileutil.WriteAtomic(path, b, 0o644)
}

func loadSysctls(path string) ([]Sysctl, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var s []Sysctl
	return s, json.Unmarshal(b, &s)
}

func readSysctls() []Sysctl {
	var out []Sysctl
	for _, n := range HostSysctls {
		v, err := os.ReadFile(filepath.Join("/proc/sys", n))
		if err == nil {
			out = append(out, Sysctl{Name: n, Value: strings.TrimSpace(string(v))})
		}
	}
	return out
}

// restoreSysctls writes back every recorded value that changed.
func restoreSysctls(saved []Sysctl, logf func(string, ...any)) error {
	var errs []error
	for _, s := range saved {
		p := filepath.Join("/proc/sys", s.Name)
		v, err := os.ReadFile(p)
		if err != nil || strings.TrimSpace(string(v)) == s.Value {
			continue
		}
		if err := os.WriteFile(p, []byte(s.Value+"\n"), 0o644); err != nil {
			errs = append(errs, fmt.Errorf("nodebed: restore %s to %s (it is %s): %w", strings.ReplaceAll(s.Name, "/", "."), s.Value, strings.TrimSpace(string(v)), err))
			continue
		}
		if logf != nil {
			logf("nodebed: restored %s from %s to %s", strings.ReplaceAll(s.Name, "/", "."), strings.TrimSpace(string(v)), s.Value)
		}
	}
	return errors.Join(errs...)
}
