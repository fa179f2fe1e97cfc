package drain

import (
	"bufio"
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
	"unicode/utf8"
)

// Test receivers: a strict RFC 5424 / RFC 6587 syslog server (plain or
// TLS), a server that accepts and never reads, and an HTTPS server that
// takes application/logplex-1 posts.

// msg is one parsed RFC 5424 message.
type msg struct {
	pri, host, app, procid, text string
	time                         time.Time
}

var tsRE = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}\+00:00$`)

// parseMessage parses msg as this package must write it: RFC 5424 with
// version 1, a microsecond UTC timestamp, header fields of printable
// ASCII within their limits, MSGID "-", STRUCTURED-DATA "-" when sd
// (syslog) or omitted (HTTP), and a MSG of valid UTF-8 ending in its only
// newline.
func parseMessage(m []byte, sd bool) (msg, error) {
	s := string(m)
	rest, ok := strings.CutPrefix(s, "<")
	pri, rest, ok2 := strings.Cut(rest, ">")
	if !ok || !ok2 || pri == "" || len(pri) > 3 || (pri[0] == '0' && pri != "0") {
		return msg{}, fmt.Errorf("bad PRI in %q", s)
	}
	if n, err := strconv.Atoi(pri); err != nil || n > 191 {
		return msg{}, fmt.Errorf("bad PRI %q", pri)
	}
	nf := 7 // VERSION TIMESTAMP HOSTNAME APP-NAME PROCID MSGID MSG
	if sd {
		nf++
	}
	f := strings.SplitN(rest, " ", nf)
	if len(f) != nf || f[0] != "1" {
		return msg{}, fmt.Errorf("want version 1 and %d fields: %q", nf, s)
	}
	if !tsRE.MatchString(f[1]) {
		return msg{}, fmt.Errorf("bad TIMESTAMP %q", f[1])
	}
	ts, err := time.Parse(time.RFC3339Nano, f[1])
	if err != nil {
		return msg{}, err
	}
	for i, max := range []int{255, 48, 128, 32} {
		if err := checkHeaderField(f[2+i], max); err != nil {
			return msg{}, err
		}
	}
	if f[5] != "-" || sd && f[6] != "-" {
		return msg{}, fmt.Errorf("want MSGID and STRUCTURED-DATA '-': %q", s)
	}
	text, ok := strings.CutSuffix(f[nf-1], "\n")
	if !ok || strings.ContainsAny(text, "\n\r\x00") || !utf8.ValidString(text) {
		return msg{}, fmt.Errorf("MSG must be valid UTF-8 ending in its only newline: %q", f[nf-1])
	}
	return msg{pri: pri, time: ts, host: f[2], app: f[3], procid: f[4], text: text}, nil
}

func checkHeaderField(s string, max int) error {
	if s == "" || len(s) > max {
		return fmt.Errorf("header field %q: want 1 to %d characters", s, max)
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 33 || s[i] > 126 {
			return fmt.Errorf("header field %q: byte %d is not printable ASCII", s, i)
		}
	}
	return nil
}

// readFrame reads one RFC 6587 octet-counted frame: MSG-LEN SP MSG.
func readFrame(r *bufio.Reader) ([]byte, error) {
	digits, err := r.ReadString(' ')
	if err != nil {
		if err == io.EOF && digits == "" {
			return nil, io.EOF
		}
		return nil, fmt.Errorf("frame length %q: %w", digits, err)
	}
	digits = strings.TrimSuffix(digits, " ")
	n, err := strconv.Atoi(digits)
	if err != nil || n < 1 || n > 1<<20 || digits[0] == '0' {
		return nil, fmt.Errorf("bad frame length %q", digits)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		return nil, fmt.Errorf("frame of %d bytes: %w", n, err)
	}
	return b, nil
}

// recorder collects parsed messages and protocol errors of a receiver;
// protocol errors fail the test when it ends.
type recorder struct {
	mu     sync.Mutex
	msgs   []msg
	errs   []error
	conns  int // connections accepted
	active int // connections not yet closed
}

func (r *recorder) connected(delta int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if delta > 0 {
		r.conns++
	}
	r.active += delta
}

func (r *recorder) openConns() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.active
}

func (r *recorder) add(m ...msg) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.msgs = append(r.msgs, m...)
}

func (r *recorder) fail(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errs = append(r.errs, err)
}

func (r *recorder) messages() []msg {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]msg(nil), r.msgs...)
}

func (r *recorder) accepted() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.conns
}

// wait waits until at least n messages arrived and returns them all.
func (r *recorder) wait(t *testing.T, n int) []msg {
	t.Helper()
	waitFor(t, fmt.Sprintf("%d messages", n), func() bool { return len(r.messages()) >= n })
	return r.messages()
}

func (r *recorder) check(t *testing.T) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, err := range r.errs {
		t.Errorf("receiver: %v", err)
	}
}

// syslogReceiver serves ln (plain or TLS) as a strict syslog receiver
// until the test ends. With stuck set it accepts and never reads.
type syslogReceiver struct {
	recorder
	ln    net.Listener
	stuck bool
	mu    sync.Mutex
	open  []net.Conn
	wg    sync.WaitGroup
}

func serveSyslog(t *testing.T, ln net.Listener, stuck bool) *syslogReceiver {
	t.Helper()
	r := &syslogReceiver{ln: ln, stuck: stuck}
	r.wg.Add(1)
	go r.accept()
	t.Cleanup(func() {
		r.close()
		r.check(t)
	})
	return r
}

func listen(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

func (r *syslogReceiver) url(scheme string) string { return scheme + "://" + r.ln.Addr().String() }

func (r *syslogReceiver) accept() {
	defer r.wg.Done()
	for {
		c, err := r.ln.Accept()
		if err != nil {
			return
		}
		r.mu.Lock()
		r.open = append(r.open, c)
		r.mu.Unlock()
		r.connected(1)
		if !r.stuck {
			r.wg.Add(1)
			go r.read(c)
		}
	}
}

func (r *syslogReceiver) read(c net.Conn) {
	defer r.wg.Done()
	defer r.connected(-1)
	if tc, ok := c.(*tls.Conn); ok && tc.Handshake() != nil {
		return // the client refused our certificate
	}
	br := bufio.NewReader(c)
	for {
		frame, err := readFrame(br)
		if err != nil {
			if err != io.EOF && !errors.Is(err, net.ErrClosed) && !errors.Is(err, syscall.ECONNRESET) {
				r.fail(err)
			}
			return
		}
		m, err := parseMessage(frame, true)
		if err != nil {
			r.fail(err)
			return
		}
		r.add(m)
	}
}

// closeWrite ends the receiver's side of its connections (a TCP FIN, a
// TLS close_notify), as a receiver that is going away does, but goes on
// reading, so no line written before the drain notices is lost.
func (r *syslogReceiver) closeWrite() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, c := range r.open {
		if cw, ok := c.(interface{ CloseWrite() error }); ok {
			cw.CloseWrite()
		}
	}
}

// close stops accepting, closes every connection and waits for the
// receiver's goroutines.
func (r *syslogReceiver) close() {
	r.ln.Close()
	r.mu.Lock()
	for _, c := range r.open {
		c.Close()
	}
	r.mu.Unlock()
	r.wg.Wait()
}

// testCert returns a new CA's pool and a server certificate it signed
// for 127.0.0.1.
func testCert(t *testing.T) (*x509.CertPool, tls.Certificate) {
	t.Helper()
	caKey := newKey(t)
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "drain test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key := newKey(t)
	leaf := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "127.0.0.1"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, leaf, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	return pool, tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

func newKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// httpReceiver is an HTTPS drain endpoint that checks every post strictly
// and answers 500 to the first failFirst posts, or 503 while down.
type httpReceiver struct {
	recorder
	srv        *httptest.Server
	user, pass string
	token      string
	failFirst  int
	down       bool
	posts      []post
}

// post is one request the receiver got.
type post struct {
	id     string
	count  int
	status int
}

var frameIDRE = regexp.MustCompile(`^[0-9A-F]{32}$`)

func serveHTTP(t *testing.T, user, pass, token string) *httpReceiver {
	t.Helper()
	r := &httpReceiver{user: user, pass: pass, token: token}
	r.srv = httptest.NewUnstartedServer(http.HandlerFunc(r.serve))
	r.srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		switch s {
		case http.StateNew:
			r.connected(1)
		case http.StateClosed, http.StateHijacked:
			r.connected(-1)
		}
	}
	r.srv.Config.ErrorLog = log.New(io.Discard, "", 0) // handshakes refused on purpose
	r.srv.StartTLS()
	t.Cleanup(func() {
		r.srv.Close()
		r.check(t)
	})
	return r
}

// url returns the receiver's URL with its credentials and path.
func (r *httpReceiver) url() string {
	return strings.Replace(r.srv.URL, "https://", "https://"+r.user+":"+r.pass+"@", 1) + "/logs"
}

func (r *httpReceiver) pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(r.srv.Certificate())
	return p
}

func (r *httpReceiver) serve(w http.ResponseWriter, req *http.Request) {
	msgs, err := r.parse(req)
	if err != nil {
		r.fail(err)
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	r.recorder.mu.Lock()
	status := http.StatusOK
	switch {
	case r.down:
		status = http.StatusServiceUnavailable
	case r.failFirst > 0:
		r.failFirst--
		status = http.StatusInternalServerError
	default:
		r.msgs = append(r.msgs, msgs...)
	}
	r.posts = append(r.posts, post{id: req.Header.Get("Logplex-Frame-Id"), count: len(msgs), status: status})
	r.recorder.mu.Unlock()
	w.WriteHeader(status)
}

// parse checks a post's method, path, headers and auth, and returns its
// messages.
func (r *httpReceiver) parse(req *http.Request) ([]msg, error) {
	h := req.Header
	user, pass, _ := req.BasicAuth()
	switch {
	case req.Method != http.MethodPost || req.URL.Path != "/logs":
		return nil, fmt.Errorf("%s %s, want POST /logs", req.Method, req.URL.Path)
	case h.Get("Content-Type") != "application/logplex-1":
		return nil, fmt.Errorf("Content-Type %q", h.Get("Content-Type"))
	case !strings.HasPrefix(h.Get("User-Agent"), "Logplex/"):
		return nil, fmt.Errorf("User-Agent %q", h.Get("User-Agent"))
	case h.Get("Logplex-Drain-Token") != r.token:
		return nil, fmt.Errorf("Logplex-Drain-Token %q, want %q", h.Get("Logplex-Drain-Token"), r.token)
	case !frameIDRE.MatchString(h.Get("Logplex-Frame-Id")):
		return nil, fmt.Errorf("Logplex-Frame-Id %q", h.Get("Logplex-Frame-Id"))
	case user != r.user || pass != r.pass:
		return nil, fmt.Errorf("basic auth %q:%q", user, pass)
	}
	body, err := io.ReadAll(req.Body)
	if err != nil {
		return nil, err
	}
	var msgs []msg
	for br := bufio.NewReader(bytes.NewReader(body)); ; {
		frame, err := readFrame(br)
		if err == io.EOF {
			break
		} else if err != nil {
			return nil, err
		}
		m, err := parseMessage(frame, false)
		if err != nil {
			return nil, err
		}
		if m.host != "host" {
			return nil, fmt.Errorf("HOSTNAME %q, want host", m.host)
		}
		msgs = append(msgs, m)
	}
	if n := h.Get("Logplex-Msg-Count"); n != strconv.Itoa(len(msgs)) || len(msgs) > maxBatchLines {
		return nil, fmt.Errorf("Logplex-Msg-Count %s for %d messages", n, len(msgs))
	}
	return msgs, nil
}

func (r *httpReceiver) setDown(down bool) {
	r.recorder.mu.Lock()
	defer r.recorder.mu.Unlock()
	r.down = down
}

func (r *httpReceiver) allPosts() []post {
	r.recorder.mu.Lock()
	defer r.recorder.mu.Unlock()
	return append([]post(nil), r.posts...)
}

// waitFor polls cond until it holds, failing the test after 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}
