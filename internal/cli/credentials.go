package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// credentials are what `grid login` (and `grid up`) save.
type credentials struct {
	APIURL string `json:"api_url"`
	APIKey string `json:"api_key"`
}

// credentialsPath is $XDG_CONFIG_HOME/grid/credentials.json, else
// $HOME/.config/grid/credentials.json.
func credentialsPath(getenv func(string) string) (string, error) {
	if dir := getenv("XDG_CONFIG_HOME"); dir != "" {
		return filepath.Join(dir, "grid", "credentials.json"), nil
	}
	if home := getenv("HOME"); home != "" {
		return filepath.Join(home, ".config", "grid", "credentials.json"), nil
	}
	return "", errors.New("neither XDG_CONFIG_HOME nor HOME is set: nowhere to keep credentials")
}

// SaveCredentials logs the CLI in: it writes the API URL and key to the
// credentials file (see credentialsPath), readable by the user only. The
// file is replaced atomically, so a reader never sees half of it.
func SaveCredentials(apiURL, key string, getenv func(string) string) error {
	path, err := credentialsPath(getenv)
	if err != nil {
		return err
	}
	b, err := json.MarshalIndent(credentials{APIURL: apiURL, APIKey: key}, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".credentials-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// loadCredentials reads the credentials file; a missing file is no error.
func loadCredentials(getenv func(string) string) (credentials, error) {
	var c credentials
	path, err := credentialsPath(getenv)
	if err != nil {
		return c, nil
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return c, nil
	}
	if err != nil {
		return c, err
	}
	if err := json.Unmarshal(b, &c); err != nil {
		return c, fmt.Errorf("%s is not valid JSON (%v): run grid login again", path, err)
	}
	return c, nil
}

// removeCredentials deletes the credentials file, if any.
func removeCredentials(getenv func(string) string) error {
	path, err := credentialsPath(getenv)
	if err != nil {
		return err
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// endpoint is the API URL and key to use: GRID_API_URL and GRID_API_KEY
// override the credentials file.
func endpoint(getenv func(string) string) (url, key string, err error) {
	c, err := loadCredentials(getenv)
	if err != nil {
		return "", "", err
	}
	url, key = c.APIURL, c.APIKey
	if v := getenv("GRID_API_URL"); v != "" {
		url = v
	}
	if v := getenv("GRID_API_KEY"); v != "" {
		key = v
	}
	if url == "" || key == "" {
		return url, key, errNotLoggedIn
	}
	return url, key, nil
}

var errNotLoggedIn = errors.New("not logged in: run grid login (or set GRID_API_URL and GRID_API_KEY)")

// client connects to the API, once per call.
func (c *call) client() (*client, error) {
	if c.api != nil {
		return c.api, nil
	}
	url, key, err := endpoint(c.env.Getenv)
	if err != nil {
		return nil, err
	}
	c.api = newClient(url, key)
	return c.api, nil
}
