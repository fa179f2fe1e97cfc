package schema

import "time"

// Slug is a compiled app, as GET /apps/{app}/slugs/{id} shows it.
type Slug struct {
	ID                           string            `json:"id"`
	Blob                         SlugBlob          `json:"blob"`
	BuildpackProvidedDescription *string           `json:"buildpack_provided_description"`
	Checksum                     *string           `json:"checksum"`
	Commit                       *string           `json:"commit"`
	CommitDescription            *string           `json:"commit_description"`
	ProcessTypes                 map[string]string `json:"process_types"`
	Size                         int64             `json:"size"` // bytes, compressed
	Stack                        Ref               `json:"stack"`
	CreatedAt                    time.Time         `json:"created_at"`
	UpdatedAt                    time.Time         `json:"updated_at"`
}

// SlugBlob is where to get a slug's archive: a capability URL, an hour.
type SlugBlob struct {
	Method string `json:"method"` // "GET"
	URL    string `json:"url"`
}
