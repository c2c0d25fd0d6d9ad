// Package replay runs the manifests `export k8s` writes on a Docker engine,
// the way a kubelet would run their Pods, for tests that have no Kubernetes
// cluster: one container per StatefulSet and Deployment (one replica), with
// the Pod's image, command and args, its environment (values and
// secretKeyRef/configMapKeyRef resolved from the exported objects), the
// files its Secret and ConfigMap volumes would mount placed at their
// mountPaths (subPath: the one file; read-only, with defaultMode), a fresh
// volume for each PVC template and emptyDir, the security context's user,
// read-only root filesystem, dropped capabilities and no-new-privileges, on
// one network where the name of every Service that selects the Pod is a
// network alias. Every container port is published on 127.0.0.1.
//
// What it cannot replay it refuses with an error instead of approximating:
// a Service port that differs from its target port (an alias cannot remap
// ports), more than one container per Pod, other volume kinds, $(VAR)
// references in env values. It needs a local engine: volume files are bind
// mounts of host files.
package replay

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"

	"github.com/hacluster/hacluster/pkg/dockertest"
)

// Workload is a StatefulSet or Deployment's Pod template.
type Workload struct {
	Kind, Name string
	Template   corev1.PodTemplateSpec
	Claims     []corev1.PersistentVolumeClaim
}

// Objects are the manifests of one folder.
type Objects struct {
	Secrets    map[string]*corev1.Secret
	ConfigMaps map[string]*corev1.ConfigMap
	Services   []*corev1.Service
	Workloads  []Workload
}

// Load reads every *.yaml file of dir (one object each, as export k8s writes them).
func Load(dir string) (*Objects, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil {
		return nil, err
	}
	sort.Strings(files)
	o := &Objects{Secrets: map[string]*corev1.Secret{}, ConfigMaps: map[string]*corev1.ConfigMap{}}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		var tm struct{ Kind string }
		if err := yaml.Unmarshal(b, &tm); err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
		decode := func(v any) error {
			if err := yaml.UnmarshalStrict(b, v); err != nil {
				return fmt.Errorf("%s: %w", f, err)
			}
			return nil
		}
		switch tm.Kind {
		case "Secret":
			var s corev1.Secret
			if err := decode(&s); err != nil {
				return nil, err
			}
			o.Secrets[s.Name] = &s
		case "ConfigMap":
			var c corev1.ConfigMap
			if err := decode(&c); err != nil {
				return nil, err
			}
			o.ConfigMaps[c.Name] = &c
		case "Service":
			var s corev1.Service
			if err := decode(&s); err != nil {
				return nil, err
			}
			o.Services = append(o.Services, &s)
		case "StatefulSet":
			var s appsv1.StatefulSet
			if err := decode(&s); err != nil {
				return nil, err
			}
			o.Workloads = append(o.Workloads, Workload{Kind: tm.Kind, Name: s.Name, Template: s.Spec.Template, Claims: s.Spec.VolumeClaimTemplates})
		case "Deployment":
			var d appsv1.Deployment
			if err := decode(&d); err != nil {
				return nil, err
			}
			o.Workloads = append(o.Workloads, Workload{Kind: tm.Kind, Name: d.Name, Template: d.Spec.Template})
		default:
			return nil, fmt.Errorf("%s: replay does not know kind %q", f, tm.Kind)
		}
	}
	return o, nil
}

// Workload returns the workload of that kind and name.
func (o *Objects) Workload(kind, name string) (*Workload, error) {
	for i := range o.Workloads {
		if o.Workloads[i].Kind == kind && o.Workloads[i].Name == name {
			return &o.Workloads[i], nil
		}
	}
	return nil, fmt.Errorf("no %s %s among the manifests", kind, name)
}

// Pod is a replayed Pod.
type Pod struct {
	*dockertest.Container
	Workload *Workload
	// Aliases are the Service names it answers to on the network.
	Aliases []string
	// Ports maps a container port name (or number) to its 127.0.0.1 address.
	Ports map[string]string
	// Files are the mounted files: container path -> content.
	Files map[string][]byte
}

// Start runs the workload's Pod on net. Names of the containers and
// volumes it creates start with prefix.
func (o *Objects) Start(t testing.TB, env *dockertest.Env, w *Workload, net, prefix string) *Pod {
	t.Helper()
	if h := os.Getenv("DOCKER_HOST"); h != "" && !strings.HasPrefix(h, "unix://") {
		t.Skipf("replay bind-mounts volume files from this machine: DOCKER_HOST=%s is not local", h)
	}
	p, err := o.start(t, env, w, net, prefix)
	if err != nil {
		t.Fatalf("replay %s %s: %v", w.Kind, w.Name, err)
	}
	return p
}

func (o *Objects) start(t testing.TB, env *dockertest.Env, w *Workload, netName, prefix string) (*Pod, error) {
	spec := w.Template.Spec
	if len(spec.Containers) != 1 || len(spec.InitContainers) != 0 {
		return nil, fmt.Errorf("%d containers, %d init containers: replay runs exactly one container", len(spec.Containers), len(spec.InitContainers))
	}
	c := spec.Containers[0]
	p := &Pod{Workload: w, Ports: map[string]string{}, Files: map[string][]byte{}}

	// Service names as aliases; an alias cannot remap a port.
	for _, svc := range o.Services {
		if len(svc.Spec.Selector) == 0 || !selects(svc.Spec.Selector, w.Template.Labels) {
			continue
		}
		for _, sp := range svc.Spec.Ports {
			target, err := containerPort(c, sp.TargetPort, sp.Port)
			if err != nil {
				return nil, fmt.Errorf("service %s: %w", svc.Name, err)
			}
			if target != sp.Port {
				return nil, fmt.Errorf("service %s: port %d targets %d: replay cannot remap ports", svc.Name, sp.Port, target)
			}
		}
		p.Aliases = append(p.Aliases, svc.Name)
	}

	envVars, err := o.env(c)
	if err != nil {
		return nil, err
	}

	// Volumes: Secret and ConfigMap files on the host, PVCs and emptyDirs as
	// fresh named volumes.
	hostDir := t.TempDir()
	type vol struct {
		dir    string // host folder with the files, "" for a named volume
		volume string
	}
	vols := map[string]vol{}
	for _, v := range spec.Volumes {
		var files map[string][]byte
		var mode int32 = 0o644
		var items []corev1.KeyToPath
		switch {
		case v.Secret != nil:
			if files, err = o.data("Secret", v.Secret.SecretName); err != nil {
				return nil, fmt.Errorf("volume %s: %w", v.Name, err)
			}
			items = v.Secret.Items
			if v.Secret.DefaultMode != nil {
				mode = *v.Secret.DefaultMode
			}
		case v.ConfigMap != nil:
			if files, err = o.data("ConfigMap", v.ConfigMap.Name); err != nil {
				return nil, fmt.Errorf("volume %s: %w", v.Name, err)
			}
			items = v.ConfigMap.Items
			if v.ConfigMap.DefaultMode != nil {
				mode = *v.ConfigMap.DefaultMode
			}
		case v.EmptyDir != nil:
			vols[v.Name] = vol{volume: env.Volume(t, prefix+"-"+v.Name)}
			continue
		default:
			return nil, fmt.Errorf("volume %s: replay knows Secret, ConfigMap and emptyDir volumes only", v.Name)
		}
		dir := filepath.Join(hostDir, v.Name)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, err
		}
		if err := os.Chmod(dir, 0o755); err != nil {
			return nil, err
		}
		write := func(rel string, data []byte, m int32) error {
			f := filepath.Join(dir, filepath.FromSlash(rel))
			if err := os.MkdirAll(filepath.Dir(f), 0o755); err != nil {
				return err
			}
			if err := os.WriteFile(f, data, os.FileMode(m)); err != nil {
				return err
			}
			return os.Chmod(f, os.FileMode(m))
		}
		if len(items) > 0 {
			for _, it := range items {
				data, ok := files[it.Key]
				if !ok {
					return nil, fmt.Errorf("volume %s: no key %q", v.Name, it.Key)
				}
				m := mode
				if it.Mode != nil {
					m = *it.Mode
				}
				if err := write(it.Path, data, m); err != nil {
					return nil, err
				}
			}
		} else {
			for k, data := range files {
				if err := write(k, data, mode); err != nil {
					return nil, err
				}
			}
		}
		vols[v.Name] = vol{dir: dir}
	}
	for _, claim := range w.Claims {
		vols[claim.Name] = vol{volume: env.Volume(t, prefix+"-"+claim.Name)}
	}
	var mounts []mount.Mount
	for _, vm := range c.VolumeMounts {
		v, ok := vols[vm.Name]
		if !ok {
			return nil, fmt.Errorf("volumeMount %s: no such volume", vm.Name)
		}
		if v.volume != "" {
			if vm.SubPath != "" {
				return nil, fmt.Errorf("volumeMount %s: subPath of a volume is not replayed", vm.Name)
			}
			mounts = append(mounts, mount.Mount{Type: mount.TypeVolume, Source: v.volume, Target: vm.MountPath, ReadOnly: vm.ReadOnly})
			continue
		}
		src := v.dir
		if vm.SubPath != "" {
			src = filepath.Join(v.dir, filepath.FromSlash(vm.SubPath))
			if _, err := os.Stat(src); err != nil {
				return nil, fmt.Errorf("volumeMount %s: subPath %s: %w", vm.Name, vm.SubPath, err)
			}
		}
		// Secret and ConfigMap volumes are always read-only.
		mounts = append(mounts, mount.Mount{Type: mount.TypeBind, Source: src, Target: vm.MountPath, ReadOnly: true})
		if err := filepath.Walk(src, func(f string, fi os.FileInfo, err error) error {
			if err != nil || fi.IsDir() {
				return err
			}
			rel, _ := filepath.Rel(src, f)
			b, err := os.ReadFile(f)
			p.Files[path.Join(vm.MountPath, filepath.ToSlash(rel))] = b
			return err
		}); err != nil {
			return nil, err
		}
	}

	var publish []string
	portNames := map[string]string{}
	for _, cp := range c.Ports {
		key := strconv.Itoa(int(cp.ContainerPort)) + "/tcp"
		publish = append(publish, key)
		portNames[key] = cp.Name
	}
	user, readOnly, capDrop, noNewPrivs := securityContext(spec.SecurityContext, c.SecurityContext)
	run, err := env.RunContext(context.Background(), dockertest.RunSpec{
		Image: c.Image, Name: env.Name(prefix + "-" + w.Name), Entrypoint: c.Command, Cmd: c.Args, Env: envVars,
		Network: netName, Publish: publish, NoStart: true,
		Configure: func(cfg *container.Config, hc *container.HostConfig, ep *network.EndpointSettings) {
			cfg.User = user
			if c.WorkingDir != "" {
				cfg.WorkingDir = c.WorkingDir
			}
			hc.Mounts = append(hc.Mounts, mounts...)
			hc.ReadonlyRootfs = readOnly
			hc.CapDrop = capDrop
			if noNewPrivs {
				hc.SecurityOpt = append(hc.SecurityOpt, "no-new-privileges")
			}
			ep.Aliases = append(ep.Aliases, p.Aliases...)
		},
	})
	if err != nil {
		return nil, err
	}
	p.Container = run
	if err := run.Start(context.Background()); err != nil {
		return nil, err
	}
	for _, key := range publish {
		addr, err := hostAddr(env, run, key)
		if err != nil {
			return nil, err
		}
		p.Ports[strings.TrimSuffix(key, "/tcp")] = addr
		if n := portNames[key]; n != "" {
			p.Ports[n] = addr
		}
	}
	return p, nil
}

func hostAddr(env *dockertest.Env, c *dockertest.Container, port string) (string, error) {
	insp, err := env.Client.ContainerInspect(context.Background(), c.ID, client.ContainerInspectOptions{})
	if err != nil {
		return "", err
	}
	if ns := insp.Container.NetworkSettings; ns != nil {
		for p, bs := range ns.Ports {
			if p.String() != port {
				continue
			}
			for _, b := range bs {
				if b.HostPort != "" {
					return net.JoinHostPort("127.0.0.1", b.HostPort), nil
				}
			}
		}
	}
	return "", fmt.Errorf("%s: port %s is not published (did it exit?)", c.Name, port)
}

func selects(sel, labels map[string]string) bool {
	for k, v := range sel {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// containerPort resolves a Service targetPort (a number or a port name).
func containerPort(c corev1.Container, target intstr.IntOrString, port int32) (int32, error) {
	switch {
	case target.Type == intstr.String && target.StrVal != "":
		for _, cp := range c.Ports {
			if cp.Name == target.StrVal {
				return cp.ContainerPort, nil
			}
		}
		return 0, fmt.Errorf("targetPort %q names no port of container %s", target.StrVal, c.Name)
	case target.Type == intstr.Int && target.IntVal != 0:
		return target.IntVal, nil
	}
	return port, nil
}

// data returns the keys of the Secret or ConfigMap name.
func (o *Objects) data(kind, name string) (map[string][]byte, error) {
	switch kind {
	case "Secret":
		if s, ok := o.Secrets[name]; ok {
			return s.Data, nil
		}
	case "ConfigMap":
		if cm, ok := o.ConfigMaps[name]; ok {
			out := make(map[string][]byte, len(cm.Data))
			for k, v := range cm.Data {
				out[k] = []byte(v)
			}
			return out, nil
		}
	}
	return nil, fmt.Errorf("%s %s is not among the manifests", kind, name)
}

// env resolves the container's environment the way the kubelet does.
func (o *Objects) env(c corev1.Container) ([]string, error) {
	if len(c.EnvFrom) > 0 {
		return nil, fmt.Errorf("envFrom is not replayed")
	}
	var out []string
	for _, e := range c.Env {
		v := e.Value
		switch {
		case e.ValueFrom == nil:
			if strings.Contains(v, "$(") {
				return nil, fmt.Errorf("env %s: $(VAR) references are not replayed", e.Name)
			}
		case e.ValueFrom.SecretKeyRef != nil, e.ValueFrom.ConfigMapKeyRef != nil:
			kind, name, key := "Secret", "", ""
			if r := e.ValueFrom.SecretKeyRef; r != nil {
				name, key = r.Name, r.Key
			} else {
				kind, name, key = "ConfigMap", e.ValueFrom.ConfigMapKeyRef.Name, e.ValueFrom.ConfigMapKeyRef.Key
			}
			d, err := o.data(kind, name)
			if err != nil {
				return nil, fmt.Errorf("env %s: %w", e.Name, err)
			}
			b, ok := d[key]
			if !ok {
				return nil, fmt.Errorf("env %s: %s %s has no key %q", e.Name, kind, name, key)
			}
			v = string(b)
		default:
			return nil, fmt.Errorf("env %s: only secretKeyRef and configMapKeyRef are replayed", e.Name)
		}
		out = append(out, e.Name+"="+v)
	}
	return out, nil
}

func securityContext(pod *corev1.PodSecurityContext, c *corev1.SecurityContext) (user string, readOnly bool, capDrop []string, noNewPrivs bool) {
	var uid, gid *int64
	if pod != nil {
		uid, gid = pod.RunAsUser, pod.RunAsGroup
	}
	if c != nil {
		if c.RunAsUser != nil {
			uid = c.RunAsUser
		}
		if c.RunAsGroup != nil {
			gid = c.RunAsGroup
		}
		readOnly = c.ReadOnlyRootFilesystem != nil && *c.ReadOnlyRootFilesystem
		noNewPrivs = c.AllowPrivilegeEscalation != nil && !*c.AllowPrivilegeEscalation
		if c.Capabilities != nil {
			for _, d := range c.Capabilities.Drop {
				capDrop = append(capDrop, string(d))
			}
		}
	}
	if uid != nil {
		user = strconv.FormatInt(*uid, 10)
		if gid != nil {
			user += ":" + strconv.FormatInt(*gid, 10)
		}
	}
	return user, readOnly, capDrop, noNewPrivs
}

// WaitReady polls the container's readiness probe (HTTP GET or TCP, through
// the published port) until it passes, the container stops running, or ctx ends.
func (p *Pod) WaitReady(ctx context.Context, env *dockertest.Env) error {
	c := p.Workload.Template.Spec.Containers[0]
	probe := c.ReadinessProbe
	if probe == nil {
		return nil
	}
	var port intstr.IntOrString
	switch {
	case probe.HTTPGet != nil:
		port = probe.HTTPGet.Port
	case probe.TCPSocket != nil:
		port = probe.TCPSocket.Port
	default:
		return fmt.Errorf("readiness probe: replay knows httpGet and tcpSocket only")
	}
	addr := p.Ports[port.String()]
	if addr == "" {
		return fmt.Errorf("readiness probe port %s is not a container port", port.String())
	}
	var last string
	for {
		switch {
		case probe.HTTPGet != nil:
			resp, err := http.Get("http://" + addr + probe.HTTPGet.Path)
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode >= 200 && resp.StatusCode < 400 {
					return nil
				}
				last = resp.Status
			} else {
				last = err.Error()
			}
		default:
			// The published port accepts while the container runs; a TCP
			// probe must reach the server inside, so ask from the network.
			conn, err := net.DialTimeout("tcp", addr, time.Second)
			if err == nil {
				// Docker's proxy accepts on the host port whether or not
				// the server inside listens, and then closes: a greeting
				// (MySQL speaks first) or an open, silent connection is a
				// listening server, EOF or a reset is not.
				conn.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
				var b [1]byte
				_, rerr := conn.Read(b[:])
				conn.Close()
				if ne, ok := rerr.(net.Error); rerr == nil || ok && ne.Timeout() {
					return nil
				}
				last = rerr.Error()
			} else {
				last = err.Error()
			}
		}
		insp, err := env.Client.ContainerInspect(ctx, p.ID, client.ContainerInspectOptions{})
		if err == nil && (insp.Container.State == nil || !insp.Container.State.Running) {
			logs, _ := p.Logs(context.Background())
			return fmt.Errorf("%s stopped before it was ready (%s); its log:\n%s", p.Name, last, tail(logs, 20))
		}
		select {
		case <-ctx.Done():
			logs, _ := p.Logs(context.Background())
			return fmt.Errorf("%s not ready: %s; its log:\n%s", p.Name, last, tail(logs, 20))
		case <-time.After(250 * time.Millisecond):
		}
	}
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
