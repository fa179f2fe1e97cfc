package grid

import "testing"

func TestAddonEndpoint(t *testing.T) {
	for url, want := range map[string]string{
		"postgres://u:p@10.229.0.1:5433/db":  "10.229.0.1:5433",
		"postgres://u:p@10.229.0.1/db":       "10.229.0.1:5432",
		"postgresql://u:p@10.229.0.1/db":     "10.229.0.1:5432",
		"redis://u:p@10.229.0.1:16001":       "10.229.0.1:16001",
		"rediss://u:p@10.229.0.1":            "10.229.0.1:6379",
		"redis://u:p@cache.example.com:6379": "", // a name: the internet's
		"redis://u:p@[fd00::1]:6379":         "", // IPv6: not firewalled per dyno
		"memcached://10.229.0.1":             "", // no port to assume
		"redis://u:p@10.229.0.1:0":           "",
		"::not a url":                        "",
	} {
		got, ok := Addon{URL: url}.Endpoint()
		if ok != (want != "") || ok && got.String() != want {
			t.Errorf("Endpoint of %q = %v, %v; want %q", url, got, ok, want)
		}
	}
}
