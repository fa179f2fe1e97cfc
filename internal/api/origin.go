package api

import "context"

// The API answers on more than one origin (http://localhost:5000 and,
// for the Heroku CLI, https://localhost:5443). URLs in answers go back
// to the origin the request came in at.

type originKey struct{}

// WithOrigin marks a connection's context (http.Server.ConnContext) as
// having come in at origin, "https://localhost:5443": the git URLs it is
// shown are then on that origin, as the Heroku CLI's remotes are.
func WithOrigin(ctx context.Context, origin string) context.Context {
	return context.WithValue(ctx, originKey{}, origin)
}

// gitURLFor is app's git URL as the request of ctx should see it.
func (s *server) gitURLFor(ctx context.Context, app string) string {
	if o, ok := ctx.Value(originKey{}).(string); ok {
		return o + "/" + app + ".git"
	}
	return s.gitURL(app)
}

// base is the API's URL as the request of ctx should see it: capability
// URLs (log streams, build output, uploads) go back to the origin the
// client came in at, which may be the only one it can reach (a tunnel).
func (s *server) base(ctx context.Context) string {
	if o, ok := ctx.Value(originKey{}).(string); ok {
		return o
	}
	return s.baseURL
}
