// Package output renders results for people (kubectl-like borderless tables,
// colour only on a terminal) and for scripts (-o json|yaml). It must stay free
// of client-go: the docker plugin links it.
package output

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/olekukonko/tablewriter"
	"github.com/olekukonko/tablewriter/renderer"
	"github.com/olekukonko/tablewriter/tw"
	"go.yaml.in/yaml/v3"
)

// Format is an output format selected with -o.
type Format string

const (
	Table Format = ""
	Wide  Format = "wide"
	JSON  Format = "json"
	YAML  Format = "yaml"
)

// ParseFormat checks an -o value against the formats a command allows.
func ParseFormat(s string, allowed ...Format) (Format, error) {
	f := Format(strings.ToLower(strings.TrimSpace(s)))
	if f == "table" {
		f = Table
	}
	names := make([]string, 0, len(allowed))
	for _, a := range allowed {
		if f == a {
			return f, nil
		}
		if a != Table {
			names = append(names, string(a))
		}
	}
	return "", fmt.Errorf("unknown output format %q: allowed formats are %s", s, strings.Join(names, "|"))
}

// Structured reports whether the format is meant for scripts.
func (f Format) Structured() bool { return f == JSON || f == YAML }

// Print writes v as JSON (indented, trailing newline) or YAML.
func Print(w io.Writer, f Format, v any) error {
	switch f {
	case JSON:
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	case YAML:
		// Round-trip through JSON so that json tags decide the field names,
		// the same as `kubectl get -o yaml`.
		b, err := json.Marshal(v)
		if err != nil {
			return err
		}
		var generic any
		if err := yaml.Unmarshal(b, &generic); err != nil {
			return err
		}
		enc := yaml.NewEncoder(w)
		enc.SetIndent(2)
		if err := enc.Encode(generic); err != nil {
			return err
		}
		return enc.Close()
	}
	return fmt.Errorf("format %q is not a structured format", f)
}

// NewTable returns a kubectl-like borderless table: upper-case headers, columns
// separated by three spaces, no lines. Headers are upper-cased here and
// otherwise printed as given: tablewriter's header auto-format would also
// split words at '-', '_' and '.' ("INTERNAL-IP" became "INTERNAL - IP").
func NewTable(w io.Writer, header ...string) *tablewriter.Table {
	t := tablewriter.NewTable(&trimWriter{w: w},
		tablewriter.WithRenderer(renderer.NewBlueprint(tw.Rendition{
			Borders: tw.BorderNone,
			Symbols: tw.NewSymbols(tw.StyleNone),
			Settings: tw.Settings{
				Lines:      tw.Lines{ShowHeaderLine: tw.Off},
				Separators: tw.Separators{BetweenRows: tw.Off, BetweenColumns: tw.Off},
			},
		})),
		tablewriter.WithHeaderAlignment(tw.AlignLeft),
		tablewriter.WithRowAlignment(tw.AlignLeft),
		tablewriter.WithPadding(tw.Padding{Left: "", Right: "   ", Overwrite: true}),
		tablewriter.WithHeaderAutoFormat(tw.Off),
		tablewriter.WithRowAutoWrap(tw.WrapNone),
	)
	if len(header) > 0 {
		h := make([]any, len(header))
		for i, s := range header {
			h[i] = strings.ToUpper(s)
		}
		t.Header(h...)
	}
	return t
}

// trimWriter drops the padding tablewriter leaves after the last column, so
// lines end like kubectl's (no trailing blanks). The table always ends its
// lines with a newline, so nothing stays buffered after Render.
type trimWriter struct {
	w       io.Writer
	pending []byte
}

func (t *trimWriter) Write(p []byte) (int, error) {
	t.pending = append(t.pending, p...)
	for {
		i := bytes.IndexByte(t.pending, '\n')
		if i < 0 {
			return len(p), nil
		}
		line := append(bytes.TrimRight(t.pending[:i], " \t"), '\n') // overwrites only trimmed bytes
		if _, err := t.w.Write(line); err != nil {
			return 0, err
		}
		t.pending = t.pending[i+1:]
	}
}

// RenderTable writes rows under header as a kubectl-like table.
func RenderTable(w io.Writer, header []string, rows [][]string) error {
	t := NewTable(w, header...)
	for _, r := range rows {
		cells := make([]any, len(r))
		for i, c := range r {
			cells[i] = c
		}
		if err := t.Append(cells...); err != nil {
			return err
		}
	}
	return t.Render()
}

// IsTerminal reports whether w is a character device (a terminal).
func IsTerminal(w io.Writer) bool {
	f, ok := w.(interface{ Stat() (os.FileInfo, error) })
	if !ok {
		return false
	}
	fi, err := f.Stat()
	if err != nil {
		return false
	}
	return fi.Mode()&os.ModeCharDevice != 0
}

// Colorer adds ANSI colour only when writing to a terminal and NO_COLOR is unset.
type Colorer struct{ enabled bool }

// NewColorer decides once whether colour is used for w.
func NewColorer(w io.Writer) Colorer {
	_, noColor := os.LookupEnv("NO_COLOR")
	return Colorer{enabled: !noColor && os.Getenv("TERM") != "dumb" && IsTerminal(w)}
}

func (c Colorer) wrap(code, s string) string {
	if !c.enabled {
		return s
	}
	return "\x1b[" + code + "m" + s + "\x1b[0m"
}

// Green, Yellow, Red and Bold colour s on a terminal and return it unchanged otherwise.
func (c Colorer) Green(s string) string  { return c.wrap("32", s) }
func (c Colorer) Yellow(s string) string { return c.wrap("33", s) }
func (c Colorer) Red(s string) string    { return c.wrap("31", s) }
func (c Colorer) Bold(s string) string   { return c.wrap("1", s) }
