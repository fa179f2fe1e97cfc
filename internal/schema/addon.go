package schema

import (
	"encoding/json"
	"time"
)

// Addon is an add-on as the Platform API shows it.
type Addon struct {
	ID           string        `json:"id"`
	Name         string        `json:"name"`
	AddonService Ref           `json:"addon_service"`
	Plan         Ref           `json:"plan"` // name "heroku-postgresql:essential-0"
	App          Ref           `json:"app"`  // the owning app
	ConfigVars   []string      `json:"config_vars"`
	ProviderID   string        `json:"provider_id"`
	State        string        `json:"state"` // "provisioned"
	Actions      []struct{}    `json:"actions"`
	BilledPrice  *struct{}     `json:"billed_price"`
	WebURL       *string       `json:"web_url"`
	Attachments  []AttachedRef `json:"attachments,omitempty"` // grid's: where it is attached
	CreatedAt    time.Time     `json:"created_at"`
	UpdatedAt    time.Time     `json:"updated_at"`
}

// AttachedRef names an app an add-on is attached to, and as what.
type AttachedRef struct {
	App  string `json:"app"`
	Name string `json:"name"`
}

// AddonCreate is the body of POST /apps/{app}/addons.
type AddonCreate struct {
	Plan       PlanRef           `json:"plan"`
	Attachment *AttachmentName   `json:"attachment"`
	Config     map[string]string `json:"config"` // no option is known: must be empty
}

// AddonUpdate is the body of PATCH /apps/{app}/addons/{addon}: a plan
// change.
type AddonUpdate struct {
	Plan PlanRef `json:"plan"`
}

// PlanRef names a plan, "heroku-postgresql[:plan]". The schema says a
// string; the Heroku CLI sends {"name": "..."}; both are accepted.
type PlanRef string

// UnmarshalJSON takes "name" or {"name": "name"}.
func (p *PlanRef) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		*p = PlanRef(s)
		return nil
	}
	var o struct {
		Name string `json:"name"`
	}
	if err := json.Unmarshal(b, &o); err != nil {
		return err
	}
	*p = PlanRef(o.Name)
	return nil
}

// AttachmentName is the attachment part of AddonCreate.
type AttachmentName struct {
	Name string `json:"name"`
}

// AddonAttachment is an attachment as the Platform API shows it.
type AddonAttachment struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	Addon     AddonRef  `json:"addon"`
	App       Ref       `json:"app"`
	WebURL    *string   `json:"web_url"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// AddonRef names an add-on and its owning app.
type AddonRef struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	App  Ref    `json:"app"`
}

// AttachmentCreate is the body of POST /addon-attachments.
type AttachmentCreate struct {
	Addon string `json:"addon"` // id or name
	App   string `json:"app"`   // id or name
	Name  string `json:"name"`
}

// Backup is a stored dump of an add-on's data.
type Backup struct {
	ID        string    `json:"id"`
	Size      int64     `json:"size"`
	CreatedAt time.Time `json:"created_at"`
	User      string    `json:"user"`
}
