package schema

import (
	"bytes"
	"encoding/json"
	"errors"
	"time"
)

// Formation is one process type of an app's formation.
type Formation struct {
	ID        string    `json:"id"`
	Type      string    `json:"type"`
	Command   string    `json:"command"`
	Quantity  int       `json:"quantity"`
	Size      string    `json:"size"` // display name: "Standard-1X"
	DynoSize  DynoSize  `json:"dyno_size"`
	App       Ref       `json:"app"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// DynoSize names a dyno size. In requests either field may identify it.
type DynoSize struct {
	ID   string `json:"id,omitempty"`
	Name string `json:"name,omitempty"`
}

// FormationUpdate is one change to a process type, as PATCH
// /apps/{app}/formation (inside FormationBatchUpdate) and PATCH
// /apps/{app}/formation/{type} accept it. Both the documented form
// (quantity a number, dyno_size an object) and the form the Heroku CLI
// sends (quantity a string, possibly relative like "+1", and size a string)
// are accepted.
type FormationUpdate struct {
	Type     string    `json:"type,omitempty"` // empty in the single-type PATCH
	Quantity *Quantity `json:"quantity,omitempty"`
	Size     string    `json:"size,omitempty"`
	DynoSize *DynoSize `json:"dyno_size,omitempty"`
}

// SizeName is the requested size: Size, else DynoSize's name, else its id;
// empty when the update leaves the size alone.
func (u FormationUpdate) SizeName() string {
	switch {
	case u.Size != "":
		return u.Size
	case u.DynoSize == nil:
		return ""
	case u.DynoSize.Name != "":
		return u.DynoSize.Name
	}
	return u.DynoSize.ID
}

// FormationBatchUpdate is the body of PATCH /apps/{app}/formation.
type FormationBatchUpdate struct {
	Updates []FormationUpdate `json:"updates"`
}

// Quantity is a formation quantity as text: "3", or relative "+1" / "-1".
// It decodes from a JSON number or string and encodes as a string, as the
// Heroku CLI sends it.
type Quantity string

// UnmarshalJSON accepts a JSON string or an integral JSON number.
func (q *Quantity) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*q = Quantity(s)
		return nil
	}
	var n json.Number
	if err := json.Unmarshal(b, &n); err != nil {
		return errors.New("quantity must be a number or a string")
	}
	if _, err := n.Int64(); err != nil {
		return errors.New("quantity must be a whole number")
	}
	*q = Quantity(n.String())
	return nil
}
