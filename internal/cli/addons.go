package cli

import (
	"fmt"
	"strings"

	"github.com/dynogrid/grid/internal/schema"
)

// Add-ons: a Postgres database or a Redis server per add-on, attached to
// apps as NAME_URL config vars.

var asFlag = flag{name: "as", value: "NAME", help: "the attachment name: NAME_URL is the config var (default DATABASE or REDIS)"}

var addonsCmd = &command{
	name:    "addons",
	summary: "list an app's add-ons",
	flags:   []flag{jsonFlag},
	app:     true,
	run:     runAddons,
}

var addonsCreateCmd = &command{
	name:    "addons:create",
	args:    "SERVICE[:PLAN]",
	summary: "make a Postgres database (heroku-postgresql, postgresql) or a Redis server (heroku-redis, redis) for an app",
	flags:   []flag{asFlag},
	app:     true,
	run:     runAddonsCreate,
}

var addonsInfoCmd = &command{
	name:    "addons:info",
	args:    "ADDON",
	summary: "show an add-on: plan, owner, attachments",
	flags:   []flag{jsonFlag},
	app:     true,
	run:     runAddonsInfo,
}

var addonsDestroyCmd = &command{
	name:    "addons:destroy",
	args:    "ADDON",
	summary: "destroy an add-on and its data, detaching it everywhere",
	flags:   []flag{{name: "confirm", value: "APP", help: "the app's name, to confirm"}},
	app:     true,
	run:     runAddonsDestroy,
}

var addonsUpgradeCmd = &command{
	name:    "addons:upgrade",
	aliases: []string{"addons:downgrade"},
	args:    "ADDON PLAN",
	summary: "change an add-on's plan (standard-0, or heroku-postgresql:standard-0); data and URL stay",
	app:     true,
	run:     runAddonsUpgrade,
}

var addonsAttachCmd = &command{
	name:    "addons:attach",
	args:    "ADDON",
	summary: "attach another app's add-on to this app (a shared database)",
	flags:   []flag{asFlag},
	app:     true,
	run:     runAddonsAttach,
}

var addonsDetachCmd = &command{
	name:    "addons:detach",
	args:    "ATTACHMENT",
	summary: "detach an add-on from this app by its attachment name (DATABASE)",
	app:     true,
	run:     runAddonsDetach,
}

func runAddons(c *call) error {
	name, api, err := c.appAndClient()
	if err != nil {
		return err
	}
	var as []schema.Addon
	if err := api.get(c.ctx, c.appPath(name, "addons"), &as); err != nil {
		return err
	}
	out := c.env.Stdout
	if c.flagSet("json") {
		return printJSON(out, as)
	}
	if len(as) == 0 {
		fmt.Fprintf(out, "No add-ons for app %s.\n", name)
		return nil
	}
	rows := [][]string{{"Add-on", "Plan", "Owner", "As", "State"}}
	for _, a := range as {
		var here []string
		for _, at := range a.Attachments {
			if at.App == name {
				here = append(here, at.Name)
			}
		}
		rows = append(rows, []string{a.Name, a.Plan.Name, a.App.Name, strings.Join(here, ", "), a.State})
	}
	printTable(out, rows)
	return nil
}

func runAddonsCreate(c *call) error {
	if len(c.args) != 1 {
		return c.usageErr("Give one service: heroku-postgresql, heroku-redis (a plan after a colon).")
	}
	name, api, err := c.appAndClient()
	if err != nil {
		return err
	}
	body := schema.AddonCreate{Plan: schema.PlanRef(c.args[0])}
	if as := c.opts["as"]; as != "" {
		body.Attachment = &schema.AttachmentName{Name: as}
	}
	var a schema.Addon
	if err := c.action(fmt.Sprintf("Creating %s on %s%s", c.args[0], hexagon, name), func() error {
		_, err := api.call(c.ctx, "POST", c.appPath(name, "addons"), body, &a)
		return err
	}); err != nil {
		return err
	}
	fmt.Fprintf(c.env.Stdout, "Created %s as %s\n", a.Name, strings.Join(a.ConfigVars, ", "))
	fmt.Fprintf(c.env.Stdout, "Use grid addons:info %s -a %s to view it.\n", a.Name, name)
	return nil
}

func runAddonsInfo(c *call) error {
	if len(c.args) != 1 {
		return c.usageErr("Give one add-on.")
	}
	name, api, err := c.appAndClient()
	if err != nil {
		return err
	}
	var a schema.Addon
	if err := api.get(c.ctx, c.appPath(name, "addons", c.args[0]), &a); err != nil {
		return err
	}
	out := c.env.Stdout
	if c.flagSet("json") {
		return printJSON(out, a)
	}
	header(out, a.Name)
	var ats []string
	for _, at := range a.Attachments {
		ats = append(ats, at.App+"::"+at.Name)
	}
	printFields(out, [][2]string{
		{"Plan", a.Plan.Name},
		{"Owning app", a.App.Name},
		{"Attachments", strings.Join(ats, ", ")},
		{"Installed at", c.clock().format(a.CreatedAt)},
		{"State", a.State},
	})
	return nil
}

func runAddonsDestroy(c *call) error {
	if len(c.args) != 1 {
		return c.usageErr("Give one add-on.")
	}
	name, api, err := c.appAndClient()
	if err != nil {
		return err
	}
	if c.opts["confirm"] != name {
		return fmt.Errorf("This destroys %s and all its data. To proceed, run again with --confirm %s.", c.args[0], name)
	}
	return c.action(fmt.Sprintf("Destroying %s on %s%s", c.args[0], hexagon, name), func() error {
		_, err := api.call(c.ctx, "DELETE", c.appPath(name, "addons", c.args[0]), nil, nil)
		return err
	})
}

func runAddonsUpgrade(c *call) error {
	if len(c.args) != 2 {
		return c.usageErr("Give the add-on and its new plan.")
	}
	name, api, err := c.appAndClient()
	if err != nil {
		return err
	}
	var a schema.Addon
	path := c.appPath(name, "addons", c.args[0])
	if err := api.get(c.ctx, path, &a); err != nil {
		return err
	}
	plan := c.args[1]
	if !strings.Contains(plan, ":") {
		plan = a.AddonService.Name + ":" + plan
	}
	return c.action(fmt.Sprintf("Changing %s on %s%s from %s to %s", a.Name, hexagon, name, a.Plan.Name, plan), func() error {
		_, err := api.call(c.ctx, "PATCH", path, schema.AddonUpdate{Plan: schema.PlanRef(plan)}, &a)
		return err
	})
}

func runAddonsAttach(c *call) error {
	if len(c.args) != 1 {
		return c.usageErr("Give one add-on.")
	}
	name, api, err := c.appAndClient()
	if err != nil {
		return err
	}
	var at schema.AddonAttachment
	if err := c.action(fmt.Sprintf("Attaching %s to %s%s", c.args[0], hexagon, name), func() error {
		_, err := api.call(c.ctx, "POST", "/addon-attachments", schema.AttachmentCreate{Addon: c.args[0], App: name, Name: c.opts["as"]}, &at)
		return err
	}); err != nil {
		return err
	}
	fmt.Fprintf(c.env.Stdout, "Attached as %s_URL\n", at.Name)
	return nil
}

func runAddonsDetach(c *call) error {
	if len(c.args) != 1 {
		return c.usageErr("Give one attachment name, like DATABASE.")
	}
	name, api, err := c.appAndClient()
	if err != nil {
		return err
	}
	var ats []schema.AddonAttachment
	if err := api.get(c.ctx, c.appPath(name, "addon-attachments"), &ats); err != nil {
		return err
	}
	for _, at := range ats {
		if at.Name == strings.ToUpper(c.args[0]) || at.ID == c.args[0] {
			return c.action(fmt.Sprintf("Detaching %s from %s%s", at.Name, hexagon, name), func() error {
				_, err := api.call(c.ctx, "DELETE", "/addon-attachments/"+at.ID, nil, nil)
				return err
			})
		}
	}
	return fmt.Errorf("%s%s has no attachment %s.", hexagon, name, c.args[0])
}
