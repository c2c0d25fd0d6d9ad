package stack

import (
	"fmt"
	"strconv"
	"strings"
)

// A small, line-based TOML editor: it finds `key = value` lines under their
// [table] and replaces only the value, so comments, order and layout of the
// user's config survive in the rewritten copy. Multi-line values are not
// supported for the keys it edits (host, port, user, password, database).

type tomlLine struct {
	key        string // full dotted key, "" when the line holds no key
	valueStart int    // byte offsets of the value in the line
	valueEnd   int
}

func tomlScan(data []byte) ([]string, []tomlLine) {
	lines := strings.Split(string(data), "\n")
	out := make([]tomlLine, len(lines))
	table := ""
	for i, raw := range lines {
		t := strings.TrimSpace(raw)
		if t == "" || t[0] == '#' {
			continue
		}
		if t[0] == '[' {
			name := strings.Trim(t, "[]")
			if j := strings.IndexByte(name, '#'); j >= 0 {
				name = strings.TrimRight(strings.Trim(strings.TrimSpace(name[:j]), "[]"), " ")
			}
			table = normKey(name)
			continue
		}
		eq := strings.IndexByte(raw, '=')
		if eq < 0 {
			continue
		}
		key := normKey(raw[:eq])
		if table != "" {
			key = table + "." + key
		}
		start := eq + 1
		for start < len(raw) && (raw[start] == ' ' || raw[start] == '\t') {
			start++
		}
		end := valueEnd(raw, start)
		out[i] = tomlLine{key: key, valueStart: start, valueEnd: end}
	}
	return lines, out
}

// normKey turns ` "a" . b ` into `a.b`.
func normKey(s string) string {
	parts := strings.Split(strings.TrimSpace(s), ".")
	for i, p := range parts {
		parts[i] = strings.Trim(strings.TrimSpace(p), `"'`)
	}
	return strings.Join(parts, ".")
}

// valueEnd returns where the value starting at start ends (before a comment
// and trailing blanks).
func valueEnd(line string, start int) int {
	if start < len(line) && (line[start] == '"' || line[start] == '\'') {
		q := line[start]
		for i := start + 1; i < len(line); i++ {
			if q == '"' && line[i] == '\\' {
				i++
				continue
			}
			if line[i] == q {
				return i + 1
			}
		}
		return len(line)
	}
	end := len(line)
	if j := strings.IndexByte(line[start:], '#'); j >= 0 {
		end = start + j
	}
	return len(strings.TrimRight(line[:end], " \t\r"))
}

// tomlLookup returns the raw text of the value of key.
func tomlLookup(data []byte, key string) (string, bool) {
	lines, parsed := tomlScan(data)
	for i, p := range parsed {
		if p.key == key {
			return lines[i][p.valueStart:p.valueEnd], true
		}
	}
	return "", false
}

// tomlUnquote returns the value of a raw TOML scalar (strings unquoted).
func tomlUnquote(raw string) string {
	if len(raw) >= 2 && raw[0] == '\'' {
		return raw[1 : len(raw)-1]
	}
	if len(raw) >= 2 && raw[0] == '"' {
		if v, err := strconv.Unquote(raw); err == nil {
			return v
		}
		return raw[1 : len(raw)-1]
	}
	return raw
}

// tomlRewrite sets each key to its value (string or int); a string is
// written quoted, an int keeps the original's quoting. Keys in required must
// exist; others are skipped when absent.
func tomlRewrite(data []byte, values map[string]any, required ...string) ([]byte, error) {
	lines, parsed := tomlScan(data)
	found := map[string]bool{}
	for i, p := range parsed {
		v, ok := values[p.key]
		if !ok || p.key == "" {
			continue
		}
		old := lines[i][p.valueStart:p.valueEnd]
		var nv string
		switch x := v.(type) {
		case int:
			nv = strconv.Itoa(x)
			if strings.HasPrefix(old, `"`) || strings.HasPrefix(old, `'`) {
				nv = strconv.Quote(nv)
			}
		case string:
			nv = tomlQuote(x)
		default:
			return nil, fmt.Errorf("unsupported value type %T for %s", v, p.key)
		}
		lines[i] = lines[i][:p.valueStart] + nv + lines[i][p.valueEnd:]
		found[p.key] = true
	}
	for _, k := range required {
		if !found[k] {
			return nil, fmt.Errorf("config has no key %q", k)
		}
	}
	return []byte(strings.Join(lines, "\n")), nil
}

// tomlQuote writes a TOML basic string.
func tomlQuote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch r {
		case '"':
			b.WriteString(`\"`)
		case '\\':
			b.WriteString(`\\`)
		case '\n':
			b.WriteString(`\n`)
		case '\t':
			b.WriteString(`\t`)
		case '\r':
			b.WriteString(`\r`)
		default:
			if r < 0x20 || r == 0x7f {
				fmt.Fprintf(&b, `\u%04X`, r)
			} else {
				b.WriteRune(r)
			}
		}
	}
	b.WriteByte('"')
	return b.String()
}

// RewriteConfig returns the stack's config file with the database keys
// pointing at host:port and carrying the stack's credentials. The user's
// file is only read.
func (s *Stack) RewriteConfig(data []byte, host string, port int, password string) ([]byte, error) {
	c := s.App.Config
	if c == nil {
		return nil, nil
	}
	vals := map[string]any{c.HostKey: host, c.PortKey: port}
	if c.UserKey != "" {
		vals[c.UserKey] = s.MySQL.User
	}
	if c.PasswordKey != "" {
		vals[c.PasswordKey] = password
	}
	if c.DatabaseKey != "" {
		vals[c.DatabaseKey] = s.MySQL.Database
	}
	return tomlRewrite(data, vals, c.HostKey, c.PortKey)
}
