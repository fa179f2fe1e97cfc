package schema

// ConfigVars is an app's or a release's config: the body of GET
// /apps/{app}/config-vars and of the PATCH response.
type ConfigVars map[string]string

// ConfigVarsPatch is the body of PATCH /apps/{app}/config-vars: keys are
// merged into the config; a null value removes the key.
type ConfigVarsPatch map[string]*string
