// Command netcheck is the workload the node bed runs to prove a cluster's
// network: Pods on different nodes reach each other, and a Service by its
// DNS name. Built static into an image FROM scratch (pkg/upstream.PushStatic).
//
//	netcheck serve [ADDR]  answer GET / with "netcheck <pod> on <node>" (ADDR :8080)
//	netcheck get URL       print URL's body; exit 1 when it does not answer 200
package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"
)

func main() {
	args := os.Args[1:]
	if len(args) == 0 {
		args = []string{"serve"}
	}
	switch args[0] {
	case "serve":
		addr := ":8080"
		if len(args) > 1 {
			addr = args[1]
		}
		serve(addr)
	case "get":
		if len(args) != 2 {
			fail("usage: netcheck get URL")
		}
		get(args[1])
	default:
		fail("usage: netcheck serve [ADDR] | netcheck get URL")
	}
}

func serve(addr string) {
	host, _ := os.Hostname()
	node := os.Getenv("NODE_NAME")
	http.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintf(w, "netcheck %s on %s\n", host, node)
	})
	srv := &http.Server{Addr: addr, ReadHeaderTimeout: 5 * time.Second}
	fail(srv.ListenAndServe().Error())
}

func get(url string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		fail(err.Error())
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		fail(err.Error())
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		fail(fmt.Sprintf("%s: %s", url, resp.Status))
	}
	os.Stdout.Write(b)
}

func fail(msg string) {
	fmt.Fprintln(os.Stderr, "netcheck:", msg)
	os.Exit(1)
}
