package host_test

import (
	"testing"
	"time"

	"github.com/dynogrid/grid/internal/grid"
)

// TestReplacementReasonIsLogged: a dyno the manager starts to cycle
// another says so first in the app's log, as Heroku's "Cycling" does.
func TestReplacementReasonIsLogged(t *testing.T) {
	h := newHarness(t, nil)
	h.start(t)
	h.assign(t, "worker.1", "sleep 1000", func(a *grid.Assignment) { a.Reason = "cycle" })
	h.assign(t, "worker.2", "sleep 1000", func(a *grid.Assignment) { a.Reason = "hung" })
	h.waitLines(t, 20*time.Second,
		"heroku[worker.1]: Cycling", "heroku[worker.1]: Starting process with command `sleep 1000`")
	h.waitLines(t, 20*time.Second, "heroku[worker.2]: Restarting: the routers found the previous worker.2 hung")
}
