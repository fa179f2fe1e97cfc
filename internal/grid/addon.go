package grid

import (
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"regexp"
	"strconv"
	"time"
)

// Addon is a provisioned add-on: a resource of a backend (a Postgres
// database, a Redis server) billed to its owning app.
type Addon struct {
	ID      string `json:"id"`
	Name    string `json:"name"` // "postgresql-dyno-4821", unique
	App     string `json:"app"`  // the owning app
	AppID   string `json:"app_id"`
	Service string `json:"service"` // "heroku-postgresql", "heroku-redis"
	Plan    string `json:"plan"`    // the plan's own name: "essential-0"
	// Resource is the backend's name for it ([a-z0-9]).
	Resource string `json:"resource"`
	// URL is the connection URL, credentials included: the value of the
	// NAME_URL config var of every attachment.
	URL       string    `json:"url"`
	Backups   []Backup  `json:"backups,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// schemePorts are the ports of add-on URL schemes that may leave theirs
// out.
var schemePorts = map[string]int{"postgres": 5432, "postgresql": 5432, "redis": 6379, "rediss": 6379}

// Endpoint is the IPv4 address and TCP port the add-on's URL points at,
// its scheme's port if it names none: what its apps' dynos are let
// through to (sandbox.Spec.Reach). False for a URL with a host name, an
// IPv6 address or no port: its dynos reach such an add-on, if at all, as
// anything else on the internet.
func (a Addon) Endpoint() (netip.AddrPort, bool) {
	u, err := url.Parse(a.URL)
	if err != nil {
		return netip.AddrPort{}, false
	}
	ap, err := URLEndpoint(u, schemePorts[u.Scheme])
	return ap, err == nil
}

// URLEndpoint is the IPv4 address and port of u's host, with port if u
// names none.
func URLEndpoint(u *url.URL, port int) (netip.AddrPort, error) {
	p := u.Port()
	if p == "" {
		p = strconv.Itoa(port)
	}
	ap, err := netip.ParseAddrPort(net.JoinHostPort(u.Hostname(), p))
	if err != nil || !ap.Addr().Is4() || ap.Port() == 0 {
		return netip.AddrPort{}, fmt.Errorf("%q is not an IPv4 address with a port: %w", u.Host, ErrInvalid)
	}
	return ap, nil
}

// Backup is a stored dump of an add-on's data (pg:backups).
type Backup struct {
	ID        string    `json:"id"` // "b001"
	Size      int64     `json:"size"`
	CreatedAt time.Time `json:"created_at"`
	User      string    `json:"user"`
}

// Attachment makes an add-on's URL an app's config var NAME_URL.
type Attachment struct {
	ID        string    `json:"id"`
	AddonID   string    `json:"addon_id"`
	App       string    `json:"app"`
	AppID     string    `json:"app_id"`
	Name      string    `json:"name"` // "DATABASE": the var is DATABASE_URL
	CreatedAt time.Time `json:"created_at"`
}

// ConfigVar is the config var the attachment sets.
func (a Attachment) ConfigVar() string { return a.Name + "_URL" }

var attachmentNameRE = regexp.MustCompile(`^[A-Z][A-Z0-9_]{0,59}$`)

// ValidateAttachmentName checks an attachment name: upper case letters,
// digits and underscores, starting with a letter.
func ValidateAttachmentName(n string) error {
	if !attachmentNameRE.MatchString(n) {
		return fmt.Errorf("attachment name %q must be capital letters, digits and underscores, starting with a letter (DATABASE, CACHE): %w", n, ErrInvalid)
	}
	return nil
}
