package api

import (
	"net/http"
	"testing"

	"github.com/dynogrid/grid/internal/schema"
)

func TestBuildpackInstallations(t *testing.T) {
	ta := startAPI(t)
	ta.createApp("hello")
	ta.createApp("other")
	path := "/apps/hello/buildpack-installations"

	var list []schema.BuildpackInstallation
	ta.do("GET", path, nil).want(t, http.StatusOK, &list)
	if list == nil || len(list) != 0 {
		t.Fatalf("a new app's buildpacks = %#v, want []", list)
	}

	set := map[string]any{"updates": []map[string]string{
		{"buildpack": "urn:buildpack:heroku/nodejs"},
		{"buildpack": "https://example.com/bp.git#v2"},
		{"buildpack": "https://example.com/other.tgz"},
	}}
	ta.do("PUT", path, set, "Range", "").want(t, http.StatusOK, &list)
	want := []string{"heroku/nodejs", "https://example.com/bp.git#v2", "https://example.com/other.tgz"}
	check := func(what string, list []schema.BuildpackInstallation, want []string) {
		t.Helper()
		if len(list) != len(want) {
			t.Fatalf("%s: %#v, want %q", what, list, want)
		}
		for i, bi := range list {
			if bi.Ordinal != i || bi.Buildpack.URL != want[i] || bi.Buildpack.Name != want[i] {
				t.Errorf("%s: [%d] = %+v, want ordinal %d, url and name %q", what, i, bi, i, want[i])
			}
		}
	}
	check("PUT answer", list, want)
	ta.do("GET", path, nil).want(t, http.StatusOK, &list)
	check("GET after PUT", list, want)

	for _, tc := range []struct {
		body any
		msg  string
	}{
		{map[string]any{}, "updates"},
		{map[string]any{"updates": []map[string]string{{"buildpack": "heroku/ruby"}}}, "no such built-in"},
		{map[string]any{"updates": []map[string]string{{"buildpack": "heroku/go"}, {"buildpack": "heroku/go"}}}, "twice"},
		{map[string]any{"updates": []map[string]string{{"buildpack": "git@github.com:x/y"}}}, "URL of a git repository"},
		{map[string]any{"updates": []map[string]string{{"buildpack": ""}}}, "no spaces"},
		{map[string]any{"updates": "heroku/go"}, "Invalid JSON"},
	} {
		status, id := http.StatusUnprocessableEntity, "invalid_params"
		if tc.msg == "Invalid JSON" {
			status, id = http.StatusBadRequest, "bad_request"
		}
		ta.do("PUT", path, tc.body).wantError(t, status, id, tc.msg)
	}
	ta.do("GET", path, nil).want(t, http.StatusOK, &list)
	check("after refused PUTs", list, want)
	ta.do("GET", "/apps/other/buildpack-installations", nil).want(t, http.StatusOK, &list)
	check("the other app", list, nil)
	ta.do("PUT", "/apps/nosuch/buildpack-installations", set).wantError(t, http.StatusNotFound, "not_found", "app")

	ta.do("PUT", path, map[string]any{"updates": []any{}}).want(t, http.StatusOK, &list)
	check("cleared", list, nil)
}
