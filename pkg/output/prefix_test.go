package output

import (
	"bytes"
	"testing"
)

func TestPrefixWriter(t *testing.T) {
	var buf bytes.Buffer
	w := &PrefixWriter{W: &buf, Prefix: "app | "}
	for _, chunk := range []string{"first li", "ne\nsecond\n", "", "third"} {
		if n, err := w.Write([]byte(chunk)); err != nil || n != len(chunk) {
			t.Fatalf("Write(%q) = %d, %v", chunk, n, err)
		}
	}
	if want := "app | first line\napp | second\napp | third"; buf.String() != want {
		t.Fatalf("got %q, want %q", buf.String(), want)
	}
}
