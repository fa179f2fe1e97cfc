package main

import (
	"fmt"
	"strings"
	"testing"
)

// TestServicesFlag: --services parses what formatServices writes, and
// refuses what is not an IPv4 address with a port or a port range.
func TestServicesFlag(t *testing.T) {
	const flag = "10.229.0.1:5432,10.229.0.1:16000-16999"
	svcs, err := parseServices(" " + flag + ", ")
	if err != nil || len(svcs) != 2 || svcs[1].FirstPort != 16000 || svcs[1].LastPort != 16999 {
		t.Fatalf("parse: %+v, %v", svcs, err)
	}
	if got := formatServices(svcs); got != flag {
		t.Errorf("format: %q, want %q", got, flag)
	}
	for _, bad := range []string{"10.229.0.1", "::1:5432", "db:5432", "10.0.0.1:0", "10.0.0.1:9-8", "10.0.0.1:70000", "10.0.0.1:-5"} {
		if _, err := parseServices(bad); err == nil || !strings.Contains(err.Error(), "--services") {
			t.Errorf("%q: %v", bad, err)
		}
	}
}

// TestJoinServersAreInternal: the servers a host joins are closed to its
// dynos, however --join names them.
func TestJoinServersAreInternal(t *testing.T) {
	got := joinServers("nats://10.0.0.1:4222, tls://u:p@10.0.0.2:4222,nats://nats.example:4222,nats://127.0.0.1:4222,nats://0.0.0.0:4222,nats://[fd00::1]:4222,%zz")
	if fmt.Sprint(got) != "[10.0.0.1/32 10.0.0.2/32]" {
		t.Errorf("joinServers = %v", got)
	}
}
