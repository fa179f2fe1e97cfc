package host

import (
	"testing"
	"time"
)

func TestBackoffHerokuSchedule(t *testing.T) {
	var b Backoff // Heroku's defaults
	want := []time.Duration{0, 0, 10 * time.Minute, 20 * time.Minute, 40 * time.Minute, 80 * time.Minute,
		160 * time.Minute, 320 * time.Minute, 640 * time.Minute, 1280 * time.Minute, 24 * time.Hour, 24 * time.Hour}
	crashes := 0
	for i, w := range want {
		var got time.Duration
		got, crashes = b.Next(crashes, time.Minute)
		if got != w {
			t.Errorf("boot crash %d: wait %v, want %v", i+1, got, w)
		}
		if crashes != i+1 {
			t.Errorf("boot crash %d: count %d", i+1, crashes)
		}
	}
}

func TestBackoff(t *testing.T) {
	ms := Backoff{BootWindow: time.Second, CoolOff: 10 * time.Millisecond, Max: 35 * time.Millisecond}
	tests := []struct {
		name      string
		b         Backoff
		crashes   int
		ran       time.Duration
		wait      time.Duration
		nextCount int
	}{
		{"first boot crash at once", Backoff{}, 0, 0, 0, 1},
		{"second boot crash at once", Backoff{}, 1, 9 * time.Minute, 0, 2},
		{"third waits the cool-off", Backoff{}, 2, 0, 10 * time.Minute, 3},
		{"crash after the boot window resets", Backoff{}, 7, 10 * time.Minute, 0, 0},
		{"capped", Backoff{}, 1000, 0, 24 * time.Hour, 1001},
		{"configurable bases", ms, 2, 0, 10 * time.Millisecond, 3},
		{"configurable doubling", ms, 3, 0, 20 * time.Millisecond, 4},
		{"configurable cap", ms, 4, 0, 35 * time.Millisecond, 5},
		{"configurable window", ms, 4, time.Second, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wait, next := tt.b.Next(tt.crashes, tt.ran)
			if wait != tt.wait || next != tt.nextCount {
				t.Errorf("Next(%d, %v) = %v, %d; want %v, %d", tt.crashes, tt.ran, wait, next, tt.wait, tt.nextCount)
			}
		})
	}
}
