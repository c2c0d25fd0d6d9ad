// Package yamlfile decodes the YAML files people write (k8sprep.yaml, the
// cluster inventory) strictly, and reports every problem as one line that
// names the file, the line and the field: "cluster.yaml:12: spec.hosts[1].address: ...".
package yamlfile

import (
	"bytes"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync"

	"go.yaml.in/yaml/v3"
)

// FieldError is a problem with one field, named by its path
// ("spec.hosts[1].address"); WithLine adds the file and line.
type FieldError struct {
	Field   string
	Message string
}

func (e FieldError) Error() string { return e.Field + ": " + e.Message }

// FieldPath is the field's path.
func (e FieldError) FieldPath() string { return e.Field }

// Fielder is an error about one field that WithLine can place in the file.
type Fielder interface {
	error
	FieldPath() string
}

// Decode reads one YAML document into out, refusing unknown fields, and
// returns the document's node (for WithLine). Errors are "path:line: message".
func Decode(path string, data []byte, out any) (*yaml.Node, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, Error(path, err)
	}
	if len(root.Content) == 0 {
		return nil, fmt.Errorf("%s: the file is empty", path)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(out); err != nil {
		return nil, Error(path, err)
	}
	return root.Content[0], nil
}

func lazyRegexp(expr string) func() *regexp.Regexp {
	return sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(expr) })
}

var (
	yamlLine     = lazyRegexp(`^(?:yaml: )?line (\d+): (.*)$`)
	yamlNotFound = lazyRegexp(`field (\S+) not found in type [\w/]*\.(\w+)`)
	yamlIntoType = lazyRegexp(` into [\w/]*\.\w+`)
)

// Error rewrites yaml.v3 messages ("line 3: field x not found in type
// stack.App") into "file:3: ..." lines.
func Error(path string, err error) error {
	var te *yaml.TypeError
	msgs := []string{err.Error()}
	if errors.As(err, &te) {
		msgs = te.Errors
	}
	out := make([]string, 0, len(msgs))
	for _, m := range msgs {
		m = strings.TrimPrefix(m, "yaml: ")
		if g := yamlLine().FindStringSubmatch(m); g != nil {
			msg := g[2]
			msg = yamlNotFound().ReplaceAllString(msg, "unknown field $1 (in $2)")
			msg = yamlIntoType().ReplaceAllString(msg, "")
			out = append(out, fmt.Sprintf("%s:%s: %s", path, g[1], msg))
			continue
		}
		out = append(out, fmt.Sprintf("%s: %s", path, m))
	}
	return errors.New(strings.Join(out, "; "))
}

// WithLine prefixes a Fielder with the file and the line of the field.
func WithLine(path string, doc *yaml.Node, err error) error {
	var fe Fielder
	if !errors.As(err, &fe) {
		return fmt.Errorf("%s: %w", path, err)
	}
	line := LineOf(doc, fe.FieldPath())
	if line == 0 {
		return fmt.Errorf("%s: %s", path, fe.Error())
	}
	return fmt.Errorf("%s:%d: %s", path, line, fe.Error())
}

// LineOf finds the line of a field path like "app.ports[1]" in a YAML
// document; when the field is absent it returns the line of its closest parent.
func LineOf(doc *yaml.Node, field string) int {
	n := doc
	line := 0
	if n != nil {
		line = n.Line
	}
	for _, st := range steps(field) {
		if st.index < 0 {
			if n == nil || n.Kind != yaml.MappingNode {
				return line
			}
			var next *yaml.Node
			for i := 0; i+1 < len(n.Content); i += 2 {
				if n.Content[i].Value == st.key {
					line = n.Content[i].Line
					next = n.Content[i+1]
				}
			}
			if next == nil {
				return line
			}
			n = next
			continue
		}
		if n.Kind != yaml.SequenceNode || st.index >= len(n.Content) {
			return line
		}
		n = n.Content[st.index]
		line = n.Line
	}
	return line
}

type step struct {
	key   string
	index int // -1 for a mapping key
}

// steps splits `a.b[2].c["x.y"]` into a, b, [2], c, x.y.
func steps(field string) []step {
	var out []step
	for field != "" {
		switch field[0] {
		case '.':
			field = field[1:]
		case '[':
			end := strings.IndexByte(field, ']')
			if end < 0 {
				return append(out, step{key: field[1:], index: -1})
			}
			inner := field[1:end]
			if strings.HasPrefix(inner, `"`) {
				// A quoted key may hold dots and brackets.
				if q, rest, ok := unquotePrefix(field[1:]); ok && strings.HasPrefix(rest, "]") {
					out = append(out, step{key: q, index: -1})
					field = rest[1:]
					continue
				}
			}
			if i, err := strconv.Atoi(inner); err == nil {
				out = append(out, step{index: i})
			} else {
				out = append(out, step{key: inner, index: -1})
			}
			field = field[end+1:]
		default:
			end := strings.IndexAny(field, ".[")
			if end < 0 {
				end = len(field)
			}
			out = append(out, step{key: field[:end], index: -1})
			field = field[end:]
		}
	}
	return out
}

// unquotePrefix reads one Go-quoted string at the start of s.
func unquotePrefix(s string) (string, string, bool) {
	for i := 1; i < len(s); i++ {
		if s[i] == '\\' {
			i++
			continue
		}
		if s[i] == '"' {
			q, err := strconv.Unquote(s[:i+1])
			return q, s[i+1:], err == nil
		}
	}
	return "", s, false
}
