package cli

import (
	"fmt"
	"net/url"
	"regexp"
	"strconv"

	"github.com/dynogrid/grid/internal/schema"
)

// The hosts commands are for the grid's administrators; they are not
// Heroku commands.

var hostsCmd = &command{
	name:    "hosts",
	aliases: []string{"hosts:list"},
	summary: "list the hosts that run dynos (administrators)",
	flags:   []flag{jsonFlag},
	run:     runHosts,
}

func runHosts(c *call) error {
	api, err := c.client()
	if err != nil {
		return err
	}
	var hosts []schema.Host
	if err := api.get(c.ctx, "/hosts", &hosts, "Range", "id ..; max=1000"); err != nil {
		return err
	}
	out := c.env.Stdout
	if c.flagSet("json") {
		return printJSON(out, hosts)
	}
	if len(hosts) == 0 {
		fmt.Fprintln(out, "No hosts. Add one with grid hosts:add, or join one with grid host --join.")
		return nil
	}
	rows := [][]string{{"ID", "ADDR", "STATE", "CORES", "MEM RESERVED/TOTAL", "DYNOS"}}
	for _, h := range hosts {
		rows = append(rows, []string{
			h.ID, orDash(h.Addr), h.State, strconv.Itoa(h.Cores),
			fmt.Sprintf("%d/%d MB", h.Memory.ReservedMB, h.Memory.TotalMB), strconv.Itoa(h.DynoCount),
		})
	}
	printTable(out, rows)
	return nil
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

var hostsAddCmd = &command{
	name:    "hosts:add",
	summary: "ask the host provider for one more host",
	run:     runHostsAdd,
}

func runHostsAdd(c *call) error {
	if len(c.args) > 0 {
		return c.usageErr("hosts:add takes no arguments.")
	}
	api, err := c.client()
	if err != nil {
		return err
	}
	var h schema.Host
	fmt.Fprint(c.env.Stdout, "Adding a host... ")
	if _, err := api.call(c.ctx, "POST", "/hosts", nil, &h); err != nil {
		fmt.Fprintln(c.env.Stdout, "!")
		return err
	}
	fmt.Fprintf(c.env.Stdout, "done, %s (%s %s)\n", h.ID, h.Provider, h.Handle)
	fmt.Fprintln(c.env.Stdout, "It joins by itself; grid hosts shows it up once it heartbeats.")
	return nil
}

var hostsDrainCmd = &command{
	name:    "hosts:drain",
	args:    "ID",
	summary: "move a host's dynos away (start-before-stop), then release it",
	run:     runHostsDrain,
}

func runHostsDrain(c *call) error {
	if err := hostAction(c, "Draining host ", "drain"); err != nil {
		return err
	}
	fmt.Fprintln(c.env.Stdout, "Its dynos start elsewhere before they stop there; then the host is released.")
	return nil
}

var hostsFailCmd = &command{
	name:    "hosts:fail",
	args:    "ID",
	summary: "cut a netns host's power: kill its agent and dynos at once (tests, demos)",
	run:     func(c *call) error { return hostAction(c, "Failing host ", "fail") },
}

var hostsCutCmd = &command{
	name:    "hosts:cut",
	args:    "ID",
	summary: "cut a netns host off the network; its dynos keep running (tests, demos)",
	run:     func(c *call) error { return hostAction(c, "Cutting off host ", "cut") },
}

var hostsHealCmd = &command{
	name:    "hosts:heal",
	args:    "ID",
	summary: "reconnect a netns host cut off with hosts:cut",
	run:     func(c *call) error { return hostAction(c, "Reconnecting host ", "heal") },
}

// hostAction posts /hosts/ID/actions/action.
func hostAction(c *call, doing, action string) error {
	id, api, err := c.hostArg()
	if err != nil {
		return err
	}
	return c.action(doing+id, func() error {
		_, err := api.call(c.ctx, "POST", "/hosts/"+url.PathEscape(id)+"/actions/"+action, nil, nil)
		return err
	})
}

var hostsTokenCmd = &command{
	name:    "hosts:token",
	args:    "ID",
	summary: "print the password a host joins with (grid host --id ID --password-file FILE)",
	run:     func(c *call) error { return printToken(c, "/hosts/", c.hostArg) },
}

var routersTokenCmd = &command{
	name:    "routers:token",
	args:    "ID",
	summary: "print the password a router joins with (grid router --id ID --password-file FILE)",
	run:     func(c *call) error { return printToken(c, "/routers/", c.roleArg) },
}

// printToken prints the join password of the host or router the argument
// names, alone on a line, for a file.
func printToken(c *call, under string, arg func() (string, *client, error)) error {
	id, api, err := arg()
	if err != nil {
		return err
	}
	var tok schema.HostToken
	if err := api.get(c.ctx, under+url.PathEscape(id)+"/token", &tok); err != nil {
		return err
	}
	fmt.Fprintln(c.env.Stdout, tok.Password)
	return nil
}

var hostIDRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// hostArg is the one host id a command takes.
func (c *call) hostArg() (string, *client, error) {
	if len(c.args) != 1 {
		return "", nil, c.usageErr("Say which host: grid %s ID (grid hosts lists them).", c.cmd.name)
	}
	return c.roleArg()
}

// roleArg is the one host or router id a command takes.
func (c *call) roleArg() (string, *client, error) {
	if len(c.args) != 1 {
		return "", nil, c.usageErr("Say which one: grid %s ID.", c.cmd.name)
	}
	if !hostIDRE.MatchString(c.args[0]) {
		return "", nil, c.usageErr("%s is not an id: letters, digits, '-' and '_' only.", c.args[0])
	}
	api, err := c.client()
	return c.args[0], api, err
}
