// Command pause is the process of a Pod's sandbox container: it holds the
// Pod's namespaces, reaps the zombies it inherits and exits 0 on SIGINT or
// SIGTERM. Built static into registry.k8s.io/pause for the node bed
// (hack/upstream/build.sh).
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	c := make(chan os.Signal, 8)
	signal.Notify(c, syscall.SIGINT, syscall.SIGTERM, syscall.SIGCHLD)
	for sig := range c {
		if sig != syscall.SIGCHLD {
			os.Exit(0)
		}
		reap()
	}
}

// reap collects every exited child without blocking.
func reap() {
	for {
		var status syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &status, syscall.WNOHANG, nil)
		if pid <= 0 || err != nil {
			return
		}
	}
}
