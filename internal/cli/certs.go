package cli

import (
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/dynogrid/grid/internal/schema"
)

// The certs commands manage an app's TLS certificates (Heroku's SNI
// endpoints). Routers serve one for a custom domain of the app it covers;
// other names get the grid's default certificate.

var certsCmd = &command{
	name:    "certs",
	aliases: []string{"certs:list"},
	summary: "list an app's TLS certificates",
	flags:   []flag{jsonFlag},
	app:     true,
	run:     runCerts,
}

func runCerts(c *call) error {
	name, api, err := c.appAndClient()
	if err != nil {
		return err
	}
	var es []schema.SNIEndpoint
	if err := api.get(c.ctx, c.appPath(name, "sni-endpoints"), &es); err != nil {
		return err
	}
	out := c.env.Stdout
	if c.flagSet("json") {
		return printJSON(out, es)
	}
	if len(es) == 0 {
		fmt.Fprintf(out, "%s%s has no SSL certificates.\nUse grid certs:add CRT KEY -a %s to add one.\n", hexagon, name, name)
		return nil
	}
	rows := [][]string{{"Name", "Common Name(s)", "Expires", "Trusted", "Type", "Domains"}}
	for _, e := range es {
		rows = append(rows, []string{
			e.Name, strings.Join(e.SSLCert.CertDomains, ", "), e.SSLCert.ExpiresAt.UTC().Format("2006-01-02 15:04 MST"),
			trusted(e.SSLCert), "SNI", fmt.Sprint(len(e.Domains)),
		})
	}
	printTable(out, rows)
	return nil
}

// trusted is whether a CA signed the certificate, as the Heroku CLI
// shows it (it cannot know whether clients trust that CA).
func trusted(c schema.SSLCert) string {
	if c.SelfSigned {
		return "False"
	}
	return "True"
}

var certsAddCmd = &command{
	name:    "certs:add",
	args:    "CRT KEY",
	summary: "add a TLS certificate (PEM chain, leaf first) and its private key to an app",
	app:     true,
	run:     runCertsAdd,
}

func runCertsAdd(c *call) error {
	if len(c.args) != 2 {
		return c.usageErr("Give the certificate file and the private key file.")
	}
	chain, err := c.readFile(c.args[0])
	if err != nil {
		return err
	}
	key, err := c.readFile(c.args[1])
	if err != nil {
		return err
	}
	name, api, err := c.appAndClient()
	if err != nil {
		return err
	}
	out := c.env.Stdout
	fmt.Fprintf(out, "Adding SSL certificate to %s%s... ", hexagon, name)
	var e schema.SNIEndpoint
	body := schema.SNIEndpointCreate{CertificateChain: chain, PrivateKey: key}
	if _, err := api.call(c.ctx, "POST", c.appPath(name, "sni-endpoints"), body, &e); err != nil {
		fmt.Fprintln(out, "!")
		return err
	}
	fmt.Fprintf(out, "done, %s\n", e.Name)
	printFields(out, [][2]string{
		{"Common Name(s)", strings.Join(e.SSLCert.CertDomains, ", ")},
		{"Expires At", e.SSLCert.ExpiresAt.UTC().Format("2006-01-02 15:04 MST")},
		{"Issuer", e.SSLCert.Issuer},
		{"Starts At", e.SSLCert.StartsAt.UTC().Format("2006-01-02 15:04 MST")},
		{"Subject", e.SSLCert.Subject},
	})
	if len(e.Domains) == 0 {
		fmt.Fprintf(out, "It covers none of %s's custom domains yet; add one with grid domains:add HOSTNAME -a %s.\n", name, name)
	}
	return nil
}

// readFile reads a file named on the command line, relative to the
// command's directory.
func (c *call) readFile(name string) (string, error) {
	path := name
	if !filepath.IsAbs(path) {
		path = filepath.Join(c.env.Dir, path)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("could not read %s: %w", name, err)
	}
	return string(b), nil
}

var certsRemoveCmd = &command{
	name:    "certs:remove",
	args:    "[NAME]",
	summary: "remove a TLS certificate from an app (NAME or --name when it has several)",
	flags:   []flag{{name: "name", value: "NAME", help: "the certificate to remove (see grid certs)"}},
	app:     true,
	run:     runCertsRemove,
}

func runCertsRemove(c *call) error {
	cert := c.opts["name"]
	switch {
	case len(c.args) > 1:
		return c.usageErr("Give at most one certificate name.")
	case len(c.args) == 1 && cert != "" && cert != c.args[0]:
		return c.usageErr("Two different certificates given: %s and %s.", c.args[0], cert)
	case len(c.args) == 1:
		cert = c.args[0]
	}
	name, api, err := c.appAndClient()
	if err != nil {
		return err
	}
	if cert == "" {
		var es []schema.SNIEndpoint
		if err := api.get(c.ctx, c.appPath(name, "sni-endpoints"), &es); err != nil {
			return err
		}
		switch len(es) {
		case 0:
			return fmt.Errorf("%s%s has no SSL certificates.", hexagon, name)
		case 1:
			cert = es[0].Name
		default:
			return c.usageErr("%s%s has %d certificates; say which one with --name (see grid certs -a %s).", hexagon, name, len(es), name)
		}
	}
	return c.action(fmt.Sprintf("Removing SSL certificate %s from %s%s", cert, hexagon, name), func() error {
		_, err := api.call(c.ctx, "DELETE", c.appPath(name, "sni-endpoints", url.PathEscape(cert)), nil, nil)
		return err
	})
}
