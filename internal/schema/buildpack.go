package schema

// BuildpackInstallation is one entry of an app's buildpack list.
type BuildpackInstallation struct {
	Ordinal   int           `json:"ordinal"` // from 0, in build order
	Buildpack BuildpackInfo `json:"buildpack"`
}

// BuildpackInfo names a buildpack: for built-ins and URLs alike, Name is
// what the user set.
type BuildpackInfo struct {
	URL  string `json:"url"`
	Name string `json:"name"`
}

// BuildpackInstallationsUpdate is the body of PUT
// /apps/{app}/buildpack-installations: the whole new list, in order.
type BuildpackInstallationsUpdate struct {
	Updates *[]BuildpackUpdate `json:"updates"`
}

// BuildpackUpdate is one entry of BuildpackInstallationsUpdate.
type BuildpackUpdate struct {
	Buildpack string `json:"buildpack"`
}
