package schema

import (
	"encoding/json"
	"testing"
)

func TestQuantity(t *testing.T) {
	for in, want := range map[string]Quantity{`3`: "3", `"3"`: "3", `"+1"`: "+1", `"-2"`: "-2", ` 0 `: "0", `-4`: "-4"} {
		var q Quantity
		if err := json.Unmarshal([]byte(in), &q); err != nil || q != want {
			t.Errorf("%s: %q %v, want %q", in, q, err, want)
		}
	}
	for _, in := range []string{`1.5`, `1e3`, `true`, `null`, `{}`, `[1]`} {
		var q Quantity
		if err := json.Unmarshal([]byte(in), &q); err == nil && in != `null` {
			t.Errorf("%s accepted as %q", in, q)
		}
	}
	b, _ := json.Marshal(FormationUpdate{Type: "web", Quantity: new(Quantity("+1"))})
	if string(b) != `{"type":"web","quantity":"+1"}` {
		t.Errorf("encoded %s", b)
	}
}

func TestSizeName(t *testing.T) {
	for u, want := range map[*FormationUpdate]string{
		{Size: "basic", DynoSize: &DynoSize{Name: "x"}}: "basic",
		{DynoSize: &DynoSize{Name: "Standard-2X"}}:      "Standard-2X",
		{DynoSize: &DynoSize{ID: "id-1"}}:               "id-1",
		{}:                                              "",
	} {
		if got := u.SizeName(); got != want {
			t.Errorf("%+v: %q, want %q", *u, got, want)
		}
	}
}
