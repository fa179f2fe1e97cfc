// hello is the sample Go app of the end-to-end tests: it says which dyno
// answered and the GREETING config var, and shuts down gracefully.
package main

import (
	"context"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

func main() {
	started := time.Now().UnixNano()
	mux := http.NewServeMux()
	mux.HandleFunc("/started", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s %d greeting=%q\n", os.Getenv("DYNO"), started, os.Getenv("GREETING"))
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello from %s greeting=%q\n", os.Getenv("DYNO"), os.Getenv("GREETING"))
	})
	mux.HandleFunc("/headers", func(w http.ResponseWriter, r *http.Request) {
		r.Header.Write(w)
	})
	// /cpus says which cores this dyno may run on (its cpuset).
	mux.HandleFunc("/cpus", func(w http.ResponseWriter, r *http.Request) {
		b, _ := os.ReadFile("/proc/self/status")
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "Cpus_allowed_list:"); ok {
				fmt.Fprintf(w, "%s %s\n", os.Getenv("DYNO"), strings.TrimSpace(v))
			}
		}
	})
	// /dial?addr=host:port ($PORT expanded) tries a TCP connection, as a hostile tenant
	// probing its neighbours would: "open" or the error.
	mux.HandleFunc("/dial", func(w http.ResponseWriter, r *http.Request) {
		c, err := net.DialTimeout("tcp", os.ExpandEnv(r.URL.Query().Get("addr")), 2*time.Second)
		if err != nil {
			fmt.Fprintf(w, "%s %v\n", os.Getenv("DYNO"), err)
			return
		}
		c.Close()
		fmt.Fprintf(w, "%s open\n", os.Getenv("DYNO"))
	})
	srv := &http.Server{Addr: ":" + os.Getenv("PORT"), Handler: mux}
	go func() {
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, syscall.SIGTERM)
		<-sig
		log.Printf("SIGTERM received, shutting down gracefully")
		srv.Shutdown(context.Background())
	}()
	log.Printf("listening on %s", srv.Addr)
	if err := srv.ListenAndServe(); err != http.ErrServerClosed {
		log.Fatal(err)
	}
	log.Printf("bye")
}
