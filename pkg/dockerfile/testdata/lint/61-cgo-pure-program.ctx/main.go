// Command report prints a report: no net, os/user or cgo, so even built with
// cgo on it is a static binary.
package main

import (
	"fmt"
	"os"
)

func main() { fmt.Fprintln(os.Stdout, "report") }
