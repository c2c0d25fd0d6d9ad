package k8sexport_test

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hacluster/hacluster/pkg/dockertest"
	"github.com/hacluster/hacluster/pkg/k8sexport"
	"github.com/hacluster/hacluster/pkg/k8sexport/replay"
	"github.com/hacluster/hacluster/pkg/stack"
)

// TestExportReplayedOnDocker exports the sample app (it reads its password
// from config.toml) and runs the exported objects on the real engine as a
// kubelet would: MySQL from the StatefulSet (image, env, the Secret's
// password files at their mountPath, a fresh volume for the PVC), the app
// from the Deployment (env, the config Secret's file at its mountPath
// through subPath, uid 65532, read-only root, no capabilities), Service
// names as network aliases. The readiness probes pass and a query goes
// through the app. The same app given the config the ConfigMap used to
// carry (password = "") fails with MySQL's access denied: what the issue saw.
func TestExportReplayedOnDocker(t *testing.T) {
	env := dockertest.New(t)
	env.RequireImage(t, dockertest.MariaDBImage)
	env.RequireImage(t, dockertest.GolangImage)
	dir := dockertest.CopyGoApp(t)
	start := time.Now()
	tag := env.Build(t, dockertest.BuildSpec{Dir: dir, Tag: env.Name("h20-goapp") + ":test"})
	t.Logf("app image built in %s", time.Since(start).Round(100*time.Millisecond))

	s, err := stack.Load("", stack.LoadOptions{Dir: dir, Override: func(s *stack.Stack) {
		s.Name = "h20shop"
		s.App.Build, s.App.Image = ".", tag
		s.MySQL.Image, s.MySQL.Database, s.MySQL.User = dockertest.MariaDBImage, "shop", "shopper"
	}})
	if err != nil {
		t.Fatal(err)
	}
	ms, sec, err := k8sexport.FromStack(s, k8sexport.Options{})
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "k8s")
	if _, err := k8sexport.Write(out, ms, false); err != nil {
		t.Fatal(err)
	}
	objs, err := replay.Load(out)
	if err != nil {
		t.Fatal(err)
	}
	if len(objs.ConfigMaps) != 0 {
		t.Fatalf("the export has ConfigMaps: %v", objs.ConfigMaps)
	}
	sts, err := objs.Workload("StatefulSet", "h20shop-mysql")
	if err != nil {
		t.Fatal(err)
	}
	dep, err := objs.Workload("Deployment", "h20shop-app")
	if err != nil {
		t.Fatal(err)
	}

	netName := env.Network(t, "h20-replay")
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	start = time.Now()
	db := objs.Start(t, env, sts, netName, "h20")
	app := objs.Start(t, env, dep, netName, "h20")
	if strings.Join(db.Aliases, ",") != "h20shop-mysql" || strings.Join(app.Aliases, ",") != "h20shop-app" {
		t.Fatalf("Service aliases: mysql %v, app %v", db.Aliases, app.Aliases)
	}
	for _, p := range []*replay.Pod{db, app} {
		if err := p.WaitReady(ctx, env); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("exported MySQL and app ready in %s", time.Since(start).Round(100*time.Millisecond))

	// The password reaches the app only in the file the Secret mounts.
	mounted := string(app.Files[s.App.Config.MountPath])
	if !strings.Contains(mounted, fmt.Sprintf("password = %q", sec.Password)) || !strings.Contains(mounted, `ip = "h20shop-mysql"`) {
		t.Fatalf("config mounted at %s:\n%s", s.App.Config.MountPath, strings.ReplaceAll(mounted, sec.Password, "<password>"))
	}
	for _, e := range dep.Template.Spec.Containers[0].Env {
		if strings.HasPrefix(e.Name, "DB_PASSWORD") {
			t.Errorf("the app's environment carries %s", e.Name)
		}
	}
	for i := int64(1); i <= 2; i++ {
		rt := dockertest.GetRoundtrip(t, "http://"+app.Ports["http"])
		if !rt.OK || rt.Rows != i {
			t.Fatalf("roundtrip %d through the exported app: %+v", i, rt)
		}
	}

	// The old export: the same config without the password, nothing else.
	old := objs.Secrets["h20shop-config"].DeepCopy()
	objs.Secrets["h20shop-config"].Data["config.toml"] = []byte(strings.ReplaceAll(string(old.Data["config.toml"]), fmt.Sprintf("password = %q", sec.Password), `password = ""`))
	stale := *dep
	stale.Name = "h20shop-app-old"
	stale.Template = *dep.Template.DeepCopy()
	stale.Template.Spec.Containers[0].Args = []string{"-db-wait", "2s"}
	oldApp := objs.Start(t, env, &stale, netName, "h20")
	code, err := oldApp.Wait(ctx)
	logs, _ := oldApp.Logs(context.Background())
	if err != nil || code == 0 || !strings.Contains(logs, "Access denied") || !strings.Contains(logs, "using password: NO") {
		t.Fatalf("the app with password = \"\" in its config: exit %d %v\n%s", code, err, logs)
	}
	t.Logf("control, the config without the password: %s", lastLine(logs))
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}
