package api

import (
	"encoding/base64"
	"errors"
	"mime"
	"net/http"
	"strings"

	"github.com/dynogrid/grid/internal/grid"
)

// authenticate returns the email of the account whose API key r carries,
// as "Authorization: Bearer <key>" or as the password of Basic auth (the
// user name is ignored, as on Heroku).
func (s *server) authenticate(r *http.Request) (string, error) {
	key := apiKey(r.Header.Get("Authorization"))
	if key == "" {
		return "", errUnauthorized
	}
	email, err := s.store.LookupAPIKey(r.Context(), key)
	if errors.Is(err, grid.ErrUnauthorized) {
		return "", errUnauthorized
	}
	return email, err
}

var errUnauthorized = &userError{msg: "Invalid credentials provided.", err: grid.ErrUnauthorized}

func apiKey(h string) string {
	scheme, cred, _ := strings.Cut(strings.TrimSpace(h), " ")
	cred = strings.TrimSpace(cred)
	switch strings.ToLower(scheme) {
	case "bearer":
		return cred
	case "basic":
		b, err := base64.StdEncoding.DecodeString(cred)
		if err != nil {
			return ""
		}
		_, pass, _ := strings.Cut(string(b), ":")
		return pass
	}
	return ""
}

// checkAccept accepts API v3 in any variant ("version=3", "version=3.sdk"),
// plain JSON and wildcards, and refuses other API versions with 406.
func checkAccept(values []string) error {
	if len(values) == 0 {
		return nil
	}
	var refused string
	for _, v := range values {
		for _, part := range strings.Split(v, ",") {
			mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
			if err != nil {
				continue
			}
			switch mt {
			case "*/*", "application/*", "application/json":
				return nil
			case "application/vnd.heroku+json":
				ver := params["version"]
				if ver == "" || ver == "3" || strings.HasPrefix(ver, "3.") {
					return nil
				}
				refused = "version " + ver
			default:
				if refused == "" {
					refused = mt
				}
			}
		}
	}
	if refused == "" {
		return nil
	}
	return &userError{
		msg: "This API serves application/vnd.heroku+json; version=3 only, not " + refused + ".",
		err: errNotAcceptable,
	}
}
