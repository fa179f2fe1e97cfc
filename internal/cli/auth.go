package cli

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/dynogrid/grid/internal/schema"
)

var loginCmd = &command{
	name:    "login",
	aliases: []string{"auth:login"},
	summary: "log in with an API key (from GRID_API_KEY or standard input)",
	flags: []flag{
		{name: "api-url", value: "URL", help: "the grid API's URL (default: GRID_API_URL, else the saved one)"},
	},
	run: runLogin,
}

func runLogin(c *call) error {
	saved, err := loadCredentials(c.env.Getenv)
	if err != nil {
		return err
	}
	in := bufio.NewReader(c.env.Stdin)
	apiURL := firstNonEmpty(c.opts["api-url"], c.env.Getenv("GRID_API_URL"), saved.APIURL)
	if apiURL == "" {
		if apiURL, err = prompt(c.env.Stderr, in, "Grid API URL: "); err != nil {
			return err
		}
	}
	if u, err := url.Parse(apiURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return c.usageErr("%s is not an http(s) URL like http://localhost:5000.", apiURL)
	}
	key := c.env.Getenv("GRID_API_KEY")
	if key == "" {
		if key, err = prompt(c.env.Stderr, in, "API key: "); err != nil {
			return err
		}
	}
	var acct schema.Account
	if err := newClient(apiURL, key).get(c.ctx, "/account", &acct); err != nil {
		if isStatus(err, http.StatusUnauthorized) {
			return errors.New("That API key was not accepted by " + apiURL + ".")
		}
		return err
	}
	if err := SaveCredentials(apiURL, key, c.env.Getenv); err != nil {
		return err
	}
	fmt.Fprintf(c.env.Stdout, "Logged in as %s\n", acct.Email)
	return nil
}

// prompt asks for one line on w and reads it from in.
func prompt(w io.Writer, in *bufio.Reader, question string) (string, error) {
	fmt.Fprint(w, question)
	line, err := in.ReadString('\n')
	line = strings.TrimSpace(line)
	if line == "" {
		if err == nil || err == io.EOF {
			return "", usagef("No answer to %q given.", strings.TrimSuffix(question, ": "))
		}
		return "", err
	}
	return line, nil
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

var logoutCmd = &command{
	name:    "logout",
	aliases: []string{"auth:logout"},
	summary: "forget the saved API URL and key",
	run: func(c *call) error {
		return c.action("Logging out", func() error { return removeCredentials(c.env.Getenv) })
	},
}

var whoamiCmd = &command{
	name:    "auth:whoami",
	aliases: []string{"whoami"},
	summary: "show the email of the account you are logged in as",
	run:     runWhoami,
}

func runWhoami(c *call) error {
	api, err := c.client()
	if errors.Is(err, errNotLoggedIn) {
		return errors.New("not logged in")
	}
	if err != nil {
		return err
	}
	var acct schema.Account
	if err := api.get(c.ctx, "/account", &acct); err != nil {
		if isStatus(err, http.StatusUnauthorized) {
			return errors.New("not logged in")
		}
		return err
	}
	fmt.Fprintln(c.env.Stdout, acct.Email)
	return nil
}
