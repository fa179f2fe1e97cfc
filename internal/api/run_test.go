package api

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/dynogrid/grid/internal/grid"
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

// TestOneOffWaitsOutPlacement: placing a one-off deletes its pending
// assignment and creates its host's side by side; an attach that looks
// between the two writes must still find the dyno.
func TestOneOffWaitsOutPlacement(t *testing.T) {
	ta := startAPI(t)
	placed := grid.Assignment{App: "app", Name: "run.1234", DynoID: "d1", Host: "h1", OneOff: true, Attach: true}
	go func() {
		time.Sleep(300 * time.Millisecond)
		if err := ta.store.PutAssignment(context.Background(), placed); err != nil {
			t.Error(err)
		}
	}()
	got, err := ta.s.oneOff(t.Context(), "app", "run.1234")
	if err != nil || got.Host != "h1" {
		t.Fatalf("oneOff: %+v, %v", got, err)
	}
	if _, err := ta.s.oneOff(t.Context(), "app", "run.9999"); !errors.Is(err, grid.ErrNotFound) {
		t.Errorf("a dyno that never comes: %v", err)
	}
	if _, err := ta.s.oneOff(t.Context(), "other", "run.1234"); !errors.Is(err, grid.ErrNotFound) {
		t.Errorf("another app's dyno: %v", err)
	}
}
