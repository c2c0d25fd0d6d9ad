package yamlfile

import (
	"testing"

	"go.yaml.in/yaml/v3"
)

func TestLineOf(t *testing.T) {
	doc := `spec:
  hosts:
    - name: a
    - name: b
      roles: [x]
  mirrors:
    "https://dl.k8s.io": http://m
    plain: 1
`
	var root yaml.Node
	if err := yaml.Unmarshal([]byte(doc), &root); err != nil {
		t.Fatal(err)
	}
	for field, want := range map[string]int{
		"spec":                              1,
		"spec.hosts[1].name":                4,
		"spec.hosts[1].roles[0]":            5,
		"spec.hosts[7].name":                2, // no such index: the parent's line
		"spec.hosts[0].missing":             3,
		`spec.mirrors["https://dl.k8s.io"]`: 7,
		"spec.mirrors[plain]":               8,
		"spec.mirrors.plain":                8,
		"nothing":                           1,
	} {
		if got := LineOf(root.Content[0], field); got != want {
			t.Errorf("%s: line %d, want %d", field, got, want)
		}
	}
}

func TestDecodeErrors(t *testing.T) {
	var v sample
	for data, want := range map[string]string{
		"":         "f.yaml: the file is empty",
		"b: 1\n":   "f.yaml:1: unknown field b (in sample)",
		"a: x\n":   "f.yaml:1: cannot unmarshal !!str `x` into int",
		"a: [1\n":  "f.yaml:1: did not find expected ',' or ']'",
		"\ta: 1\n": "f.yaml: found character that cannot start any token",
	} {
		_, err := Decode("f.yaml", []byte(data), &v)
		if err == nil || err.Error() != want {
			t.Errorf("%q: %v, want %q", data, err, want)
		}
	}
}

type sample struct {
	A int `yaml:"a"`
}
