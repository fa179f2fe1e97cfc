package api

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"strings"
)

// Capability URLs (log streams, source uploads, build output) carry a
// token that is its own authority: claims of one kind, signed with
// HMAC-SHA256 under Config.SessionSecret,
//
//	<base64url(JSON claims)>.<base64url(HMAC of kind, NUL, the first part)>
//
// The kind in the MAC keeps a token of one kind from being accepted as
// another. Each kind checks its claims' age itself.

func (s *server) sign(kind string, claims any) string {
	b, _ := json.Marshal(claims) // plain structs: cannot fail
	payload := base64.RawURLEncoding.EncodeToString(b)
	return payload + "." + base64.RawURLEncoding.EncodeToString(s.mac(kind, payload))
}

// open checks token's signature for kind and decodes its claims into v.
func (s *server) open(kind, token string, v any) bool {
	payload, sig, ok := strings.Cut(token, ".")
	if !ok {
		return false
	}
	got, err := base64.RawURLEncoding.DecodeString(sig)
	if err != nil || !hmac.Equal(got, s.mac(kind, payload)) {
		return false
	}
	b, err := base64.RawURLEncoding.DecodeString(payload)
	return err == nil && json.Unmarshal(b, v) == nil
}

func (s *server) mac(kind, payload string) []byte {
	m := hmac.New(sha256.New, s.secret)
	m.Write([]byte(kind + "\x00" + payload))
	return m.Sum(nil)
}
