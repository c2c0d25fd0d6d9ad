package kubeconfig_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/client-go/tools/clientcmd"

	"github.com/hacluster/hacluster/pkg/kubeconfig"
)

// admin.conf as kubeadm writes it (data shortened).
const admin = `apiVersion: v1
kind: Config
clusters:
- cluster: {certificate-authority-data: Q0E=, server: "https://172.30.5.100:16443"}
  name: kubernetes
contexts:
- context: {cluster: kubernetes, user: kubernetes-admin}
  name: kubernetes-admin@kubernetes
current-context: kubernetes-admin@kubernetes
users:
- name: kubernetes-admin
  user: {client-certificate-data: Q0VSVA==, client-key-data: S0VZ}
`

const mine = `apiVersion: v1
kind: Config
clusters:
- cluster: {server: "https://work.example:6443"}
  name: work
contexts:
- context: {cluster: work, user: me, namespace: team}
  name: work
current-context: work
users:
- name: me
  user: {token: abc}
`

func TestMergeKeepsTheUsersContextsAndBacksUp(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config")
	if err := os.WriteFile(path, []byte(mine), 0o644); err != nil {
		t.Fatal(err)
	}
	res, err := kubeconfig.Merge(path, []byte(admin), "hacluster-demo")
	if err != nil {
		t.Fatal(err)
	}
	if !res.Changed || res.Previous != "work" || res.Backup == "" {
		t.Fatalf("result %+v", res)
	}
	if b, _ := os.ReadFile(res.Backup); string(b) != mine {
		t.Errorf("backup holds %q", b)
	}
	cfg, err := clientcmd.LoadFromFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.CurrentContext != "hacluster-demo" || cfg.Contexts["work"] == nil || cfg.AuthInfos["me"].Token != "abc" {
		t.Errorf("merged: current %q, contexts %v", cfg.CurrentContext, cfg.Contexts)
	}
	c := cfg.Contexts["hacluster-demo"]
	if c.Cluster != "hacluster-demo" || c.AuthInfo != "hacluster-demo-admin" || cfg.Clusters["hacluster-demo"].Server != "https://172.30.5.100:16443" {
		t.Errorf("new context %+v", c)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v", fi.Mode())
	}
	// Again: nothing to do, no second backup.
	again, err := kubeconfig.Merge(path, []byte(admin), "hacluster-demo")
	if err != nil || again.Changed || again.Backup != "" {
		t.Errorf("second merge: %+v %v", again, err)
	}
	baks, _ := filepath.Glob(path + ".hacluster-*.bak")
	if len(baks) != 1 {
		t.Errorf("backups: %v", baks)
	}
}

func TestMergeIntoNoFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "config")
	res, err := kubeconfig.Merge(path, []byte(admin), "hacluster-x")
	if err != nil || !res.Changed || res.Backup != "" {
		t.Fatalf("%+v %v", res, err)
	}
	if cfg, err := clientcmd.LoadFromFile(path); err != nil || cfg.CurrentContext != "hacluster-x" {
		t.Errorf("%v %v", cfg, err)
	}
}

func TestBrokenFileIsLeftAlone(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config")
	broken := "apiVersion: v1\nkind: Config\nclusters: [nope\n"
	if err := os.WriteFile(path, []byte(broken), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := kubeconfig.Merge(path, []byte(admin), "hacluster-x"); err == nil || !strings.Contains(err.Error(), "not changed") {
		t.Errorf("merge into a broken file: %v", err)
	}
	if b, _ := os.ReadFile(path); string(b) != broken {
		t.Errorf("file changed: %q", b)
	}
	if _, err := kubeconfig.Merge(path, []byte("kind: Config\n"), "hacluster-x"); err == nil {
		t.Error("an admin kubeconfig without a context was accepted")
	}
}
