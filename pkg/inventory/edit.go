package inventory

import (
	"bytes"
	"fmt"
	"slices"

	"go.yaml.in/yaml/v3"
)

// SetHosts returns the cluster file data with hosts in spec.hosts: a host
// whose name is already there gets its address, internal address and roles
// replaced in its entry (and its ssh when the host has one; its other fields
// and the comments stay); a new one
// is appended as a one-line entry. The result is parsed again (Parse) so
// that a file this returns is always valid.
func SetHosts(path string, data []byte, hosts []Host) ([]byte, error) {
	doc, list, err := hostsList(path, data)
	if err != nil {
		return nil, err
	}
	for _, h := range hosts {
		var entry *yaml.Node
		for _, e := range list.Content {
			if n := mapValue(e, "name"); n != nil && n.Value == h.Name {
				entry = e
			}
		}
		if entry == nil {
			entry = &yaml.Node{Kind: yaml.MappingNode, Style: yaml.FlowStyle}
			setScalar(entry, "name", h.Name)
			list.Content = append(list.Content, entry)
		}
		setScalar(entry, "address", h.Address)
		if h.InternalAddress != "" && h.InternalAddress != h.Address {
			setScalar(entry, "internalAddress", h.InternalAddress)
		} else {
			deleteKey(entry, "internalAddress")
		}
		roles := &yaml.Node{Kind: yaml.SequenceNode, Style: yaml.FlowStyle}
		for _, r := range h.Roles {
			roles.Content = append(roles.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: r})
		}
		setNode(entry, "roles", roles)
		if h.SSH != nil {
			var ssh yaml.Node
			if err := ssh.Encode(h.SSH); err != nil {
				return nil, err
			}
			ssh.Style = yaml.FlowStyle
			setNode(entry, "ssh", &ssh)
		}
	}
	return encode(path, doc)
}

func mapValue(m *yaml.Node, key string) *yaml.Node {
	if m == nil || m.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}

func setScalar(m *yaml.Node, key, value string) {
	setNode(m, key, &yaml.Node{Kind: yaml.ScalarNode, Value: value})
}

func setNode(m *yaml.Node, key string, v *yaml.Node) {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			m.Content[i+1] = v
			return
		}
	}
	m.Content = append(m.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: key}, v)
}

func deleteKey(m *yaml.Node, key string) {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			m.Content = append(m.Content[:i], m.Content[i+2:]...)
			return
		}
	}
}

// RemoveHosts returns the cluster file data without the named hosts in
// spec.hosts (the rest, comments included, stays), parsed again to be sure
// it is valid.
func RemoveHosts(path string, data []byte, names []string) ([]byte, error) {
	doc, list, err := hostsList(path, data)
	if err != nil {
		return nil, err
	}
	kept := list.Content[:0]
	for _, e := range list.Content {
		if n := mapValue(e, "name"); n == nil || !slices.Contains(names, n.Value) {
			kept = append(kept, e)
		}
	}
	list.Content = kept
	return encode(path, doc)
}

func encode(path string, doc *yaml.Node) ([]byte, error) {
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(doc); err != nil {
		return nil, err
	}
	if _, err := Parse(path, buf.Bytes()); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// hostsList parses a cluster file and finds its spec.hosts sequence.
func hostsList(path string, data []byte) (*yaml.Node, *yaml.Node, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 {
		return nil, nil, fmt.Errorf("%s: not one YAML document", path)
	}
	list := mapValue(mapValue(doc.Content[0], "spec"), "hosts")
	if list == nil || list.Kind != yaml.SequenceNode {
		return nil, nil, fmt.Errorf("%s: no spec.hosts list", path)
	}
	return &doc, list, nil
}
