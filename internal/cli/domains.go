package cli

import (
	"fmt"
	"net/url"

	"github.com/dynogrid/grid/internal/schema"
)

var domainsCmd = &command{
	name:    "domains",
	aliases: []string{"domains:list"},
	summary: "list an app's domains",
	flags:   []flag{jsonFlag},
	app:     true,
	run:     runDomains,
}

func runDomains(c *call) error {
	name, api, err := c.appAndClient()
	if err != nil {
		return err
	}
	var ds []schema.Domain
	if err := api.get(c.ctx, c.appPath(name, "domains"), &ds, "Range", "hostname ..; max=1000"); err != nil {
		return err
	}
	out := c.env.Stdout
	if c.flagSet("json") {
		return printJSON(out, ds)
	}
	rows := [][]string{{"Domain Name", "DNS Record Type", "DNS Target", "SNI Endpoint"}}
	for _, d := range ds {
		if d.Kind != "custom" {
			header(out, name+" Heroku Domain")
			fmt.Fprintln(out, d.Hostname)
			continue
		}
		sni := ""
		if d.SNIEndpoint != nil {
			sni = d.SNIEndpoint.Name
		}
		rows = append(rows, []string{d.Hostname, "CNAME", deref(d.CNAME), sni})
	}
	if len(rows) > 1 {
		fmt.Fprintln(out)
		header(out, name+" Custom Domains")
		printTable(out, rows)
	}
	return nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

var domainsAddCmd = &command{
	name:    "domains:add",
	args:    "HOSTNAME",
	summary: "route a custom hostname (www.example.com or *.example.com) to an app",
	app:     true,
	run:     runDomainsAdd,
}

func runDomainsAdd(c *call) error {
	if len(c.args) != 1 {
		return c.usageErr("Give one hostname.")
	}
	name, api, err := c.appAndClient()
	if err != nil {
		return err
	}
	out := c.env.Stdout
	var d schema.Domain
	if err := c.action(fmt.Sprintf("Adding %s to %s%s", c.args[0], hexagon, name), func() error {
		_, err := api.call(c.ctx, "POST", c.appPath(name, "domains"), schema.DomainCreate{Hostname: c.args[0]}, &d)
		return err
	}); err != nil {
		return err
	}
	fmt.Fprintf(out, "Configure your DNS provider to point %s at %s (a CNAME record), or at a router's address.\n", d.Hostname, deref(d.CNAME))
	if d.SNIEndpoint == nil {
		fmt.Fprintf(out, "HTTPS serves the grid's default certificate for it until you add one with grid certs:add -a %s.\n", name)
	}
	return nil
}

var domainsRemoveCmd = &command{
	name:    "domains:remove",
	args:    "HOSTNAME",
	summary: "stop routing a custom hostname to an app",
	app:     true,
	run:     runDomainsRemove,
}

func runDomainsRemove(c *call) error {
	if len(c.args) != 1 {
		return c.usageErr("Give one hostname.")
	}
	name, api, err := c.appAndClient()
	if err != nil {
		return err
	}
	return c.action(fmt.Sprintf("Removing %s from %s%s", c.args[0], hexagon, name), func() error {
		_, err := api.call(c.ctx, "DELETE", c.appPath(name, "domains", url.PathEscape(c.args[0])), nil, nil)
		return err
	})
}
