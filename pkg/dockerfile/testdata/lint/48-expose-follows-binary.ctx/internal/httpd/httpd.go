// Package httpd is the server; the port comes from $PORT, 9000 by default.
package httpd

import (
	"net/http"
	"os"
)

func Run() {
	port := os.Getenv("PORT")
	if port == "" {
		port = "9000"
	}
	_ = http.ListenAndServe(":"+port, nil)
}
