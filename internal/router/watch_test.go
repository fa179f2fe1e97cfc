package router

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

// pause waits out the back-off and then for the store to be connected;
// a re-established connection cuts the back-off short.
func TestPauseWaitsForTheConnection(t *testing.T) {
	t.Parallel()
	events := make(chan nats.Status, 1)
	var up atomic.Bool
	asked := make(chan bool, 100)
	link := linkEvents{changed: events, connected: func() bool { v := up.Load(); asked <- v; return v }}

	t.Run("cut off", func(t *testing.T) {
		done := make(chan bool, 1)
		go func() { done <- pause(bg, link, time.Millisecond) }()
		if <-asked { // asked once the back-off is over: still down
			t.Fatal("connected")
		}
		select {
		case <-done:
			t.Fatal("pause returned while the store was cut off")
		default:
		}
		up.Store(true)
		events <- nats.CONNECTED
		if !<-done {
			t.Error("pause = false")
		}
	})
	t.Run("reconnected during the back-off", func(t *testing.T) {
		done := make(chan bool, 1)
		go func() { done <- pause(bg, link, time.Hour) }()
		events <- nats.CONNECTED
		if !<-done {
			t.Error("pause = false")
		}
	})
	t.Run("ctx ends", func(t *testing.T) {
		up.Store(false)
		ctx, cancel := context.WithCancel(bg)
		cancel()
		if pause(ctx, link, time.Hour) {
			t.Error("pause = true after ctx ended")
		}
	})
}
