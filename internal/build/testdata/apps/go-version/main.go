// Command go-version answers with the Go release it was built with.
package main

import (
	"fmt"
	"net/http"
	"os"
	"runtime"
)

func main() {
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, runtime.Version()) })
	http.ListenAndServe(":"+os.Getenv("PORT"), nil)
}
