package gitrecv

import "testing"

// BenchmarkPushRoundTrip measures `git push` of one empty commit to main
// with a Deployer that does nothing: authentication, ref advertisement,
// receive-pack, the hook, git archive, spooling the source and the ref
// update.
func BenchmarkPushRoundTrip(b *testing.B) {
	g, c := newTestGrid(b, &recorder{}), newClient(b)
	c.commit(map[string]string{"Procfile": "web: ./server\n"}, "first")
	c.must("push", "--quiet", g.remote("myapp"), "main")
	for b.Loop() {
		b.StopTimer()
		c.must("commit", "--quiet", "--allow-empty", "-m", "empty")
		b.StartTimer()
		c.must("push", "--quiet", g.remote("myapp"), "main")
	}
}

// BenchmarkPushUpToDate measures a push with nothing to send: only the
// authenticated ref advertisement.
func BenchmarkPushUpToDate(b *testing.B) {
	g, c := newTestGrid(b, &recorder{}), newClient(b)
	c.commit(map[string]string{"Procfile": "web: ./server\n"}, "first")
	c.must("push", "--quiet", g.remote("myapp"), "main")
	for b.Loop() {
		c.must("push", "--quiet", g.remote("myapp"), "main")
	}
}
