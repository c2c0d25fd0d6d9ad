package dockertest_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/hacluster/hacluster/pkg/dockertest"
	"github.com/moby/moby/client"
)

// The cleanup removes what the Env labelled (containers, networks, volumes,
// images) and nothing else.
func TestCleanupRemovesOnlyLabelledObjects(t *testing.T) {
	outer := dockertest.New(t)
	outer.RequireImage(t, dockertest.DebianImage)
	ctx := context.Background()
	cli := outer.Client

	// An unlabelled network that must survive the inner Env's cleanup.
	keep := outer.Name("keep")
	if _, err := cli.NetworkCreate(ctx, keep, client.NetworkCreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = cli.NetworkRemove(context.Background(), keep, client.NetworkRemoveOptions{}) })

	var id, netName, volName, anonVol, ctrName, imgTag string
	t.Run("inner", func(t *testing.T) {
		inner := dockertest.New(t)
		id = inner.ID()
		netName = inner.Network(t, "net")
		volName = inner.Volume(t, "vol")
		c := inner.Run(t, dockertest.RunSpec{
			Image: dockertest.DebianImage, Network: netName, Cmd: []string{"sleep", "300"},
			Volumes: map[string]string{volName: "/data"},
			Files:   map[string][]byte{"/etc/hacluster/hello.txt": []byte("hello\n")},
		})
		ctrName = c.Name
		res, err := c.Exec(ctx, "cat", "/etc/hacluster/hello.txt")
		if err != nil || res.ExitCode != 0 || res.Stdout != "hello\n" {
			t.Fatalf("exec cat: %+v, %v", res, err)
		}
		dir := t.TempDir()
		writeFile(t, dir, "Dockerfile", "FROM "+dockertest.DebianImage+"\nRUN echo built >/built\nVOLUME /scratch\n")
		imgTag = inner.Build(t, dockertest.BuildSpec{Dir: dir, NetworkMode: "none"})
		code, out := inner.RunOnce(t, dockertest.RunSpec{Image: imgTag, Cmd: []string{"cat", "/built"}}, time.Minute)
		if code != 0 || strings.TrimSpace(out) != "built" {
			t.Fatalf("built image: exit %d, %q", code, out)
		}
		// A container with an anonymous volume (VOLUME in the image): the
		// volume has no label, and must go with its container.
		c2 := inner.Run(t, dockertest.RunSpec{Image: imgTag, Cmd: []string{"true"}})
		ins, err := inner.Client.ContainerInspect(ctx, c2.ID, client.ContainerInspectOptions{})
		if err != nil || len(ins.Container.Mounts) != 1 {
			t.Fatalf("inspect %s: %v, %+v", c2.Name, err, ins.Container.Mounts)
		}
		anonVol = ins.Container.Mounts[0].Name
	})
	if t.Failed() {
		return
	}
	f := make(client.Filters).Add("label", dockertest.LabelKey+"="+id)
	cs, err := cli.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: f})
	if err != nil || len(cs.Items) != 0 {
		t.Errorf("containers left after cleanup: %d (%v)", len(cs.Items), err)
	}
	if _, err := cli.ContainerInspect(ctx, ctrName, client.ContainerInspectOptions{}); err == nil {
		t.Errorf("container %s still exists", ctrName)
	}
	if _, err := cli.NetworkInspect(ctx, netName, client.NetworkInspectOptions{}); err == nil {
		t.Errorf("network %s still exists", netName)
	}
	if _, err := cli.VolumeInspect(ctx, volName, client.VolumeInspectOptions{}); err == nil {
		t.Errorf("volume %s still exists", volName)
	}
	if _, err := cli.VolumeInspect(ctx, anonVol, client.VolumeInspectOptions{}); err == nil {
		t.Errorf("anonymous volume %s still exists", anonVol)
	}
	if _, err := cli.ImageInspect(ctx, imgTag); err == nil {
		t.Errorf("image %s still exists", imgTag)
	}
	if _, err := cli.NetworkInspect(ctx, keep, client.NetworkInspectOptions{}); err != nil {
		t.Errorf("unlabelled network %s was removed: %v", keep, err)
	}
	if _, err := cli.ImageInspect(ctx, dockertest.DebianImage); err != nil {
		t.Errorf("base image removed: %v", err)
	}
}

// Env.Build removes the untagged images of a multi-stage build's earlier
// stages (the classic builder leaves them behind without labels).
func TestBuildRemovesEarlierStageImages(t *testing.T) {
	env := dockertest.New(t)
	env.RequireImage(t, dockertest.DebianImage)
	marker := "io.hacluster.dockertest.stage=" + env.ID()
	dir := t.TempDir()
	writeFile(t, dir, "Dockerfile", "FROM "+dockertest.DebianImage+" AS first\nLABEL "+marker+"\nRUN echo staged >/x\n"+
		"FROM "+dockertest.DebianImage+"\nCOPY --from=first /x /x\n")
	tag := env.Build(t, dockertest.BuildSpec{Dir: dir, NoCache: true})
	code, out := env.RunOnce(t, dockertest.RunSpec{Image: tag, Cmd: []string{"cat", "/x"}}, time.Minute)
	if code != 0 || strings.TrimSpace(out) != "staged" {
		t.Fatalf("built image: exit %d, %q", code, out)
	}
	left, err := env.Client.ImageList(context.Background(), client.ImageListOptions{All: true, Filters: make(client.Filters).Add("label", marker)})
	if err != nil {
		t.Fatal(err)
	}
	if len(left.Items) != 0 {
		t.Errorf("%d image(s) of the first stage left behind, e.g. %s", len(left.Items), left.Items[0].ID)
	}
}
