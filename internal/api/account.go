package api

import (
	"net/http"
	"strings"

	"github.com/dynogrid/grid/internal/schema"
)

// accountID is the id of the account with that email. Accounts are only
// API keys mapped to emails, so the id is derived from the email.
func accountID(email string) string { return stableID("account", email) }

func userRef(email string) schema.UserRef {
	return schema.UserRef{ID: accountID(email), Email: email}
}

func (s *server) getAccount(w http.ResponseWriter, r *http.Request, user string) error {
	name, _, _ := strings.Cut(user, "@")
	t := apiTime(s.started)
	writeJSON(w, http.StatusOK, schema.Account{
		ID:        accountID(user),
		Email:     user,
		Name:      name,
		CreatedAt: t,
		UpdatedAt: t,
		Verified:  true,
	})
	return nil
}
