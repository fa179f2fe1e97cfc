package schema

import "time"

// LogSession is a capability to read an app's logs once, at LogplexURL,
// as Server-Sent Events and without other credentials.
type LogSession struct {
	ID         string    `json:"id"`
	LogplexURL string    `json:"logplex_url"`
	CreatedAt  time.Time `json:"created_at"`
	UpdatedAt  time.Time `json:"updated_at"`
}

// LogSessionCreate is the body of POST /apps/{app}/log-sessions. The Heroku
// CLI sends Dyno; the documented schema has DynoName and Type. The first
// non-empty of Dyno, DynoName, Type filters by dyno ("web.1") or process
// type ("web").
type LogSessionCreate struct {
	Dyno     string `json:"dyno,omitempty"`
	DynoName string `json:"dyno_name,omitempty"`
	Type     string `json:"type,omitempty"`
	Lines    *int   `json:"lines,omitempty"`  // history lines; nil means 100
	Source   string `json:"source,omitempty"` // "app", "heroku" or empty for both
	Tail     bool   `json:"tail,omitempty"`
}

// DynoFilter is the dyno or process type the session asks for; empty for all.
func (c LogSessionCreate) DynoFilter() string {
	for _, s := range []string{c.Dyno, c.DynoName, c.Type} {
		if s != "" {
			return s
		}
	}
	return ""
}
