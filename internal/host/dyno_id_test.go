package host

import "testing"

func TestSandboxID(t *testing.T) {
	for id, want := range map[string]string{
		"3a0fcd08-a84d-4100-b651-c5d7350b96ac": "d-3a0fcd08a84d-0",
		"ABC":                                  "d-abc-0",
	} {
		if got := sandboxID(id, 0); got != want {
			t.Errorf("sandboxID(%q) = %q, want %q", id, got, want)
		}
	}
	if got := sandboxID("3a0fcd08-a84d", 12); got != "d-3a0fcd08a84d-12" {
		t.Errorf("attempt suffix: %q", got)
	}
}
