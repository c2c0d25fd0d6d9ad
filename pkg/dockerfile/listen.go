package dockerfile

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// Listen is what the Go sources of a main package say about it as a
// network server.
type Listen struct {
	// Server is true when the program listens: http.ListenAndServe,
	// net.Listen, an http.Server, a gRPC server, a web framework's Run(":N").
	Server bool `json:"server"`
	// Ports it listens on by default, the most likely first.
	Ports []int `json:"ports,omitempty"`
}

// Port is the most likely port, 0 when none was found.
func (l Listen) Port() int {
	if len(l.Ports) == 0 {
		return 0
	}
	return l.Ports[0]
}

var (
	addrPort     = lazyRegexp(`^(?:|0\.0\.0\.0|\[::\]|::|\*)?:(\d{2,5})$`)
	anyHostPort  = lazyRegexp(`^[A-Za-z0-9.\-\[\]:]*:(\d{2,5})$`)
	digitsPort   = lazyRegexp(`^\d{2,5}$`)
	portName     = lazyRegexp(`(?i)port|addr|listen|bind`)
	serverCalls  = map[string]bool{"ListenAndServe": true, "ListenAndServeTLS": true, "Listen": true, "ListenTCP": true, "ListenPacket": true, "Serve": true, "ServeTLS": true, "HandleFunc": true, "Handle": true, "NewServer": true}
	addressCalls = map[string]bool{"ListenAndServe": true, "ListenAndServeTLS": true, "Listen": true, "Run": true, "RunTLS": true, "Start": true, "StartTLS": true}
)

// Priorities of a port found in the sources, most certain first.
const (
	prioListenArg    = iota // http.ListenAndServe(":8080"), Server{Addr: ":8080"}
	prioNamedDefault        // flag.String("addr", ":8080", ...), getenv("PORT", "80")
	prioNamedValue          // port := "3000", const defaultPort = 8080
	prioLiteral             // any ":8080" literal
)

type portHit struct{ prio, order, port int }

// DetectListen reads the main package in dir and, when it finds nothing
// there, the packages of the same module it imports (module is the
// module's root directory, "" to look at dir only).
func DetectListen(module, dir string) Listen {
	var modPath string
	if module != "" {
		if b, err := os.ReadFile(filepath.Join(module, "go.mod")); err == nil {
			for _, ln := range strings.Split(string(b), "\n") {
				if rest, ok := strings.CutPrefix(strings.TrimSpace(ln), "module "); ok {
					modPath = strings.Trim(strings.TrimSpace(rest), `"`)
					break
				}
			}
		}
	}
	var res Listen
	seen := map[string]bool{dir: true}
	queue := []string{dir}
	for len(queue) > 0 && len(seen) < 64 {
		d := queue[0]
		queue = queue[1:]
		hits, server, imports := scanPackage(d)
		res.Server = res.Server || server
		if len(res.Ports) == 0 && len(hits) > 0 {
			sort.SliceStable(hits, func(i, j int) bool {
				if hits[i].prio != hits[j].prio {
					return hits[i].prio < hits[j].prio
				}
				return hits[i].order < hits[j].order
			})
			for _, h := range hits {
				if h.prio == prioLiteral && hits[0].prio != prioLiteral {
					break
				}
				if !containsInt(res.Ports, h.port) {
					res.Ports = append(res.Ports, h.port)
				}
			}
		}
		if modPath == "" {
			break
		}
		for _, imp := range imports {
			rel, ok := strings.CutPrefix(imp, modPath+"/")
			if !ok {
				continue
			}
			p := filepath.Join(module, filepath.FromSlash(rel))
			if !seen[p] {
				seen[p] = true
				queue = append(queue, p)
			}
		}
	}
	if !res.Server {
		res.Ports = nil
	}
	return res
}

func containsInt(s []int, v int) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

func portOf(lit *ast.BasicLit, re *regexp.Regexp) int {
	var s string
	switch lit.Kind {
	case token.STRING:
		v, err := strconv.Unquote(lit.Value)
		if err != nil {
			return 0
		}
		s = v
		if m := re.FindStringSubmatch(s); m != nil {
			s = m[1]
		} else if !digitsPort().MatchString(s) || re == addrPort() {
			return 0
		}
	case token.INT:
		s = lit.Value
	default:
		return 0
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > 65535 {
		return 0
	}
	return n
}

func strLit(e ast.Expr) (string, bool) {
	if b, ok := e.(*ast.BasicLit); ok && b.Kind == token.STRING {
		v, err := strconv.Unquote(b.Value)
		return v, err == nil
	}
	return "", false
}

// scanPackage parses the non-test Go files of one directory.
func scanPackage(dir string) (hits []portHit, server bool, imports []string) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, false, nil
	}
	fset := token.NewFileSet()
	order := 0
	add := func(prio, port int) {
		if port > 0 {
			hits = append(hits, portHit{prio, order, port})
			order++
		}
	}
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, filepath.Join(dir, name), nil, parser.SkipObjectResolution)
		if err != nil {
			continue
		}
		for _, imp := range f.Imports {
			if p, err := strconv.Unquote(imp.Path.Value); err == nil {
				imports = append(imports, p)
			}
		}
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.CallExpr:
				if sel, ok := n.Fun.(*ast.SelectorExpr); ok {
					name := sel.Sel.Name
					if serverCalls[name] {
						server = true
					}
					if addressCalls[name] {
						for _, a := range n.Args {
							if b, ok := a.(*ast.BasicLit); ok {
								if p := portOf(b, anyHostPort()); p > 0 && b.Kind == token.STRING {
									add(prioListenArg, p)
									server = true
								}
								break
							}
						}
					}
				}
				// flag.String("addr", ":8080", ...), getEnv("PORT", "8080")
				for i, a := range n.Args {
					if s, ok := strLit(a); ok && portName().MatchString(s) && !strings.Contains(s, " ") {
						for _, d := range n.Args[i+1:] {
							if b, ok := d.(*ast.BasicLit); ok {
								add(prioNamedDefault, portOf(b, anyHostPort()))
								break
							}
						}
						break
					}
				}
			case *ast.CompositeLit:
				for _, el := range n.Elts {
					kv, ok := el.(*ast.KeyValueExpr)
					if !ok {
						continue
					}
					key, ok := kv.Key.(*ast.Ident)
					b, isLit := kv.Value.(*ast.BasicLit)
					if !ok || !isLit {
						continue
					}
					if key.Name == "Addr" {
						if sel, ok := n.Type.(*ast.SelectorExpr); ok && sel.Sel.Name == "Server" {
							server = true
							add(prioListenArg, portOf(b, anyHostPort()))
							continue
						}
					}
					if portName().MatchString(key.Name) {
						add(prioNamedValue, portOf(b, anyHostPort()))
					}
				}
			case *ast.AssignStmt:
				for i, lhs := range n.Lhs {
					id, ok := lhs.(*ast.Ident)
					if ok && i < len(n.Rhs) && strings.Contains(strings.ToLower(id.Name), "port") {
						if b, ok := n.Rhs[i].(*ast.BasicLit); ok {
							add(prioNamedValue, portOf(b, anyHostPort()))
						}
					}
				}
			case *ast.ValueSpec:
				for i, id := range n.Names {
					if i < len(n.Values) && strings.Contains(strings.ToLower(id.Name), "port") {
						if b, ok := n.Values[i].(*ast.BasicLit); ok {
							add(prioNamedValue, portOf(b, anyHostPort()))
						}
					}
				}
			case *ast.BasicLit:
				if n.Kind == token.STRING {
					add(prioLiteral, portOf(n, addrPort()))
				}
			}
			return true
		})
	}
	return hits, server, imports
}
