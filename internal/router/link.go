package router

import (
	"bufio"
	"context"
	"sync"
	"time"
)

// A link is one keep-alive connection from the fast path (fast.go) to a
// dyno, with its buffers. Each endpoint keeps its idle links in its own
// pool, beside the Transport that the net/http path uses, for the same
// reasons: a dyno's connections never go to a process that reuses its
// address, and they are closed when it leaves the table.
type link struct {
	dc        *dynoConn
	br        *bufio.Reader
	bw        *bufio.Writer
	idleSince time.Time
}

const (
	linkReadBuffer  = 8 << 10
	linkWriteBuffer = 4 << 10
	maxIdleLinks    = 64               // per dyno, as the Transport keeps
	linkIdleTimeout = 30 * time.Second // as the Transport's IdleConnTimeout
)

func (l *link) close() { l.dc.Close() }

// linkPool holds an endpoint's idle links, the most recently used on top:
// the warmest connection goes first and the oldest age out.
type linkPool struct {
	mu   sync.Mutex
	idle []*link
}

// get returns an idle link, or nil when there is none. Links idle past
// linkIdleTimeout are closed on the way.
func (p *linkPool) get(now time.Time) *link {
	p.mu.Lock()
	defer p.mu.Unlock()
	for n := len(p.idle); n > 0; n = len(p.idle) {
		l := p.idle[n-1]
		p.idle[n-1] = nil
		p.idle = p.idle[:n-1]
		if now.Sub(l.idleSince) < linkIdleTimeout {
			return l
		}
		l.close()
	}
	return nil
}

// put returns a link whose response was read to its end.
func (p *linkPool) put(l *link, now time.Time) {
	l.idleSince = now
	p.mu.Lock()
	if len(p.idle) < maxIdleLinks {
		p.idle = append(p.idle, l)
		l = nil
	}
	p.mu.Unlock()
	if l != nil {
		l.close()
	}
}

func (p *linkPool) closeIdle() {
	p.mu.Lock()
	idle := p.idle
	p.idle = nil
	p.mu.Unlock()
	for _, l := range idle {
		l.close()
	}
}

// dialLink connects a new link to ep. Its errors are dialErrors.
func (r *Router) dialLink(ep *endpoint) (*link, error) {
	c, err := r.dial(context.Background(), ep) // bounded by ConnectTimeout
	if err != nil {
		return nil, err
	}
	dc := c.(*dynoConn)
	return &link{dc: dc, br: bufio.NewReaderSize(dc, linkReadBuffer), bw: bufio.NewWriterSize(dc, linkWriteBuffer)}, nil
}
