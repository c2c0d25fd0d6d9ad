package main

import "example.com/svc/internal/httpd"

func main() { httpd.Run() }
