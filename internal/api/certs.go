package api

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/dynogrid/grid/internal/grid"
	"github.com/dynogrid/grid/internal/schema"
	"github.com/dynogrid/grid/internal/store"
)

// SNI endpoints are an app's TLS certificates (Heroku's name for them).
// Routers serve one for a TLS client whose server name is a custom domain
// of the app the certificate covers. The private key goes to the store
// (certs bucket, servers and routers only) and is never shown, echoed in
// an error or logged.

var certFields = []rangeField[schema.SNIEndpoint]{
	{"id", func(c schema.SNIEndpoint) string { return c.ID }, textKey},
	{"name", func(c schema.SNIEndpoint) string { return c.Name }, textKey},
	{"created_at", func(c schema.SNIEndpoint) string { return timeValue(c.CreatedAt) }, timeKey},
	{"updated_at", func(c schema.SNIEndpoint) string { return timeValue(c.UpdatedAt) }, timeKey},
}

// parsedCert is a stored certificate with its leaf parsed.
type parsedCert struct {
	grid.Cert
	leaf *x509.Certificate
}

// appCerts is the app's certificates, oldest first. One that no longer
// parses is left out (it could only have been stored by an older API).
func (s *server) appCerts(ctx context.Context, app string) ([]parsedCert, error) {
	cs, err := s.store.Certs(ctx, app)
	if err != nil {
		return nil, err
	}
	var out []parsedCert
	for _, c := range cs {
		if leaf, err := leafOf(c.Chain); err == nil {
			out = append(out, parsedCert{c, leaf})
		}
	}
	return out, nil
}

func leafOf(chain string) (*x509.Certificate, error) {
	b, _ := pem.Decode([]byte(chain))
	if b == nil || b.Type != "CERTIFICATE" {
		return nil, errors.New("no PEM certificate")
	}
	return x509.ParseCertificate(b.Bytes)
}

// checkCertificate validates an uploaded chain and key: PEM, the key is
// the leaf's, and the leaf is valid at now. Messages never quote the key.
func checkCertificate(chain, key string, now time.Time) (*x509.Certificate, error) {
	leaf, err := leafOf(chain)
	if err != nil {
		return nil, invalid("The certificate chain is not a PEM certificate (-----BEGIN CERTIFICATE-----): " + err.Error() + ".")
	}
	if b, _ := pem.Decode([]byte(key)); b == nil || !strings.HasSuffix(b.Type, "PRIVATE KEY") {
		return nil, invalid("The private key is not a PEM private key (-----BEGIN PRIVATE KEY-----). Give an unencrypted key.")
	}
	if _, err := tls.X509KeyPair([]byte(chain), []byte(key)); err != nil {
		return nil, invalid("The private key does not match the certificate, or cannot be read (" + keyPairProblem(err) + "). Give the key the certificate was issued for.")
	}
	switch {
	case now.Before(leaf.NotBefore):
		return nil, invalid(fmt.Sprintf("The certificate is not valid until %s.", leaf.NotBefore.UTC().Format(time.RFC3339)))
	case now.After(leaf.NotAfter):
		return nil, invalid(fmt.Sprintf("The certificate expired on %s. Renew it and add the new one.", leaf.NotAfter.UTC().Format(time.RFC3339)))
	}
	return leaf, nil
}

// keyPairProblem is what tls.X509KeyPair said, which names the problem
// and never contains key material.
func keyPairProblem(err error) string { return strings.TrimPrefix(err.Error(), "tls: ") }

// certView shows a certificate; domains are the app's custom domains.
func certView(a grid.App, c parsedCert, domains []grid.Domain) schema.SNIEndpoint {
	leaf := c.leaf
	names := leaf.DNSNames
	if len(names) == 0 && leaf.Subject.CommonName != "" {
		names = []string{leaf.Subject.CommonName}
	}
	selfSigned := leaf.CheckSignatureFrom(leaf) == nil && leaf.Issuer.String() == leaf.Subject.String()
	v := schema.SNIEndpoint{
		ID:               c.ID,
		Name:             c.Name,
		CertificateChain: c.Chain,
		App:              schema.Ref{ID: a.ID, Name: a.Name},
		Domains:          []string{},
		SSLCert: schema.SSLCert{
			ID:          stableID("ssl-cert", c.ID),
			CASigned:    !selfSigned,
			SelfSigned:  selfSigned,
			CertDomains: append([]string{}, names...),
			Issuer:      leaf.Issuer.String(),
			Subject:     leaf.Subject.String(),
			StartsAt:    apiTime(leaf.NotBefore),
			ExpiresAt:   apiTime(leaf.NotAfter),
		},
		CreatedAt: apiTime(c.CreatedAt),
		UpdatedAt: apiTime(c.UpdatedAt),
	}
	for _, d := range domains {
		if leaf.VerifyHostname(d.Hostname) == nil {
			v.Domains = append(v.Domains, d.ID)
		}
	}
	return v
}

func (s *server) certViews(ctx context.Context, a grid.App) ([]schema.SNIEndpoint, error) {
	certs, err := s.appCerts(ctx, a.Name)
	if err != nil {
		return nil, err
	}
	domains, err := s.store.Domains(ctx, a.Name)
	if err != nil {
		return nil, err
	}
	out := make([]schema.SNIEndpoint, len(certs))
	for i, c := range certs {
		out[i] = certView(a, c, domains)
	}
	return out, nil
}

func (s *server) listCerts(w http.ResponseWriter, r *http.Request, user string) error {
	a, err := s.appOf(r)
	if err != nil {
		return err
	}
	vs, err := s.certViews(r.Context(), a)
	if err != nil {
		return err
	}
	return writeList(w, r, vs, certFields)
}

// findCert resolves {cert}, an id or a name, among a's certificates.
func (s *server) findCert(r *http.Request, a grid.App) (schema.SNIEndpoint, error) {
	vs, err := s.certViews(r.Context(), a)
	if err != nil {
		return schema.SNIEndpoint{}, err
	}
	ref := r.PathValue("cert")
	for _, v := range vs {
		if v.ID == ref || v.Name == ref {
			return v, nil
		}
	}
	return schema.SNIEndpoint{}, notFound("sni-endpoint")
}

func (s *server) getCert(w http.ResponseWriter, r *http.Request, user string) error {
	a, err := s.appOf(r)
	if err != nil {
		return err
	}
	v, err := s.findCert(r, a)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, v)
	return nil
}

func (s *server) createCert(w http.ResponseWriter, r *http.Request, user string) error {
	a, err := s.appOf(r)
	if err != nil {
		return err
	}
	var body schema.SNIEndpointCreate
	if err := decode(r, &body); err != nil {
		return err
	}
	now := s.now().UTC()
	leaf, err := checkCertificate(body.CertificateChain, body.PrivateKey, now)
	if err != nil {
		return err
	}
	ctx := r.Context()
	c := grid.Cert{ID: store.NewID(), App: a.Name, Chain: body.CertificateChain, Key: body.PrivateKey, CreatedAt: now, UpdatedAt: now}
	for attempt := 0; ; attempt++ {
		c.Name = generateName()
		err = s.store.CreateCert(ctx, c)
		if !errors.Is(err, grid.ErrConflict) || attempt >= 10 {
			break
		}
	}
	if err != nil {
		return err
	}
	domains, err := s.store.Domains(ctx, a.Name)
	if err != nil {
		return err
	}
	s.audit(a.Name, fmt.Sprintf("Add SSL certificate %s by user %s", c.Name, user))
	writeJSON(w, http.StatusCreated, certView(a, parsedCert{c, leaf}, domains))
	return nil
}

func (s *server) deleteCert(w http.ResponseWriter, r *http.Request, user string) error {
	a, err := s.appOf(r)
	if err != nil {
		return err
	}
	v, err := s.findCert(r, a)
	if err != nil {
		return err
	}
	if err := s.store.DeleteCert(r.Context(), a.Name, v.Name); err != nil {
		return err
	}
	s.audit(a.Name, fmt.Sprintf("Remove SSL certificate %s by user %s", v.Name, user))
	writeJSON(w, http.StatusOK, v)
	return nil
}
