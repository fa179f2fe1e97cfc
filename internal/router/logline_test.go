package router

import (
	"testing"
	"time"
)

func TestLogLineFormat(t *testing.T) {
	t.Parallel()
	base := logRecord{
		method: "GET", path: "/", host: "hello.localhost", requestID: "9f0b7f4e-8d2a-4c55-a4f0-5b1d6c1f2e3d",
		fwd: "127.0.0.1", protocol: "http",
	}
	ok := base
	ok.dyno, ok.connect, ok.service, ok.status, ok.bytes = "web.2", 400*time.Microsecond, 3*time.Millisecond, 200, 12
	h12 := base
	h12.fail, h12.dyno, h12.service, h12.status = errH12, "web.1", 30*time.Second, 503
	h80 := base
	h80.fail, h80.status = errH80, 503
	h27 := base
	h27.fail, h27.method, h27.path, h27.dyno, h27.connect, h27.status = errH27, "PATCH", `/a "b"?c=d`, "web.1", time.Millisecond, 499
	cases := []struct {
		name string
		rec  logRecord
		want string
	}{
		{"ok", ok, `at=info method=GET path="/" host=hello.localhost request_id=9f0b7f4e-8d2a-4c55-a4f0-5b1d6c1f2e3d fwd="127.0.0.1" dyno=web.2 connect=0ms service=3ms status=200 bytes=12 protocol=http`},
		{"H12", h12, `at=error code=H12 desc="Request timeout" method=GET path="/" host=hello.localhost request_id=9f0b7f4e-8d2a-4c55-a4f0-5b1d6c1f2e3d fwd="127.0.0.1" dyno=web.1 connect=0ms service=30000ms status=503 bytes=0 protocol=http`},
		{"H80 is info, no dyno", h80, `at=info code=H80 desc="Maintenance mode" method=GET path="/" host=hello.localhost request_id=9f0b7f4e-8d2a-4c55-a4f0-5b1d6c1f2e3d fwd="127.0.0.1" dyno= connect= service= status=503 bytes=0 protocol=http`},
		{"H27 sock, quoted path", h27, `sock=client at=warning code=H27 desc="Client Request Interrupted" method=PATCH path="/a \"b\"?c=d" host=hello.localhost request_id=9f0b7f4e-8d2a-4c55-a4f0-5b1d6c1f2e3d fwd="127.0.0.1" dyno=web.1 connect=1ms service=0ms status=499 bytes=0 protocol=http`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.rec.String(); got != tc.want {
				t.Errorf("got  %s\nwant %s", got, tc.want)
			}
		})
	}
}
