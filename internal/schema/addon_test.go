package schema

import (
	"encoding/json"
	"testing"
)

// TestPlanRef: a plan as the schema gives it (a string) and as the
// Heroku CLI sends it ({"name": ...}).
func TestPlanRef(t *testing.T) {
	for body, want := range map[string]PlanRef{
		`{"plan": "heroku-redis:mini"}`:                "heroku-redis:mini",
		`{"plan": {"name": "heroku-postgresql"}}`:      "heroku-postgresql",
		`{"plan": {"name": "redis", "id": "ignored"}}`: "redis",
		`{"plan": null}`:                               "",
		`{}`:                                           "",
	} {
		var u AddonUpdate
		if err := json.Unmarshal([]byte(body), &u); err != nil || u.Plan != want {
			t.Errorf("%s: %q, %v; want %q", body, u.Plan, err, want)
		}
	}
	for _, body := range []string{`{"plan": 7}`, `{"plan": ["x"]}`, `{"plan": {"name": 7}}`} {
		var u AddonUpdate
		if err := json.Unmarshal([]byte(body), &u); err == nil {
			t.Errorf("%s: accepted as %q", body, u.Plan)
		}
	}
}
