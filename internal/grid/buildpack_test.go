package grid

import (
	"errors"
	"strings"
	"testing"
)

func TestParseBuildpack(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		want BuildpackRef // zero URL: invalid
	}{
		{"heroku/go", BuildpackRef{URL: "heroku/go", Kind: BuildpackBuiltin, Fetch: "heroku/go"}},
		{"urn:buildpack:heroku/nodejs", BuildpackRef{URL: "heroku/nodejs", Kind: BuildpackBuiltin, Fetch: "heroku/nodejs"}},
		{"https://example.com/bp.git", BuildpackRef{URL: "https://example.com/bp.git", Kind: BuildpackGit, Fetch: "https://example.com/bp.git"}},
		{"https://example.com/x/bp#v1.2", BuildpackRef{URL: "https://example.com/x/bp#v1.2", Kind: BuildpackGit, Fetch: "https://example.com/x/bp", Ref: "v1.2"}},
		{"http://10.0.0.1:8080/bp#feature/x", BuildpackRef{URL: "http://10.0.0.1:8080/bp#feature/x", Kind: BuildpackGit, Fetch: "http://10.0.0.1:8080/bp", Ref: "feature/x"}},
		{"https://example.com/bp.tgz", BuildpackRef{URL: "https://example.com/bp.tgz", Kind: BuildpackTarball, Fetch: "https://example.com/bp.tgz"}},
		{"https://example.com/BP.TAR.GZ?x=1", BuildpackRef{URL: "https://example.com/BP.TAR.GZ?x=1", Kind: BuildpackTarball, Fetch: "https://example.com/BP.TAR.GZ?x=1"}},
		{"/srv/buildpacks/ruby", BuildpackRef{URL: "/srv/buildpacks/ruby", Kind: BuildpackLocal, Fetch: "/srv/buildpacks/ruby"}},
		{"file:///srv/bp", BuildpackRef{URL: "/srv/bp", Kind: BuildpackLocal, Fetch: "/srv/bp"}},
		{"", BuildpackRef{}},
		{"heroku/ruby", BuildpackRef{}},
		{"nodejs", BuildpackRef{}},
		{"ftp://example.com/bp.tgz", BuildpackRef{}},
		{"git@github.com:x/y.git", BuildpackRef{}},
		{"https://user:pw@example.com/bp", BuildpackRef{}},
		{"https:///bp", BuildpackRef{}},
		{"https://example.com/bp.tgz#v1", BuildpackRef{}},
		{"https://example.com/bp#--upload-pack=x", BuildpackRef{}},
		{"https://example.com/bp#a..b", BuildpackRef{}},
		{"https://example.com/a b", BuildpackRef{}},
		{"/srv/../etc", BuildpackRef{}},
		{"file://srv/bp", BuildpackRef{}},
		{"https://example.com/" + strings.Repeat("a", 1000), BuildpackRef{}},
	} {
		got, err := ParseBuildpack(tc.in)
		if tc.want.URL == "" {
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("ParseBuildpack(%q) = %+v, %v; want ErrInvalid", tc.in, got, err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ParseBuildpack(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
	}
}

func TestParseBuildpacks(t *testing.T) {
	t.Parallel()
	if refs, err := ParseBuildpacks([]string{"heroku/nodejs", "heroku/go"}); err != nil || len(refs) != 2 || refs[1].URL != "heroku/go" {
		t.Errorf("two built-ins: %+v, %v", refs, err)
	}
	if _, err := ParseBuildpacks([]string{"heroku/go", "urn:buildpack:heroku/go"}); !errors.Is(err, ErrInvalid) {
		t.Errorf("a duplicate: err = %v, want ErrInvalid", err)
	}
	many := make([]string, MaxBuildpacks+1)
	for i := range many {
		many[i] = "https://example.com/bp" + strings.Repeat("x", i)
	}
	if _, err := ParseBuildpacks(many); !errors.Is(err, ErrInvalid) {
		t.Errorf("%d buildpacks: err = %v, want ErrInvalid", len(many), err)
	}
	if refs, err := ParseBuildpacks(nil); err != nil || len(refs) != 0 {
		t.Errorf("none: %+v, %v", refs, err)
	}
}
