package schema

import "time"

// App is an application as the API returns it.
type App struct {
	ID         string  `json:"id"`
	Name       string  `json:"name"`
	Owner      UserRef `json:"owner"`
	Region     Ref     `json:"region"`
	Stack      Ref     `json:"stack"`
	BuildStack Ref     `json:"build_stack"` // always present: the Heroku CLI's apps:info crashes without it
	Generation Ref     `json:"generation"`  // name is always "cedar"
	GitURL     string  `json:"git_url"`
	WebURL     string  `json:"web_url"`

	Maintenance     bool  `json:"maintenance"`
	ACM             bool  `json:"acm"`
	InternalRouting *bool `json:"internal_routing"`
	Locked          bool  `json:"locked"`
	// CreateStatus is always "complete": creation is synchronous.
	CreateStatus string `json:"create_status"`

	Organization *Ref `json:"organization"`
	Team         *Ref `json:"team"`
	Space        *Ref `json:"space"`

	BuildpackProvidedDescription *string `json:"buildpack_provided_description"`
	RepoSize                     *int64  `json:"repo_size"` // bytes; null: not tracked
	SlugSize                     *int64  `json:"slug_size"` // bytes of the current slug; null before the first deploy

	ArchivedAt *time.Time `json:"archived_at"`
	CreatedAt  time.Time  `json:"created_at"`
	UpdatedAt  time.Time  `json:"updated_at"`
	ReleasedAt *time.Time `json:"released_at"`
}

// AppCreate is the body of POST /apps. Other fields the Heroku CLI sends
// (region, stack, ...) are accepted and ignored.
type AppCreate struct {
	// Name is the wanted name; empty means generate one.
	Name string `json:"name,omitempty"`
}

// AppUpdate is the body of PATCH /apps/{app}. Nil fields are left alone.
type AppUpdate struct {
	Maintenance *bool   `json:"maintenance,omitempty"`
	Name        *string `json:"name,omitempty"`
}
