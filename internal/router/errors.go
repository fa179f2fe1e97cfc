package router

import (
	"net/http"
	"strconv"
)

// hError is one of Heroku's router error codes: what the client gets and
// what the log line says.
type hError struct {
	code   string // "H12"
	desc   string // "Request timeout"
	status int
	at     string // log level: "error"; "info" for H80 and H81; "warning" for H27
	page   []byte // HTML body; nil for none (the client is gone)
}

// The router's error codes (reference: heroku.md §2.8).
var (
	errH10 = &hError{"H10", "App crashed", http.StatusServiceUnavailable, "error", appErrorPage}
	errH11 = &hError{"H11", "Backlog too deep", http.StatusServiceUnavailable, "error", appErrorPage}
	errH12 = &hError{"H12", "Request timeout", http.StatusServiceUnavailable, "error", appErrorPage}
	errH13 = &hError{"H13", "Connection closed without response", http.StatusServiceUnavailable, "error", appErrorPage}
	errH14 = &hError{"H14", "No web processes running", http.StatusServiceUnavailable, "error", appErrorPage}
	errH15 = &hError{"H15", "Idle connection", http.StatusServiceUnavailable, "error", nil}
	errH17 = &hError{"H17", "Poorly formatted HTTP response", http.StatusServiceUnavailable, "error", appErrorPage}
	errH18 = &hError{"H18", "Server Request Interrupted", http.StatusServiceUnavailable, "error", appErrorPage}
	errH19 = &hError{"H19", "Backend connection timeout", http.StatusServiceUnavailable, "error", appErrorPage}
	errH20 = &hError{"H20", "App boot timeout", http.StatusServiceUnavailable, "error", appErrorPage}
	errH21 = &hError{"H21", "Backend connection refused", http.StatusServiceUnavailable, "error", appErrorPage}
	errH25 = &hError{"H25", "HTTP Restriction", http.StatusBadGateway, "error", appErrorPage}
	errH27 = &hError{"H27", "Client Request Interrupted", 499, "warning", nil}
	errH28 = &hError{"H28", "Client Connection Idle", 499, "error", nil}
	errH80 = &hError{"H80", "Maintenance mode", http.StatusServiceUnavailable, "info", maintenancePage}
	errH81 = &hError{"H81", "Blank app", http.StatusServiceUnavailable, "info", blankAppPage}
	errH99 = &hError{"H99", "Platform error", http.StatusServiceUnavailable, "error", appErrorPage}
)

// sock is the log line's sock= field: which side broke the connection.
func (e *hError) sock() string {
	switch e {
	case errH18:
		return "backend"
	case errH27:
		return "client"
	}
	return ""
}

var (
	appErrorPage = page("Application error",
		"An error occurred in the application and your page could not be served. If you are the application owner, check your logs for details. You can do this from the grid CLI with the command <code>grid logs --tail</code>.")
	maintenancePage = page("Offline for Maintenance",
		"This app is undergoing maintenance right now. Please check back later.")
	blankAppPage = page("Welcome to your new app!",
		"Nothing has been deployed here yet. Push your code with <code>git push</code> to see it.")
	connectPage = page("Method not allowed",
		"CONNECT requests are not supported.")
	noSuchAppPage = page("No such app",
		"There's nothing here, yet. Check the address, or create the app with <code>grid create</code>.")
)

func page(title, text string) []byte {
	return []byte(`<!DOCTYPE html>
<html><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>` + title + `</title>
<style>body{font-family:sans-serif;margin:4em auto;max-width:36em;color:#333}h1{font-weight:normal}</style></head>
<body><h1>` + title + `</h1><p>` + text + `</p></body></html>
`)
}

// writePage answers with an error page. The router's pages are never
// cached, so a fixed app is seen at once.
func writePage(w http.ResponseWriter, status int, body []byte) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-cache, no-store")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	w.Write(body)
}
