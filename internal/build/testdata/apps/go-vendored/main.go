// Command vendored answers with a greeting from a vendored module, which
// no proxy serves.
package main

import (
	"fmt"
	"net/http"
	"os"

	"example.com/greet"
)

func main() {
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, greet.Hello()) })
	http.ListenAndServe(":"+os.Getenv("PORT"), nil)
}
