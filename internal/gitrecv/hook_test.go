package gitrecv

import (
	"strings"
	"testing"
)

// Not parallel: it changes the environment.
func TestRunHookOutsidePush(t *testing.T) {
	t.Setenv(envSocket, "")
	t.Setenv(envToken, "")
	var stdout, stderr strings.Builder
	if code := RunHook([]string{"pre-receive"}, strings.NewReader(""), &stdout, &stderr); code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	if !strings.Contains(stderr.String(), envSocket+" is not set") {
		t.Errorf("stderr = %q", stderr.String())
	}

	t.Setenv(envSocket, t.TempDir()+"/missing")
	t.Setenv(envToken, "t")
	stderr.Reset()
	in := strings.NewReader(zero + " " + revA + " refs/heads/main\n")
	if code := RunHook([]string{"pre-receive"}, in, &stdout, &stderr); code != 1 {
		t.Errorf("exit %d with a missing socket, want 1", code)
	}
	if !strings.Contains(stderr.String(), "Cannot reach grid's git service") {
		t.Errorf("stderr = %q", stderr.String())
	}
}

func TestRunHookUsage(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{nil, {"post-receive"}, {"pre-receive", "x"}} {
		var stderr strings.Builder
		if code := RunHook(args, strings.NewReader(""), &strings.Builder{}, &stderr); code != 2 || !strings.Contains(stderr.String(), "usage") {
			t.Errorf("RunHook(%q) = %d, %q", args, code, stderr.String())
		}
	}
}

func TestParseUpdates(t *testing.T) {
	t.Parallel()
	good := zero + " " + revA + " refs/heads/main\n" + revA + " " + revB + " refs/tags/v1\n"
	u, err := parseUpdates(strings.NewReader(good))
	if err != nil || len(u) != 2 || u[1] != (update{revA, revB, "refs/tags/v1"}) {
		t.Errorf("parseUpdates(good) = %v, %v", u, err)
	}
	for _, bad := range []string{
		"x y z\n",
		zero + " " + revA + "\n",
		zero + " " + revA + " main\n",
		zero + " " + strings.ToUpper(revA) + " refs/heads/main\n",
	} {
		if _, err := parseUpdates(strings.NewReader(bad)); err == nil {
			t.Errorf("parseUpdates(%q) succeeded", bad)
		}
	}
}

func FuzzParseUpdates(f *testing.F) {
	f.Add(zero + " " + revA + " refs/heads/main\n")
	f.Add("garbage")
	f.Fuzz(func(t *testing.T, in string) {
		updates, err := parseUpdates(strings.NewReader(in))
		if err != nil {
			return
		}
		for _, u := range updates {
			if !isObjectName(u.Old) || !isObjectName(u.New) || !strings.HasPrefix(u.Ref, "refs/") {
				t.Fatalf("parseUpdates(%q) accepted %+v", in, u)
			}
		}
	})
}
