package main

import "net/http"

func main() { _ = http.ListenAndServe(":2379", nil) }
