package main

import (
	"flag"
	"net/http"
)

func main() {
	port := flag.String("port", "80", "port to listen on")
	flag.Parse()
	_ = http.ListenAndServe(":"+*port, nil)
}
