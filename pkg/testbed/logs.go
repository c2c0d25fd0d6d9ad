package testbed

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/hacluster/hacluster/pkg/fileutil"
)

// kwok reads the logs of a simulated container from a file named by a
// kwok.x-k8s.io/v1alpha1 Logs object (same name and namespace as the Pod).
var (
	crdGVR  = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}
	logsGVR = schema.GroupVersionResource{Group: "kwok.x-k8s.io", Version: "v1alpha1", Resource: "logs"}
)

// installKwokCRDs registers the Logs kind kwok watches (--enable-crds Logs).
// The schema is left open: kwok validates what it reads.
func (b *Bed) installKwokCRDs(ctx context.Context) error {
	crd := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "apiextensions.k8s.io/v1",
		"kind":       "CustomResourceDefinition",
		"metadata":   map[string]any{"name": "logs.kwok.x-k8s.io"},
		"spec": map[string]any{
			"group": "kwok.x-k8s.io",
			"scope": "Namespaced",
			"names": map[string]any{"kind": "Logs", "listKind": "LogsList", "plural": "logs", "singular": "logs"},
			"versions": []any{map[string]any{
				"name": "v1alpha1", "served": true, "storage": true,
				"subresources": map[string]any{"status": map[string]any{}},
				"schema": map[string]any{"openAPIV3Schema": map[string]any{
					"type": "object", "x-kubernetes-preserve-unknown-fields": true,
				}},
			}},
		},
	}}
	_, err := b.Dynamic.Resource(crdGVR).Create(ctx, crd, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("install kwok Logs CRD: %w", err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		got, err := b.Dynamic.Resource(crdGVR).Get(ctx, "logs.kwok.x-k8s.io", metav1.GetOptions{})
		if err == nil && crdEstablished(got) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("kwok Logs CRD not established: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func crdEstablished(u *unstructured.Unstructured) bool {
	conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
	for _, c := range conds {
		m, _ := c.(map[string]any)
		if m["type"] == "Established" && m["status"] == "True" {
			return true
		}
	}
	return false
}

// SetPodLogs makes `kubectl logs` (and GET pods/<name>/log) of a container on
// a kwok node return lines, through the real apiserver -> "kubelet" (kwok)
// path. It needs Options.Components (kwok). Calling it again replaces the
// container's lines.
func (b *Bed) SetPodLogs(ctx context.Context, namespace, podName, container string, lines []string) error {
	if b.kubeletPort == 0 {
		return fmt.Errorf("SetPodLogs needs a bed started with Options{Components: true} (kwok serves the logs)")
	}
	dir := filepath.Join(b.Dir, "podlogs", namespace, podName)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	// kwok reads the CRI log format the kubelet writes: "<time> <stream> F <line>".
	var sb strings.Builder
	ts := time.Now().Add(-time.Duration(len(lines)) * time.Millisecond)
	for i, l := range lines {
		fmt.Fprintf(&sb, "%s stdout F %s\n", ts.Add(time.Duration(i)*time.Millisecond).UTC().Format(time.RFC3339Nano), l)
	}
	file := filepath.Join(dir, container+".log")
	if err := fileutil.WriteAtomic(file, []byte(sb.String()), 0o644); err != nil {
		return err
	}

	res := b.Dynamic.Resource(logsGVR).Namespace(namespace)
	entry := map[string]any{"containers": []any{container}, "logsFile": file}
	for attempt := 0; ; attempt++ {
		cur, err := res.Get(ctx, podName, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			obj := &unstructured.Unstructured{Object: map[string]any{
				"apiVersion": "kwok.x-k8s.io/v1alpha1", "kind": "Logs",
				"metadata": map[string]any{"name": podName, "namespace": namespace},
				"spec":     map[string]any{"logs": []any{entry}},
			}}
			_, err = res.Create(ctx, obj, metav1.CreateOptions{})
		} else if err == nil {
			logs, _, _ := unstructured.NestedSlice(cur.Object, "spec", "logs")
			var kept []any
			for _, l := range logs {
				m, _ := l.(map[string]any)
				cs, _, _ := unstructured.NestedStringSlice(m, "containers")
				if len(cs) == 1 && cs[0] == container {
					continue
				}
				kept = append(kept, l)
			}
			if err := unstructured.SetNestedSlice(cur.Object, append(kept, entry), "spec", "logs"); err != nil {
				return err
			}
			_, err = res.Update(ctx, cur, metav1.UpdateOptions{})
		}
		if err == nil {
			break
		}
		if !(apierrors.IsConflict(err) || apierrors.IsAlreadyExists(err)) || attempt > 5 {
			return fmt.Errorf("set logs of %s/%s: %w", namespace, podName, err)
		}
	}
	// kwok picks the object up through a watch: wait until the log is served.
	deadline := time.Now().Add(15 * time.Second)
	for {
		raw, err := b.Client.CoreV1().Pods(namespace).GetLogs(podName, &corev1.PodLogOptions{Container: container}).DoRaw(ctx)
		if err == nil && (len(lines) == 0 || strings.Contains(string(raw), lines[len(lines)-1])) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("logs of %s/%s container %s not served by kwok: %v", namespace, podName, container, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// ExecDir is the only place where the programs that exec into kwok Pods
// run are looked up (kwok's PATH); they run with a usual PATH.
func (b *Bed) ExecDir() string { return filepath.Join(b.Dir, "exec-bin") }

// kwokExecConfig writes the kwok ClusterExec that runs `exec` into the etcd
// container of kube-system Pods (the etcd static Pods of the HA shape) as a
// local process in the bed's directory.
func (b *Bed) kwokExecConfig() (string, error) {
	if err := os.MkdirAll(b.ExecDir(), 0o755); err != nil {
		return "", err
	}
	conf := `apiVersion: kwok.x-k8s.io/v1alpha1
kind: ClusterExec
metadata:
  name: hacluster-testbed-etcd
spec:
  selector:
    matchNamespaces: [kube-system]
  execs:
  - containers: [etcd]
    local:
      workDir: ` + b.Dir + `
      envs:
      - name: PATH
        value: /usr/local/bin:/usr/bin:/bin
`
	path := filepath.Join(b.Dir, "kwok-exec.yaml")
	return path, fileutil.WriteAtomic(path, []byte(conf), 0o644)
}

// SetExecProgram installs an executable script as name on ExecDir: with
// Components on, `kubectl exec POD -c etcd -- name ARGS` into a kube-system
// Pod on a kwok node runs it with ARGS (stdout and stderr come back through
// the API server, the exit code too). Nothing else can be exec'ed into.
func (b *Bed) SetExecProgram(name, script string) error {
	if b.kubeletPort == 0 {
		return fmt.Errorf("SetExecProgram needs a bed started with Options{Components: true} (kwok serves exec)")
	}
	if strings.ContainsRune(name, os.PathSeparator) {
		return fmt.Errorf("SetExecProgram: %q is not a plain program name", name)
	}
	return fileutil.WriteAtomic(filepath.Join(b.ExecDir(), name), []byte(script), 0o755)
}
