// Command startcmp times short-lived commands side by side: each round runs
// every command once, in turn (so that the machine's noise falls on all of
// them alike), and it prints per command the median over the rounds of the
// CPU time (user+system, from the kernel's rusage, not a sampling clock), the
// wall time and the peak RSS, and the ratio of the CPU and wall medians to the
// first command's, the reference.
//
// Usage: startcmp [-n 20] LABEL 'CMD ARG...' [LABEL 'CMD ARG...']...
//
// A command is split on blanks; leading NAME=VALUE words are added to its
// environment. Output is discarded; a failing run stops everything.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"time"
)

type command struct {
	label       string
	env, argv   []string
	cpu, wall   []time.Duration
	maxRSS      []int64 // KiB
	cpuM, wallM time.Duration
}

func main() {
	n := flag.Int("n", 20, "rounds")
	flag.Parse()
	args := flag.Args()
	if len(args) == 0 || len(args)%2 != 0 {
		fmt.Fprintln(os.Stderr, "usage: startcmp [-n 20] LABEL 'CMD ARG...' ...")
		os.Exit(2)
	}
	var cmds []*command
	for i := 0; i < len(args); i += 2 {
		c := &command{label: args[i]}
		for _, w := range strings.Fields(args[i+1]) {
			if len(c.argv) == 0 && strings.Contains(w, "=") {
				c.env = append(c.env, w)
				continue
			}
			c.argv = append(c.argv, w)
		}
		if len(c.argv) == 0 {
			fmt.Fprintf(os.Stderr, "%s: no command\n", c.label)
			os.Exit(2)
		}
		cmds = append(cmds, c)
	}
	for _, c := range cmds { // one untimed run each: page cache, and a check
		if err := run(c, false); err != nil {
			fmt.Fprintf(os.Stderr, "%s: %v\n", c.label, err)
			os.Exit(1)
		}
	}
	for r := 0; r < *n; r++ {
		for _, c := range cmds {
			if err := run(c, true); err != nil {
				fmt.Fprintf(os.Stderr, "%s: %v\n", c.label, err)
				os.Exit(1)
			}
		}
	}
	width := 0
	for _, c := range cmds {
		width = max(width, len(c.label))
		c.cpuM, c.wallM = median(c.cpu), median(c.wall)
	}
	ref := cmds[0]
	fmt.Printf("%-*s  %10s  %10s  %9s  %s\n", width, fmt.Sprintf("median of %d", *n), "cpu", "wall", "max rss", "vs "+ref.label+" (cpu, wall)")
	for _, c := range cmds {
		rss := slices.Clone(c.maxRSS)
		slices.Sort(rss)
		ratio := "reference"
		if c != ref {
			ratio = fmt.Sprintf("%.2fx, %.2fx", float64(c.cpuM)/float64(ref.cpuM), float64(c.wallM)/float64(ref.wallM))
		}
		fmt.Printf("%-*s  %7.2f ms  %7.2f ms  %5.1f MiB  %s\n", width, c.label,
			ms(c.cpuM), ms(c.wallM), float64(rss[len(rss)/2])/1024, ratio)
	}
}

func run(c *command, record bool) error {
	cmd := exec.Command(c.argv[0], c.argv[1:]...)
	cmd.Env = append(os.Environ(), c.env...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	t0 := time.Now()
	err := cmd.Run()
	wall := time.Since(t0)
	if err != nil {
		return fmt.Errorf("%s: %v\n%s", strings.Join(c.argv, " "), err, stderr.String())
	}
	if record {
		c.wall = append(c.wall, wall)
		c.cpu = append(c.cpu, cmd.ProcessState.UserTime()+cmd.ProcessState.SystemTime())
		if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
			c.maxRSS = append(c.maxRSS, ru.Maxrss)
		} else {
			c.maxRSS = append(c.maxRSS, 0)
		}
	}
	return nil
}

func median(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
