package grid

import "time"

// Cert is a TLS certificate and its private key, served by routers for
// an app's custom domains (Heroku's SNI endpoint). The private key is a
// secret: only servers and routers may read a Cert (docs/ARCHITECTURE.md),
// and it must never be logged or returned by the API.
type Cert struct {
	ID   string `json:"id"`
	Name string `json:"name"` // unique per app, as Heroku names SNI endpoints
	App  string `json:"app"`  // "" for the grid's default certificate
	// Chain is the PEM certificate chain, leaf first.
	Chain string `json:"certificate_chain"`
	// Key is the PEM private key of the leaf.
	Key       string    `json:"private_key"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}
