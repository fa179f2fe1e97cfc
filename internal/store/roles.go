package store

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"regexp"
	"strings"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/dynogrid/grid/internal/grid"
)

// Role is what a NATS client is: a server (the control plane: API,
// manager, builds), a host agent or a router. Each gets credentials
// derived from the cluster secret and permissions that allow only what
// the role needs, so a compromised host can neither read another host's
// assignments (config vars) nor rewrite another host's dynos.
type Role struct {
	Kind RoleKind
	ID   string // host or router id; the server name for servers
}

// RoleKind names a kind of role.
type RoleKind string

// Role kinds.
const (
	RoleServer RoleKind = "server"
	RoleHost   RoleKind = "host"
	RoleRouter RoleKind = "router"
)

var roleIDRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// ValidateRoleID reports whether id can name a host or router: it becomes
// part of NATS subjects and KV keys.
func ValidateRoleID(id string) error {
	if !roleIDRE.MatchString(id) {
		return fmt.Errorf("id %q must be 1 to 64 letters, digits, '-' or '_': %w", id, grid.ErrInvalid)
	}
	return nil
}

// User is the NATS user name of a role.
func (r Role) User() string { return string(r.Kind) + "." + r.ID }

// Password is the role's NATS password: an HMAC of the role under the
// cluster secret, so servers can check it without storing anything and an
// operator can hand one host its password without the secret.
func (r Role) Password(secret []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte("grid-nats-role\x00" + r.User()))
	return hex.EncodeToString(m.Sum(nil))
}

// inboxPrefix is the role's private reply-subject prefix. Roles may only
// subscribe below their own prefix, so no client can read another's
// replies (which carry KV values).
func (r Role) inboxPrefix() string {
	return "_INBOX_" + string(r.Kind) + "_" + r.ID
}

// parseUser is the inverse of User.
func parseUser(user string) (Role, bool) {
	kind, id, ok := strings.Cut(user, ".")
	r := Role{Kind: RoleKind(kind), ID: id}
	switch r.Kind {
	case RoleServer, RoleHost, RoleRouter:
	default:
		return r, false
	}
	return r, ok && ValidateRoleID(id) == nil
}

// authenticator checks NATS clients against the cluster secret and gives
// each the permissions of its role.
type authenticator struct{ secret []byte }

// Check implements server.Authentication.
func (a authenticator) Check(c server.ClientAuthentication) bool {
	opts := c.GetOpts()
	role, ok := parseUser(opts.Username)
	if !ok {
		return false
	}
	want := role.Password(a.secret)
	if subtle.ConstantTimeCompare([]byte(opts.Password), []byte(want)) != 1 {
		return false
	}
	c.RegisterUser(&server.User{Username: opts.Username, Permissions: permissions(role)})
	return true
}

// permissions lists what each role may publish and subscribe to. Servers
// may do anything. The JetStream API subjects are the ones nats.go uses
// for KV watches (ordered consumers with one filter subject, so the filter
// is part of the create subject and can be allowed per host), KV gets
// (direct get by subject) and object store reads.
func permissions(r Role) *server.Permissions {
	if r.Kind == RoleServer {
		return nil
	}
	pub := []string{
		"$JS.API.INFO",
		"$JS.API.STREAM.INFO.*",
		"$JS.FC.>",
		"logs.>",
	}
	watch := func(bucket, filter string) []string {
		stream := "KV_" + bucket
		return []string{
			"$JS.API.CONSUMER.CREATE." + stream + ".*.$KV." + bucket + "." + filter,
			"$JS.API.CONSUMER.DELETE." + stream + ".*",
			"$JS.API.CONSUMER.INFO." + stream + ".*",
		}
	}
	get := func(bucket, filter string) []string {
		return []string{"$JS.API.DIRECT.GET.KV_" + bucket + ".$KV." + bucket + "." + filter}
	}
	sub := []string{r.inboxPrefix() + ".>"}
	switch r.Kind {
	case RoleHost:
		h := r.ID
		pub = append(pub,
			"$KV.hosts."+h,
			"$KV.dynos."+h+".>",
			"$JS.API.DIRECT.GET.OBJ_slugblobs.>",
			"$JS.API.STREAM.MSG.GET.OBJ_slugblobs",
			"$JS.API.CONSUMER.CREATE.OBJ_slugblobs.*.$O.slugblobs.C.>",
			"$JS.API.CONSUMER.DELETE.OBJ_slugblobs.*",
		)
		pub = append(pub, "sessions."+h+".>") // attached one-off dynos (internal/session)
		sub = append(sub, "sessions."+h+".>")
		pub = append(pub, watch("assignments", h+".>")...)
		pub = append(pub, watch("dynos", h+".>")...)
		pub = append(pub, watch("appmeta", ">")...)
		pub = append(pub, get("slugs", ">")...)
		pub = append(pub, get("hosts", h)...)
	case RoleRouter:
		pub = append(pub, "$KV.routers."+r.ID)
		pub = append(pub, watch("appmeta", ">")...)
		pub = append(pub, watch("formations", ">")...)
		pub = append(pub, watch("dynos", ">")...)
		pub = append(pub, watch("hostctl", ">")...)
		pub = append(pub, watch("domains", ">")...)
		pub = append(pub, watch("certs", ">")...) // private keys: routers terminate TLS
	}
	return &server.Permissions{
		Publish:   &server.SubjectPermission{Allow: pub},
		Subscribe: &server.SubjectPermission{Allow: sub},
		// One reply to each request received (a host answering an attach,
		// internal/session), to the requester's inbox only.
		Response: &server.ResponsePermission{MaxMsgs: 1},
	}
}
