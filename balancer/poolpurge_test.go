package balancer

import (
	"bufio"
	"net"
	"slices"
	"strings"
	"testing"
	"time"
)

// closeRecorder is a net.Conn that only records being closed.
type closeRecorder struct {
	net.Conn
	closed bool
}

func (c *closeRecorder) Close() error                      { c.closed = true; return nil }
func (c *closeRecorder) SetReadDeadline(t time.Time) error { return nil }

// TestPoolPurgeFollowsHAProxy checks the idle connections a burst leaves:
// kept while the estimate of the server's need still covers them, then
// half the excess closed each period, least recently used first, and
// connections in use never touched.
func TestPoolPurgeFollowsHAProxy(t *testing.T) {
	p := newConnPool("127.0.0.1:1", 0, 0)
	var conns []*upConn
	var socks []*closeRecorder
	for range 8 {
		rec := &closeRecorder{}
		c := &upConn{pool: p, nc: rec, br: bufio.NewReader(strings.NewReader(""))}
		socks, conns = append(socks, rec), append(conns, c)
		p.mu.Lock()
		p.addActive(c)
		p.mu.Unlock()
	}
	// The burst ends: every connection goes idle, conns[0] first.
	for _, c := range conns {
		p.put(c)
	}
	// One request in flight through the purges below.
	p.mu.Lock()
	busy := p.idle[len(p.idle)-1]
	p.idle = p.idle[:len(p.idle)-1]
	p.addActive(busy)
	p.mu.Unlock()

	// The need estimated from the burst, 8, decays to 4, 2, 1 (the one in
	// use): the idle count follows HAProxy's srv_cleanup_idle_conns.
	for i, want := range []int{7, 7, 5, 3, 1, 0, 0} {
		p.purge()
		p.mu.Lock()
		idle := len(p.idle)
		p.mu.Unlock()
		if idle != want {
			t.Fatalf("after purge %d: %d idle, want %d", i+1, idle, want)
		}
		if i == 2 {
			// The first two closed are the two idle the longest.
			if got := closedOnes(socks); !slices.Equal(got, []int{0, 1}) {
				t.Errorf("closed connections %v, want the least recently used [0 1]", got)
			}
		}
	}
	if got := closedOnes(socks); !slices.Equal(got, []int{0, 1, 2, 3, 4, 5, 6}) {
		t.Errorf("closed connections %v, want every idle one", got)
	}
	if busy != conns[7] || socks[7].closed {
		t.Error("the connection in use was closed")
	}
}

// closedOnes returns the indexes of the closed connections.
func closedOnes(socks []*closeRecorder) []int {
	var closed []int
	for i, s := range socks {
		if s.closed {
			closed = append(closed, i)
		}
	}
	return closed
}
