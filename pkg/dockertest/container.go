package dockertest

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"maps"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"
)

// Network creates a labelled user-defined bridge network (its embedded DNS
// resolves container names) and returns its name.
func (e *Env) Network(t testing.TB, prefix string) string {
	t.Helper()
	name := e.Name(prefix)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := e.Client.NetworkCreate(ctx, name, client.NetworkCreateOptions{Driver: "bridge", Labels: e.Labels()}); err != nil {
		t.Fatalf("dockertest: create network %s: %v", name, err)
	}
	return name
}

// Volume creates a labelled named volume and returns its name.
func (e *Env) Volume(t testing.TB, prefix string) string {
	t.Helper()
	name := e.Name(prefix)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := e.Client.VolumeCreate(ctx, client.VolumeCreateOptions{Name: name, Labels: e.Labels()}); err != nil {
		t.Fatalf("dockertest: create volume %s: %v", name, err)
	}
	return name
}

// RunSpec describes a container for Env.Run.
type RunSpec struct {
	Image string
	// Name defaults to Env.Name of the image's last path element.
	Name       string
	Cmd        []string
	Entrypoint []string
	Env        []string
	// Network to join (with the container name as DNS name); "" is the default bridge.
	Network string
	// Publish lists container ports ("3306/tcp") to publish on 127.0.0.1 at a
	// free host port; see Container.HostAddr.
	Publish []string
	// Volumes maps a volume name to a path in the container.
	Volumes map[string]string
	// Files are copied into the container before it starts: path -> content.
	// They are owned by root and mode 0644 unless the path ends in .sh (0755).
	Files map[string][]byte
	// Labels are added to the Env's labels.
	Labels map[string]string
	// NoStart only creates the container.
	NoStart bool
	// Hostname of the container (default: Docker's, the short ID).
	Hostname string
	// Configure, when set, adjusts what Run sends to the engine last, for
	// settings RunSpec has no field for (capabilities, a fixed address, ...).
	// The endpoint is nil without a Network.
	Configure func(*container.Config, *container.HostConfig, *network.EndpointSettings)
}

// Container is a container created by Env.Run.
type Container struct {
	ID   string
	Name string
	env  *Env
}

// Run creates, fills (RunSpec.Files) and starts a labelled container.
func (e *Env) Run(t testing.TB, spec RunSpec) *Container {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := e.RunContext(ctx, spec)
	if err != nil {
		t.Fatalf("dockertest: %v", err)
	}
	return c
}

// RunContext is Run without a test.
func (e *Env) RunContext(ctx context.Context, spec RunSpec) (*Container, error) {
	name := spec.Name
	if name == "" {
		base := spec.Image[strings.LastIndex(spec.Image, "/")+1:]
		if i := strings.IndexAny(base, ":@"); i >= 0 {
			base = base[:i]
		}
		name = e.Name(base)
	}
	labels := e.Labels()
	maps.Copy(labels, spec.Labels)
	cfg := &container.Config{
		Image:        spec.Image,
		Cmd:          spec.Cmd,
		Entrypoint:   spec.Entrypoint,
		Env:          spec.Env,
		Hostname:     spec.Hostname,
		Labels:       labels,
		ExposedPorts: network.PortSet{},
	}
	hc := &container.HostConfig{PortBindings: network.PortMap{}}
	for _, p := range spec.Publish {
		port, err := network.ParsePort(p)
		if err != nil {
			return nil, fmt.Errorf("publish %q: %w", p, err)
		}
		cfg.ExposedPorts[port] = struct{}{}
		hc.PortBindings[port] = []network.PortBinding{{HostIP: netip.MustParseAddr("127.0.0.1"), HostPort: "0"}}
	}
	for vol, path := range spec.Volumes {
		hc.Mounts = append(hc.Mounts, mount.Mount{Type: mount.TypeVolume, Source: vol, Target: path})
	}
	var nc *network.NetworkingConfig
	var ep *network.EndpointSettings
	if spec.Network != "" {
		hc.NetworkMode = container.NetworkMode(spec.Network)
		ep = &network.EndpointSettings{}
		nc = &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{spec.Network: ep}}
	}
	if spec.Configure != nil {
		spec.Configure(cfg, hc, ep)
	}
	res, err := e.Client.ContainerCreate(ctx, client.ContainerCreateOptions{Name: name, Config: cfg, HostConfig: hc, NetworkingConfig: nc})
	if err != nil {
		return nil, fmt.Errorf("create container %s from %s: %w", name, spec.Image, err)
	}
	c := &Container{ID: res.ID, Name: name, env: e}
	if len(spec.Files) > 0 {
		if err := c.copyFiles(ctx, spec.Files); err != nil {
			return nil, err
		}
	}
	if !spec.NoStart {
		if err := c.Start(ctx); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// copyFiles writes the files into the container through a tar stream at /,
// creating parent directories.
func (c *Container) copyFiles(ctx context.Context, files map[string][]byte) error {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	dirs := map[string]bool{}
	for path, data := range files {
		rel := strings.TrimPrefix(path, "/")
		for i := strings.Index(rel, "/"); i >= 0; i = next(rel, i) {
			d := rel[:i+1]
			if !dirs[d] {
				dirs[d] = true
				if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: d, Mode: 0o755, ModTime: time.Now()}); err != nil {
					return err
				}
			}
		}
		mode := int64(0o644)
		if strings.HasSuffix(rel, ".sh") {
			mode = 0o755
		}
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: rel, Mode: mode, Size: int64(len(data)), ModTime: time.Now()}); err != nil {
			return err
		}
		if _, err := tw.Write(data); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	_, err := c.env.Client.CopyToContainer(ctx, c.ID, client.CopyToContainerOptions{DestinationPath: "/", Content: &buf})
	if err != nil {
		return fmt.Errorf("copy files into %s: %w", c.Name, err)
	}
	return nil
}

func next(s string, i int) int {
	j := strings.Index(s[i+1:], "/")
	if j < 0 {
		return -1
	}
	return i + 1 + j
}

// Start starts the container.
func (c *Container) Start(ctx context.Context) error {
	if _, err := c.env.Client.ContainerStart(ctx, c.ID, client.ContainerStartOptions{}); err != nil {
		return fmt.Errorf("start container %s: %w", c.Name, err)
	}
	return nil
}

// HostAddr returns "127.0.0.1:<port>" where the container port (as given in
// RunSpec.Publish, e.g. "3306/tcp") is published.
func (c *Container) HostAddr(t testing.TB, port string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	addr, err := c.hostAddr(ctx, port)
	if err != nil {
		t.Fatalf("dockertest: %v", err)
	}
	return addr
}

func (c *Container) hostAddr(ctx context.Context, port string) (string, error) {
	p, err := network.ParsePort(port)
	if err != nil {
		return "", err
	}
	res, err := c.env.Client.ContainerInspect(ctx, c.ID, client.ContainerInspectOptions{})
	if err != nil {
		return "", err
	}
	if ns := res.Container.NetworkSettings; ns != nil {
		for _, b := range ns.Ports[p] {
			if b.HostPort != "" {
				host := "127.0.0.1"
				if b.HostIP.IsValid() && !b.HostIP.IsUnspecified() {
					host = b.HostIP.String()
				}
				return net.JoinHostPort(host, b.HostPort), nil
			}
		}
	}
	return "", fmt.Errorf("container %s: port %s is not published (is it running?)", c.Name, port)
}

// Logs returns the container's stdout and stderr so far, interleaved.
func (c *Container) Logs(ctx context.Context) (string, error) {
	return c.env.logsTail(ctx, c.ID, "all")
}

func (e *Env) logsTail(ctx context.Context, id, tail string) (string, error) {
	rc, err := e.Client.ContainerLogs(ctx, id, client.ContainerLogsOptions{ShowStdout: true, ShowStderr: true, Tail: tail})
	if err != nil {
		return "", err
	}
	defer rc.Close()
	var out bytes.Buffer
	if _, err := stdcopy.StdCopy(&out, &out, rc); err != nil {
		return out.String(), err
	}
	return out.String(), nil
}

// Wait waits for the container to exit and returns its exit code.
func (c *Container) Wait(ctx context.Context) (int64, error) {
	res := c.env.Client.ContainerWait(ctx, c.ID, client.ContainerWaitOptions{Condition: container.WaitConditionNotRunning})
	select {
	case r := <-res.Result:
		if r.Error != nil && r.Error.Message != "" {
			return r.StatusCode, fmt.Errorf("wait %s: %s", c.Name, r.Error.Message)
		}
		return r.StatusCode, nil
	case err := <-res.Error:
		return -1, fmt.Errorf("wait %s: %w", c.Name, err)
	}
}

// Restart stops (SIGTERM, then SIGKILL after 20 s) and starts the container.
func (c *Container) Restart(ctx context.Context) error {
	timeout := 20
	if _, err := c.env.Client.ContainerRestart(ctx, c.ID, client.ContainerRestartOptions{Timeout: &timeout}); err != nil {
		return fmt.Errorf("restart %s: %w", c.Name, err)
	}
	return nil
}

// Remove force-removes the container and its anonymous volumes (named
// volumes stay). The Env's cleanup would do it anyway.
func (c *Container) Remove(ctx context.Context) error {
	_, err := c.env.Client.ContainerRemove(ctx, c.ID, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true})
	return err
}

// ExecResult is the outcome of Container.Exec.
type ExecResult struct {
	ExitCode int
	Stdout   string
	Stderr   string
}

// Exec runs cmd in the running container and collects its output.
func (c *Container) Exec(ctx context.Context, cmd ...string) (ExecResult, error) {
	cr, err := c.env.Client.ExecCreate(ctx, c.ID, client.ExecCreateOptions{Cmd: cmd, AttachStdout: true, AttachStderr: true})
	if err != nil {
		return ExecResult{}, fmt.Errorf("exec in %s: %w", c.Name, err)
	}
	att, err := c.env.Client.ExecAttach(ctx, cr.ID, client.ExecAttachOptions{})
	if err != nil {
		return ExecResult{}, fmt.Errorf("exec attach in %s: %w", c.Name, err)
	}
	defer att.Close()
	var stdout, stderr bytes.Buffer
	if _, err := stdcopy.StdCopy(&stdout, &stderr, att.Reader); err != nil && err != io.EOF {
		return ExecResult{}, fmt.Errorf("exec output in %s: %w", c.Name, err)
	}
	ins, err := c.env.Client.ExecInspect(ctx, cr.ID, client.ExecInspectOptions{})
	if err != nil {
		return ExecResult{}, err
	}
	return ExecResult{ExitCode: ins.ExitCode, Stdout: stdout.String(), Stderr: stderr.String()}, nil
}

// RunOnce runs a container to completion and returns its exit code and output.
func (e *Env) RunOnce(t testing.TB, spec RunSpec, timeout time.Duration) (int64, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	c, err := e.RunContext(ctx, spec)
	if err != nil {
		t.Fatalf("dockertest: %v", err)
	}
	code, err := c.Wait(ctx)
	logs, lerr := c.Logs(context.Background())
	if err != nil {
		t.Fatalf("dockertest: %v\n%s", err, logs)
	}
	if lerr != nil {
		t.Fatalf("dockertest: logs of %s: %v", c.Name, lerr)
	}
	return code, logs
}
