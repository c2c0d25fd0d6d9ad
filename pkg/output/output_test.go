package output

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

func TestParseFormat(t *testing.T) {
	for in, want := range map[string]Format{"": Table, "table": Table, "json": JSON, " JSON ": JSON, "yaml": YAML, "wide": Wide} {
		got, err := ParseFormat(in, Table, Wide, JSON, YAML)
		if err != nil || got != want {
			t.Errorf("ParseFormat(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	_, err := ParseFormat("wide", Table, JSON, YAML)
	if err == nil || err.Error() != `unknown output format "wide": allowed formats are json|yaml` {
		t.Errorf("ParseFormat(wide) without Wide allowed: %v", err)
	}
	if _, err := ParseFormat("xml", Table, JSON); err == nil || !strings.Contains(err.Error(), `"xml"`) {
		t.Errorf("ParseFormat(xml): %v", err)
	}
	if Table.Structured() || Wide.Structured() || !JSON.Structured() || !YAML.Structured() {
		t.Error("Structured: only json and yaml are for scripts")
	}
}

type sample struct {
	Name     string            `json:"name"`
	Ready    bool              `json:"ready"`
	Count    int               `json:"count"`
	Optional string            `json:"optional,omitempty"`
	Labels   map[string]string `json:"labels"`
	Items    []string          `json:"items"`
}

var sampleValue = sample{Name: "cp-1", Ready: true, Count: 3, Labels: map[string]string{"b": "2", "a": "1"}, Items: []string{"x", "y"}}

func TestPrintJSON(t *testing.T) {
	var b bytes.Buffer
	if err := Print(&b, JSON, sampleValue); err != nil {
		t.Fatal(err)
	}
	want := `{
  "name": "cp-1",
  "ready": true,
  "count": 3,
  "labels": {
    "a": "1",
    "b": "2"
  },
  "items": [
    "x",
    "y"
  ]
}
`
	if b.String() != want {
		t.Errorf("JSON:\n%s\nwant:\n%s", b.String(), want)
	}
}

func TestPrintYAML(t *testing.T) {
	var b bytes.Buffer
	if err := Print(&b, YAML, sampleValue); err != nil {
		t.Fatal(err)
	}
	// json tags name the fields; keys come out sorted like kubectl -o yaml.
	want := `count: 3
items:
  - x
  - "y"
labels:
  a: "1"
  b: "2"
name: cp-1
ready: true
`
	if b.String() != want {
		t.Errorf("YAML:\n%s\nwant:\n%s", b.String(), want)
	}
	var back sample
	if err := yaml.Unmarshal(b.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	j1, _ := json.Marshal(back)
	j2, _ := json.Marshal(sampleValue)
	if !bytes.Equal(j1, j2) {
		t.Errorf("YAML does not round-trip: %s vs %s", j1, j2)
	}
}

func TestPrintRejectsTable(t *testing.T) {
	if err := Print(&bytes.Buffer{}, Table, sampleValue); err == nil {
		t.Error("Print(Table) should fail: tables go through RenderTable")
	}
	if err := Print(&bytes.Buffer{}, JSON, func() {}); err == nil {
		t.Error("Print of an unencodable value should fail")
	}
}

var ansi = regexp.MustCompile("\x1b\\[[0-9;]*m")

func trimLines(s string) []string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i, l := range lines {
		lines[i] = strings.TrimRight(l, " ")
	}
	return lines
}

func TestRenderTableLayout(t *testing.T) {
	var b bytes.Buffer
	err := RenderTable(&b, []string{"name", "node status", "age"}, [][]string{
		{"cp-1", "Ready", "5m"},
		{"worker-long-name", "NotReady", ""},
		{"a very long cell that must not wrap, whatever the terminal width says", "x", "1d"},
	})
	if err != nil {
		t.Fatal(err)
	}
	// kubectl get layout: upper-case headers, left aligned, columns three
	// spaces apart, no borders or separator lines.
	col := func(s string) string { return s + strings.Repeat(" ", 72-len(s)) } // longest cell + 3
	want := []string{
		col("NAME") + "NODE STATUS   AGE",
		col("cp-1") + "Ready         5m",
		col("worker-long-name") + "NotReady",
		col("a very long cell that must not wrap, whatever the terminal width says") + "x             1d",
	}
	got := trimLines(b.String())
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("table:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if ansi.MatchString(b.String()) || strings.ContainsAny(b.String(), "|+─│┌") {
		t.Errorf("table has colour or border characters: %q", b.String())
	}
}

func TestRenderTableEmptyAndUnicode(t *testing.T) {
	var b bytes.Buffer
	if err := RenderTable(&b, []string{"name", "ip"}, nil); err != nil {
		t.Fatal(err)
	}
	if got := trimLines(b.String()); len(got) != 1 || got[0] != "NAME   IP" {
		t.Errorf("header-only table: %q", b.String())
	}
	b.Reset()
	if err := RenderTable(&b, []string{"check", "ok"}, [][]string{{"etcd ✓", "yes"}, {"kube-proxy", "no"}}); err != nil {
		t.Fatal(err)
	}
	want := []string{"CHECK        OK", "etcd ✓       yes", "kube-proxy   no"}
	if got := trimLines(b.String()); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("unicode widths:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestIsTerminal(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	f, err := os.Create(filepath.Join(t.TempDir(), "out"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if IsTerminal(w) || IsTerminal(f) || IsTerminal(&bytes.Buffer{}) {
		t.Error("a pipe, a file or a buffer is not a terminal")
	}
	tty, err := os.OpenFile("/dev/ptmx", os.O_RDWR, 0)
	if err != nil {
		noPTY(t, err)
	}
	defer tty.Close()
	if !IsTerminal(tty) {
		t.Error("a pseudo-terminal is a terminal")
	}
}

func TestColourOnlyOnTerminal(t *testing.T) {
	t.Setenv("TERM", "xterm")
	os.Unsetenv("NO_COLOR")
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	for name, out := range map[string]any{"buffer": &bytes.Buffer{}, "pipe": w} {
		c := NewColorer(out.(interface{ Write([]byte) (int, error) }))
		if got := c.Red("x") + c.Green("y") + c.Yellow("z") + c.Bold("b"); got != "xyzb" {
			t.Errorf("%s: colour off a terminal: %q", name, got)
		}
	}
	tty, err := os.OpenFile("/dev/ptmx", os.O_RDWR, 0)
	if err != nil {
		noPTY(t, err)
	}
	defer tty.Close()
	if got := NewColorer(tty).Red("x"); got != "\x1b[31mx\x1b[0m" {
		t.Errorf("terminal: %q, want red", got)
	}
	t.Setenv("NO_COLOR", "")
	if got := NewColorer(tty).Red("x"); got != "x" {
		t.Errorf("NO_COLOR set: %q", got)
	}
	os.Unsetenv("NO_COLOR")
	t.Setenv("TERM", "dumb")
	if got := NewColorer(tty).Green("x"); got != "x" {
		t.Errorf("TERM=dumb: %q", got)
	}
}

func TestProgress(t *testing.T) {
	var b bytes.Buffer
	p := NewProgress(&b, false)
	p.Start("pulling %s", "image")
	p.Start("starting")
	p.Fail()
	p.Done() // nothing open: no output
	p.Start("last")
	p.Done()
	re := regexp.MustCompile(`^ • pulling image \.\.\.
 ✓ pulling image \(\d+(\.\d+)?[mµn]?s\)
 • starting \.\.\.
 ✗ starting
 • last \.\.\.
 ✓ last \(\d+(\.\d+)?[mµn]?s\)
$`)
	if !re.MatchString(b.String()) {
		t.Errorf("progress:\n%s", b.String())
	}
	if ansi.MatchString(b.String()) {
		t.Errorf("progress off a terminal has colour: %q", b.String())
	}
	b.Reset()
	q := NewProgress(&b, true)
	q.Start("quiet")
	q.Done()
	q.Start("quiet fail")
	q.Fail()
	if b.Len() != 0 {
		t.Errorf("quiet progress wrote %q", b.String())
	}
}

// noPTY skips without a pseudo-terminal, except under CI where it must exist.
func noPTY(t *testing.T, err error) {
	t.Helper()
	if os.Getenv("CI") != "" {
		t.Fatalf("no pseudo-terminal to test colour with: %v", err)
	}
	t.Skipf("no pseudo-terminal to test with: %v", err)
}

func TestTableHasNoTrailingBlanks(t *testing.T) {
	var buf bytes.Buffer
	if err := RenderTable(&buf, []string{"name", "status"}, [][]string{{"cp-1", "Ready"}, {"worker-1", ""}}); err != nil {
		t.Fatal(err)
	}
	want := "NAME       STATUS\ncp-1       Ready\nworker-1\n"
	if buf.String() != want {
		t.Fatalf("table:\n%q\nwant\n%q", buf.String(), want)
	}
}

// Headers are upper-cased and otherwise printed as given: tablewriter's
// auto-format used to print "INTERNAL-IP" as "INTERNAL - IP" (issue 18).
func TestHeadersKeepPunctuation(t *testing.T) {
	var b bytes.Buffer
	if err := RenderTable(&b, []string{"name", "INTERNAL-IP", "NOMINATED_NODE", "api.group", "DAYS LEFT"},
		[][]string{{"cp-1", "10.0.0.11", "<none>", "apps", "300"}}); err != nil {
		t.Fatal(err)
	}
	want := "NAME   INTERNAL-IP   NOMINATED_NODE   API.GROUP   DAYS LEFT\ncp-1   10.0.0.11     <none>           apps        300\n"
	if b.String() != want {
		t.Errorf("table:\n%q\nwant:\n%q", b.String(), want)
	}
}
