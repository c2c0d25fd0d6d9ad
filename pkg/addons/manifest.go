package addons

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

// Parse splits a multi-document YAML (or JSON) manifest into objects. Empty
// documents are skipped and `kind: List` is flattened. Every object needs
// apiVersion, kind and metadata.name; the error names the file and the
// document number.
func Parse(file string, data []byte) ([]*unstructured.Unstructured, error) {
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	var out []*unstructured.Unstructured
	for doc := 1; ; doc++ {
		raw, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%s: document %d: %w", file, doc, err)
		}
		if len(bytes.TrimSpace(stripComments(raw))) == 0 {
			continue
		}
		var m map[string]any
		if err := yaml.Unmarshal(raw, &m); err != nil {
			return nil, fmt.Errorf("%s: document %d: %w", file, doc, err)
		}
		if m == nil {
			continue
		}
		u := &unstructured.Unstructured{Object: m}
		if u.IsList() {
			list, err := u.ToList()
			if err != nil {
				return nil, fmt.Errorf("%s: document %d: %w", file, doc, err)
			}
			for i := range list.Items {
				item := list.Items[i]
				if err := checkObject(&item); err != nil {
					return nil, fmt.Errorf("%s: document %d, item %d: %w", file, doc, i+1, err)
				}
				out = append(out, &item)
			}
			continue
		}
		if err := checkObject(u); err != nil {
			return nil, fmt.Errorf("%s: document %d: %w", file, doc, err)
		}
		out = append(out, u)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: no Kubernetes objects in it", file)
	}
	return out, nil
}

func checkObject(u *unstructured.Unstructured) error {
	gv, err := schema.ParseGroupVersion(u.GetAPIVersion())
	switch {
	case u.GetAPIVersion() == "" || err != nil || gv.Version == "":
		return fmt.Errorf("object without a valid apiVersion (%q)", u.GetAPIVersion())
	case u.GetKind() == "":
		return fmt.Errorf("%s object without kind", u.GetAPIVersion())
	case u.GetName() == "":
		return fmt.Errorf("%s without metadata.name (generateName is not supported: re-runs must find the same object)", u.GetKind())
	}
	return nil
}

// stripComments drops comment-only lines, so a document made of comments
// counts as empty.
func stripComments(b []byte) []byte {
	var out bytes.Buffer
	for _, line := range strings.Split(string(b), "\n") {
		t := strings.TrimSpace(line)
		if t == "" || strings.HasPrefix(t, "#") || t == "---" {
			continue
		}
		out.WriteString(line)
		out.WriteByte('\n')
	}
	return out.Bytes()
}

// Ref identifies an object of an add-on.
type Ref struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Namespace  string `json:"namespace,omitempty"`
	Name       string `json:"name"`
}

// RefOf returns the reference of u.
func RefOf(u *unstructured.Unstructured) Ref {
	return Ref{APIVersion: u.GetAPIVersion(), Kind: u.GetKind(), Namespace: u.GetNamespace(), Name: u.GetName()}
}

func (r Ref) String() string {
	gv, _ := schema.ParseGroupVersion(r.APIVersion)
	kind := strings.ToLower(r.Kind)
	if gv.Group != "" {
		kind += "." + gv.Group
	}
	if r.Namespace != "" {
		return kind + " " + r.Namespace + "/" + r.Name
	}
	return kind + " " + r.Name
}

// GroupKind is the group and kind of the reference.
func (r Ref) GroupKind() schema.GroupKind {
	gv, _ := schema.ParseGroupVersion(r.APIVersion)
	return schema.GroupKind{Group: gv.Group, Kind: r.Kind}
}
