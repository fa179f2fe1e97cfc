// Command go-hello answers every request with the dyno's name and the
// GREETING config var.
package main

import (
	"fmt"
	"log"
	"net/http"
	"os"
)

func main() {
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello from %s: %s\n", os.Getenv("DYNO"), os.Getenv("GREETING"))
	})
	log.Printf("listening on :%s", os.Getenv("PORT"))
	log.Fatal(http.ListenAndServe(":"+os.Getenv("PORT"), nil))
}
