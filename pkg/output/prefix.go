package output

import (
	"bytes"
	"io"
)

// PrefixWriter starts every line written to it with Prefix (log lines of
// several containers, build output indented under progress lines). It is not
// safe for concurrent writers: give each goroutine its own.
type PrefixWriter struct {
	W       io.Writer
	Prefix  string
	midLine bool
}

func (p *PrefixWriter) Write(b []byte) (int, error) {
	var out bytes.Buffer
	for _, c := range b {
		if !p.midLine {
			out.WriteString(p.Prefix)
		}
		out.WriteByte(c)
		p.midLine = c != '\n'
	}
	if _, err := p.W.Write(out.Bytes()); err != nil {
		return 0, err
	}
	return len(b), nil
}
