package cli

import (
	"fmt"
	"net/url"

	"github.com/dynogrid/grid/internal/schema"
)

// Log drains: every line of an app's log also goes to a syslog or HTTPS
// endpoint of the user's.

var drainsCmd = &command{
	name:    "drains",
	summary: "list an app's log drains",
	flags:   []flag{jsonFlag},
	app:     true,
	run:     runDrains,
}

var drainsAddCmd = &command{
	name:    "drains:add",
	args:    "URL",
	summary: "send an app's logs to syslog://HOST:PORT, syslog+tls://HOST:PORT or https://[USER:PASS@]HOST/PATH",
	app:     true,
	run:     runDrainsAdd,
}

var drainsRemoveCmd = &command{
	name:    "drains:remove",
	args:    "URL|TOKEN",
	summary: "stop sending an app's logs to a drain",
	app:     true,
	run:     runDrainsRemove,
}

func runDrains(c *call) error {
	name, api, err := c.appAndClient()
	if err != nil {
		return err
	}
	var ds []schema.LogDrain
	if err := api.get(c.ctx, c.appPath(name, "log-drains"), &ds); err != nil {
		return err
	}
	out := c.env.Stdout
	if c.flagSet("json") {
		return printJSON(out, ds)
	}
	if len(ds) == 0 {
		fmt.Fprintf(out, "%s%s has no drains.\n", hexagon, name)
		return nil
	}
	header(out, "Drains")
	for _, d := range ds {
		fmt.Fprintf(out, "%s (%s)\n", d.URL, d.Token)
		if st := d.Status; st != nil {
			fmt.Fprintf(out, "  %d lines delivered, %d dropped, %d waiting\n", st.Delivered, st.Dropped, st.Queued)
			if st.LastError != nil {
				at := ""
				if st.LastErrorAt != nil {
					at = " (" + c.clock().format(*st.LastErrorAt) + ")"
				}
				fmt.Fprintf(out, "  last error%s: %s\n", at, *st.LastError)
			}
		}
	}
	return nil
}

func runDrainsAdd(c *call) error {
	if len(c.args) != 1 {
		return c.usageErr("Give one drain URL.")
	}
	name, api, err := c.appAndClient()
	if err != nil {
		return err
	}
	var d schema.LogDrain
	if _, err := api.call(c.ctx, "POST", c.appPath(name, "log-drains"), schema.LogDrainCreate{URL: c.args[0]}, &d); err != nil {
		return err
	}
	fmt.Fprintf(c.env.Stdout, "Successfully added drain %s\n", d.URL)
	return nil
}

func runDrainsRemove(c *call) error {
	if len(c.args) != 1 {
		return c.usageErr("Give the drain's URL or token.")
	}
	name, api, err := c.appAndClient()
	if err != nil {
		return err
	}
	var d schema.LogDrain
	if _, err := api.call(c.ctx, "DELETE", c.appPath(name, "log-drains", url.PathEscape(c.args[0])), nil, &d); err != nil {
		return err
	}
	fmt.Fprintf(c.env.Stdout, "Successfully removed drain %s\n", d.URL)
	return nil
}
