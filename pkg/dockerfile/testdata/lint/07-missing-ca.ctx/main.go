// Command fetch makes HTTPS requests: it needs a CA bundle.
package main

import (
	"fmt"
	"net/http"
)

func main() {
	resp, err := http.Get("https://example.com/")
	if err != nil {
		panic(err)
	}
	fmt.Println(resp.Status)
}
