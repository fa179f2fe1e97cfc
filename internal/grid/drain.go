package grid

import "time"

// Drain is a log drain: where every line of an app's log is also sent
// (syslog://, syslog+tls:// or https://).
type Drain struct {
	ID    string `json:"id"`
	App   string `json:"app"`
	AppID string `json:"app_id"`
	// URL is the destination; an https URL may carry credentials, so it
	// is shown only to the app's users and never logged.
	URL string `json:"url"`
	// Token is "d.<uuid>": the syslog HOSTNAME and Logplex-Drain-Token
	// of every line sent, which receivers use to tell drains apart.
	Token     string    `json:"token"`
	CreatedAt time.Time `json:"created_at"`
}

// MaxDrains is how many drains an app may have (Heroku's documented 5).
const MaxDrains = 5
