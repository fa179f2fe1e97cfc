package schema

import "time"

// Account is the authenticated user, as GET /account returns it. Fields
// Dynogrid has no notion of (teams, SMS, suspension) are present and null so
// clients that read them find them.
type Account struct {
	ID                      string     `json:"id"`
	Email                   string     `json:"email"`
	Name                    string     `json:"name"`
	CreatedAt               time.Time  `json:"created_at"`
	UpdatedAt               time.Time  `json:"updated_at"`
	LastLogin               *time.Time `json:"last_login"`
	Verified                bool       `json:"verified"`
	TwoFactorAuthentication bool       `json:"two_factor_authentication"`
	Beta                    bool       `json:"beta"`
	AllowTracking           bool       `json:"allow_tracking"`
	Federated               bool       `json:"federated"`
	DefaultTeam             *Ref       `json:"default_team"`
	DefaultOrganization     *Ref       `json:"default_organization"`
	IdentityProvider        *Ref       `json:"identity_provider"`
	SMSNumber               *string    `json:"sms_number"`
	SuspendedAt             *time.Time `json:"suspended_at"`
	DelinquentAt            *time.Time `json:"delinquent_at"`
	CountryOfResidence      *string    `json:"country_of_residence"`
}
