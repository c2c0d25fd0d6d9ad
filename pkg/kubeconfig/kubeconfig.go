// Package kubeconfig merges a cluster's admin kubeconfig into a user's
// kubeconfig file as one named context, the way kind and k0sctl hand a new
// cluster over: the user's other clusters, users and contexts are kept, the
// file is backed up before it changes and written atomically (0600).
package kubeconfig

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/hacluster/hacluster/pkg/fileutil"
)

// DefaultPath is the file kubectl writes to: the first of $KUBECONFIG, else
// ~/.kube/config.
func DefaultPath() string {
	if l := filepath.SplitList(os.Getenv(clientcmd.RecommendedConfigPathEnvVar)); len(l) > 0 && l[0] != "" {
		return l[0]
	}
	return clientcmd.RecommendedHomeFile
}

// Result says what Merge did.
type Result struct {
	Path    string `json:"path"`
	Context string `json:"context"`
	Changed bool   `json:"changed"`
	// Backup is the copy of the file before the change ("" when the file
	// did not exist or did not change).
	Backup string `json:"backup,omitempty"`
	// Previous is the current-context before the change.
	Previous string `json:"previousContext,omitempty"`
}

// Merge puts the single cluster, user and context of admin into the file at
// path as cluster <name>, user <name>-admin and context <name>, and makes
// it the current context. A file that already holds exactly that is not
// touched.
func Merge(path string, admin []byte, name string) (*Result, error) {
	src, err := clientcmd.Load(admin)
	if err != nil {
		return nil, fmt.Errorf("admin kubeconfig: %w", err)
	}
	cur, ok := src.Contexts[src.CurrentContext]
	if !ok || src.Clusters[cur.Cluster] == nil || src.AuthInfos[cur.AuthInfo] == nil {
		return nil, errors.New("admin kubeconfig: its current context names no cluster or user")
	}
	old, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	dst := clientcmdapi.NewConfig()
	if len(bytes.TrimSpace(old)) > 0 {
		if dst, err = clientcmd.Load(old); err != nil {
			return nil, fmt.Errorf("%s: %w (not changed)", path, err)
		}
	}
	res := &Result{Path: path, Context: name, Previous: dst.CurrentContext}
	user := name + "-admin"
	dst.Clusters[name] = src.Clusters[cur.Cluster]
	dst.AuthInfos[user] = src.AuthInfos[cur.AuthInfo]
	c := clientcmdapi.NewContext()
	c.Cluster, c.AuthInfo, c.Namespace = name, user, cur.Namespace
	dst.Contexts[name] = c
	dst.CurrentContext = name
	out, err := clientcmd.Write(*dst)
	if err != nil {
		return nil, err
	}
	if len(old) > 0 {
		// Compare what the file means, not its bytes: kubectl and other
		// tools format it their own way.
		if same, _ := clientcmd.Load(old); same != nil {
			if b, err := clientcmd.Write(*same); err == nil && bytes.Equal(b, out) {
				return res, nil
			}
		}
		res.Backup = fmt.Sprintf("%s.hacluster-%s.bak", path, time.Now().UTC().Format("20060102T150405Z"))
		if err := fileutil.WriteAtomic(res.Backup, old, 0o600); err != nil {
			return nil, fmt.Errorf("backup of %s: %w (not changed)", path, err)
		}
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, err
	}
	if err := fileutil.WriteAtomic(path, out, 0o600); err != nil {
		return nil, err
	}
	res.Changed = true
	return res, nil
}
