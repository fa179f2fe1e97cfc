package schema

import "time"

// Source is the answer to POST /sources: where to upload a source
// tarball (PUT, no Authorization) and where builds can fetch it.
type Source struct {
	SourceBlob SourceURLs `json:"source_blob"`
}

// SourceURLs are a source upload's capability URLs, valid for an hour.
type SourceURLs struct {
	GetURL string `json:"get_url"`
	PutURL string `json:"put_url"`
}

// Build is a Build API build.
type Build struct {
	ID              string          `json:"id"`
	App             IDRef           `json:"app"`
	Buildpacks      []BuildpackInfo `json:"buildpacks"`
	OutputStreamURL string          `json:"output_stream_url"`
	Release         *IDRef          `json:"release"` // null until released
	Slug            *IDRef          `json:"slug"`    // null until built
	SourceBlob      BuildSource     `json:"source_blob"`
	Stack           string          `json:"stack"`
	Status          string          `json:"status"` // pending, succeeded, failed
	User            UserRef         `json:"user"`
	CreatedAt       time.Time       `json:"created_at"`
	UpdatedAt       time.Time       `json:"updated_at"`
}

// BuildSource is a build's source tarball.
type BuildSource struct {
	URL                string  `json:"url"`
	Version            *string `json:"version"`
	VersionDescription *string `json:"version_description"`
	Checksum           *string `json:"checksum"`
}

// BuildCreate is the body of POST /apps/{app}/builds.
type BuildCreate struct {
	SourceBlob *BuildSource `json:"source_blob"`
	// Buildpacks replaces the app's list for this build: [{"url": ...}]
	// (Heroku also accepts {"name": ...}).
	Buildpacks []BuildpackRefIn `json:"buildpacks"`
}

// BuildpackRefIn names a buildpack in a build request.
type BuildpackRefIn struct {
	URL  string `json:"url"`
	Name string `json:"name"`
}
