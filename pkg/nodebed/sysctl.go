package nodebed

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"

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

// The values a bed restores are the machine's own, recorded once for all
// beds: a bed that started while another bed's kubelets had already changed
// them would otherwise "restore" the kubelet's values. The record lives in
// the temporary directory with the beds that use it (by process), under a
// lock; it is made when no live bed is registered and removed when the last
// one leaves. A bed whose process died is dropped from it, and its values
// stay the recorded ones.
const (
	registryFile = "hacluster-nodebed-sysctls.json"
	registryLock = "hacluster-nodebed-sysctls.lock"
)

type registry struct {
	Pristine []Sysctl       `json:"pristine"`
	Beds     map[string]int `json:"beds"` // bed ID -> PID of its process
}

// withRegistry runs fn on the record under the lock, then saves it, or
// removes it when no bed is left.
func withRegistry(fn func(r *registry) error) error {
	dir := os.TempDir()
	lock, err := os.OpenFile(filepath.Join(dir, registryLock), os.O_CREATE|os.O_RDWR, 0o666)
	if err != nil {
		return err
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return err
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN)
	path := filepath.Join(dir, registryFile)
	r := &registry{}
	if b, err := os.ReadFile(path); err == nil {
		_ = json.Unmarshal(b, r)
	}
	if r.Beds == nil {
		r.Beds = map[string]int{}
	}
	for id, pid := range r.Beds {
		if pid <= 0 || syscall.Kill(pid, 0) != nil {
			delete(r.Beds, id)
		}
	}
	if err := fn(r); err != nil {
		return err
	}
	if len(r.Beds) == 0 {
		if err := os.Remove(path); err != nil && !os.IsNotExist(err) {
			return err
		}
		return nil
	}
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	return fileutil.WriteAtomic(path, b, 0o644)
}

// joinSysctls registers bed id; with no record yet, it records the current
// values as the machine's own.
func joinSysctls(id string) error {
	return withRegistry(func(r *registry) error {
		if len(r.Pristine) == 0 {
			r.Pristine = readSysctls()
		}
		r.Beds[id] = os.Getpid()
		return nil
	})
}

// leaveSysctls restores the machine's own values and unregisters bed id.
func leaveSysctls(id string, logf func(string, ...any)) error {
	return withRegistry(func(r *registry) error {
		delete(r.Beds, id)
		return restoreSysctls(r.Pristine, logf)
	})
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
