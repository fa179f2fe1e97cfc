package main

import (
	"net"
)

// urls derives the user-facing URLs from the listen addresses.
type urls struct {
	api        string // http://localhost:5000
	routerPort string
	domain     string
}

func newURLs(apiAddr, routerPort, domain string) urls {
	return urls{api: "http://" + publicHostPort(apiAddr), routerPort: routerPort, domain: domain}
}

// publicHostPort turns a listen address into one a browser on this machine
// can use: loopback and wildcard addresses become "localhost".
func publicHostPort(addr string) string {
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if ip := net.ParseIP(h); h == "" || ip != nil && (ip.IsLoopback() || ip.IsUnspecified()) {
		h = "localhost"
	}
	return net.JoinHostPort(h, p)
}

func (u urls) web(app string) string {
	host := app + "." + u.domain
	if u.routerPort != "80" {
		host += ":" + u.routerPort
	}
	return "http://" + host + "/"
}

func (u urls) git(app string) string { return u.api + "/" + app + ".git" }
