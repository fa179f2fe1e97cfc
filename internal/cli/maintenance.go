package cli

import (
	"fmt"

	"github.com/dynogrid/grid/internal/schema"
)

// Maintenance mode makes the routers answer every request for the app
// with the maintenance page (503, H80); its dynos keep running.

var maintenanceCmd = &command{
	name:    "maintenance",
	summary: "show whether an app is in maintenance mode",
	app:     true,
	run:     runMaintenance,
}

func runMaintenance(c *call) error {
	name, api, err := c.appAndClient()
	if err != nil {
		return err
	}
	var a schema.App
	if err := api.get(c.ctx, c.appPath(name), &a); err != nil {
		return err
	}
	if a.Maintenance {
		fmt.Fprintln(c.env.Stdout, "on")
	} else {
		fmt.Fprintln(c.env.Stdout, "off")
	}
	return nil
}

var maintenanceOnCmd = &command{
	name:    "maintenance:on",
	summary: "put an app in maintenance mode: routers answer with the maintenance page",
	app:     true,
	run:     func(c *call) error { return setMaintenance(c, true) },
}

var maintenanceOffCmd = &command{
	name:    "maintenance:off",
	summary: "take an app out of maintenance mode",
	app:     true,
	run:     func(c *call) error { return setMaintenance(c, false) },
}

func setMaintenance(c *call, on bool) error {
	if len(c.args) > 0 {
		return c.usageErr("%s takes no arguments.", c.cmd.name)
	}
	name, api, err := c.appAndClient()
	if err != nil {
		return err
	}
	verb := "Disabling"
	if on {
		verb = "Enabling"
	}
	return c.action(fmt.Sprintf("%s maintenance mode for %s%s", verb, hexagon, name), func() error {
		_, err := api.call(c.ctx, "PATCH", c.appPath(name), schema.AppUpdate{Maintenance: &on}, nil)
		return err
	})
}
