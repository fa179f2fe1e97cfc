package grid

import (
	"errors"
	"strings"
	"testing"
)

func TestNormalizeHostname(t *testing.T) {
	t.Parallel()
	longest := strings.Repeat("abcdefghi.", 25) + "abc" // 253 characters
	for _, tc := range []struct {
		in, want string // want "" means invalid
	}{
		{"www.example.com", "www.example.com"},
		{"WWW.Example.COM.", "www.example.com"},
		{"*.example.com", "*.example.com"},
		{"a-b.c0.example", "a-b.c0.example"},
		{"xn--bcher-kva.example", "xn--bcher-kva.example"},
		{strings.Repeat("a", 63) + ".com", strings.Repeat("a", 63) + ".com"},
		{strings.Repeat("a", 64) + ".com", ""},
		{longest, longest},
		{longest + "d", ""},
		{"localhost", ""},
		{"*.com", ""},
		{"a.*.example.com", ""},
		{"*a.example.com", ""},
		{"-a.example.com", ""},
		{"a..example.com", ""},
		{"a_b.example.com", ""},
		{"10.0.0.1", ""},
		{"", ""},
	} {
		got, err := NormalizeHostname(tc.in)
		if got != tc.want || (tc.want == "") != errors.Is(err, ErrInvalid) {
			t.Errorf("NormalizeHostname(%.20q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

func TestWildcardOf(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"a.example.com":   "*.example.com",
		"a.b.example.com": "*.b.example.com",
		"example.com":     "",
		"com":             "",
	} {
		if got := WildcardOf(in); got != want {
			t.Errorf("WildcardOf(%q) = %q, want %q", in, got, want)
		}
	}
}
