package api

import (
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestEnvVars: the Heroku CLI sends a terminal's COLUMNS and LINES as
// numbers.
func TestEnvVars(t *testing.T) {
	var q runRequest
	if err := json.Unmarshal([]byte(`{"env": {"TERM": "xterm", "COLUMNS": 100, "LINES": 30, "X": 1.5, "B": true}}`), &q); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(envVars{"TERM": "xterm", "COLUMNS": "100", "LINES": "30", "X": "1.5", "B": "true"}, q.Env); diff != "" {
		t.Error(diff)
	}
	for _, bad := range []string{`{"env": {"A": {}}}`, `{"env": {"A": [1]}}`, `{"env": []}`} {
		if err := json.Unmarshal([]byte(bad), &q); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
}
