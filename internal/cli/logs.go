package cli

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/dynogrid/grid/internal/schema"
)

var logsCmd = &command{
	name:    "logs",
	summary: "show an app's recent log lines, or follow them with --tail",
	flags: []flag{
		{name: "num", short: "n", value: "N", help: "how many recent lines to show (default 100, at most 1500)"},
		{name: "tail", short: "t", help: "keep following new lines until interrupted"},
		{name: "dyno", short: "d", value: "DYNO", help: "only this dyno (web.1) or process type (web)"},
		{name: "process-type", short: "p", value: "TYPE", help: "only this process type"},
		{name: "source", short: "s", value: "SOURCE", help: "only lines of this source: app or heroku"},
	},
	app: true,
	run: runLogs,
}

// reconnectDelay is how long a dropped --tail stream waits before it
// resumes, as an EventSource would.
var reconnectDelay = time.Second

func runLogs(c *call) error {
	body, err := c.logSessionBody()
	if err != nil {
		return err
	}
	name, api, err := c.appAndClient()
	if err != nil {
		return err
	}
	var ls schema.LogSession
	if _, err := api.call(c.ctx, "POST", c.appPath(name, "log-sessions"), body, &ls); err != nil {
		return err
	}
	lastID := ""
	for {
		lastID, err = api.stream(c.ctx, ls.LogplexURL, lastID, c.env.Stdout)
		if !body.Tail || c.ctx.Err() != nil {
			if c.ctx.Err() != nil {
				return nil // interrupted: the user is done reading
			}
			return err
		}
		if isStatus(err, http.StatusNotFound) {
			return fmt.Errorf("Log stream timed out. Please try again.")
		}
		t := time.NewTimer(reconnectDelay)
		select {
		case <-c.ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}

func (c *call) logSessionBody() (schema.LogSessionCreate, error) {
	var body schema.LogSessionCreate
	if v, ok := c.opts["num"]; ok {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return body, c.usageErr("--num must be a positive number, not %q.", v)
		}
		body.Lines = &n
	}
	body.Tail = c.flagSet("tail")
	body.Dyno = c.opts["dyno"]
	if body.Dyno == "" {
		body.Dyno = c.opts["process-type"]
	}
	body.Source = c.opts["source"]
	if body.Source != "" && body.Source != "app" && body.Source != "heroku" {
		return body, c.usageErr("--source must be app or heroku, not %q.", body.Source)
	}
	if len(c.args) > 0 {
		return body, c.usageErr("logs takes no arguments (did you mean --dyno %s?)", c.args[0])
	}
	return body, nil
}

// stream reads a log session's Server-Sent Events and prints each line,
// until the server ends the stream or ctx ends. lastID resumes after the
// last event seen; the last id seen is returned.
func (cl *client) stream(ctx context.Context, u, lastID string, out io.Writer) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return lastID, err
	}
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("User-Agent", "grid-cli")
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := cl.raw.Do(req)
	if err != nil {
		return lastID, cl.transportError(ctx, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return lastID, responseError(req, resp)
	}
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt != "text/event-stream" {
		return lastID, fmt.Errorf("log stream answered with %q, not an event stream", resp.Header.Get("Content-Type"))
	}
	return readEvents(resp.Body, lastID, func(data string) {
		for _, line := range strings.Split(data, "\n") {
			if line != "" {
				fmt.Fprintln(out, line)
			}
		}
	})
}

// readEvents parses an event stream (id, data and comment lines; an empty
// line ends an event) and calls emit with each event's data.
func readEvents(r io.Reader, lastID string, emit func(string)) (string, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	var data []string
	id := lastID
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			if data != nil {
				emit(strings.Join(data, "\n"))
				data = nil
			}
			lastID = id
			continue
		}
		field, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch field {
		case "data":
			data = append(data, value)
		case "id":
			id = value
		}
	}
	return lastID, sc.Err()
}
