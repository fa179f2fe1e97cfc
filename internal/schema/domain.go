package schema

import "time"

// Domain is a hostname an app answers to: its own (kind "heroku",
// <app>.<domain>) or a custom one (kind "custom").
type Domain struct {
	ID       string `json:"id"`
	Hostname string `json:"hostname"`
	Kind     string `json:"kind"` // "heroku" or "custom"
	// CNAME is the DNS target a custom domain's record should point at:
	// the app's own hostname, which reaches the routers. Null for the
	// app's own domain.
	CNAME *string `json:"cname"`
	// Status is "succeeded" for custom domains (routed as soon as they
	// are added) and "none" for the app's own, as Heroku reports them.
	Status          string    `json:"status"`
	SNIEndpoint     *Ref      `json:"sni_endpoint"` // the app certificate covering the hostname, if any
	ACMStatus       *string   `json:"acm_status"`
	ACMStatusReason *string   `json:"acm_status_reason"`
	App             Ref       `json:"app"`
	CreatedAt       time.Time `json:"created_at"`
	UpdatedAt       time.Time `json:"updated_at"`
}

// DomainCreate is the body of POST /apps/{app}/domains. sni_endpoint,
// which the Heroku CLI sends, is accepted and ignored: the router picks
// the certificate by the client's server name.
type DomainCreate struct {
	Hostname string `json:"hostname"`
}

// SNIEndpoint is an app's TLS certificate as the API shows it (never its
// private key).
type SNIEndpoint struct {
	ID               string    `json:"id"`
	Name             string    `json:"name"`
	DisplayName      *string   `json:"display_name"`
	CertificateChain string    `json:"certificate_chain"`
	App              Ref       `json:"app"`
	Domains          []string  `json:"domains"` // ids of the app's domains the certificate covers
	SSLCert          SSLCert   `json:"ssl_cert"`
	CreatedAt        time.Time `json:"created_at"`
	UpdatedAt        time.Time `json:"updated_at"`
}

// SSLCert describes an SNI endpoint's leaf certificate.
type SSLCert struct {
	ID          string    `json:"id"`
	CASigned    bool      `json:"ca_signed?"`
	SelfSigned  bool      `json:"self_signed?"`
	CertDomains []string  `json:"cert_domains"`
	Issuer      string    `json:"issuer"`
	Subject     string    `json:"subject"`
	StartsAt    time.Time `json:"starts_at"`
	ExpiresAt   time.Time `json:"expires_at"`
}

// SNIEndpointCreate is the body of POST /apps/{app}/sni-endpoints: PEM
// texts, the chain leaf first.
type SNIEndpointCreate struct {
	CertificateChain string `json:"certificate_chain"`
	PrivateKey       string `json:"private_key"`
}
