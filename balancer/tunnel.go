package balancer

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"time"
)

// tunnelTimeouts are the inactivity timeouts of a tunnel's two sides: the
// timeout while both sides are open, and the one once the proxy passed the
// other side's FIN on to that side (timeout client-fin / server-fin). 0
// means none.
type tunnelTimeouts struct {
	client, clientFin, server, serverFin time.Duration
}

// tunnelTimeoutsFor applies HAProxy's rules: timeout tunnel, when set,
// replaces timeout client and timeout server; the fin timeouts default to
// the side's timeout.
func tunnelTimeoutsFor(fe Frontend, be Backend) tunnelTimeouts {
	t := tunnelTimeouts{client: fe.TimeoutClient, server: be.TimeoutServer}
	if be.TimeoutTunnel > 0 {
		t.client, t.server = be.TimeoutTunnel, be.TimeoutTunnel
	}
	t.clientFin = orDefault(fe.TimeoutClientFin, t.client)
	t.serverFin = orDefault(be.TimeoutServerFin, t.server)
	return t
}

// tunnelSide is one connection of a tunnel.
type tunnelSide struct {
	conn net.Conn
	// timeout is the side's current inactivity timeout in nanoseconds,
	// fin the one once the side was shut for writing; 0 means none.
	timeout atomic.Int64
	fin     time.Duration
	// last is when the side last read or wrote, in unix nanoseconds.
	last atomic.Int64
	// endsTunnel closes the side once it sent its FIN, before the FIN
	// is passed on: the server's side, whose end ends the tunnel.
	endsTunnel bool
}

func newTunnelSide(c net.Conn, timeout, fin time.Duration) *tunnelSide {
	s := &tunnelSide{conn: c, fin: fin}
	s.timeout.Store(int64(timeout))
	s.last.Store(time.Now().UnixNano())
	return s
}

// touch records activity on the side.
func (s *tunnelSide) touch() { s.last.Store(time.Now().UnixNano()) }

// deadline returns when the side expires without further activity, or
// the zero time without a timeout.
func (s *tunnelSide) deadline() time.Time {
	t := time.Duration(s.timeout.Load())
	if t <= 0 {
		return time.Time{}
	}
	return time.Unix(0, s.last.Load()).Add(t)
}

// write writes p, which must complete within the side's timeout.
func (s *tunnelSide) write(p []byte) error {
	if t := time.Duration(s.timeout.Load()); t > 0 {
		s.conn.SetWriteDeadline(time.Now().Add(t))
	} else {
		s.conn.SetWriteDeadline(time.Time{})
	}
	_, err := s.conn.Write(p)
	if err == nil {
		s.touch()
	}
	return err
}

// closeWrite half-closes the side's connection after its peer sent FIN.
func (s *tunnelSide) closeWrite() {
	if cw, ok := s.conn.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
		return
	}
	s.conn.Close()
}

// pipe copies src to dst until src ends or either side fails or stays
// inactive longer than its timeout: a read or write on a side is activity
// of that side, whichever direction it serves. It returns the bytes copied
// and nil when src ended cleanly.
func pipe(dst, src *tunnelSide, pending []byte) (int64, error) {
	buf := copyBuffers.Get().(*[]byte)
	defer copyBuffers.Put(buf)
	var total int64
	if len(pending) > 0 {
		// Bytes read along with the HTTP exchange go first.
		if err := dst.write(pending); err != nil {
			return total, err
		}
		total += int64(len(pending))
	}
	for {
		d := src.deadline()
		src.conn.SetReadDeadline(d)
		if nd := src.deadline(); !nd.Equal(d) {
			// The other direction changed it meanwhile (a half-close
			// shortens it): the later value wins.
			src.conn.SetReadDeadline(nd)
		}
		n, err := src.conn.Read(*buf)
		if n > 0 {
			src.touch()
			if werr := dst.write((*buf)[:n]); werr != nil {
				return total, werr
			}
			total += int64(n)
		}
		switch {
		case err == nil:
		case errors.Is(err, io.EOF):
			// src half-closed: pass the FIN on. dst, now expected to finish,
			// has its fin timeout from now on, as HAProxy gives a side it
			// shut for writing.
			if src.endsTunnel {
				src.conn.Close()
			}
			dst.closeWrite()
			dst.touch()
			dst.timeout.Store(int64(dst.fin))
			dst.conn.SetReadDeadline(dst.deadline())
			return total, nil
		case isTimeout(err) && time.Now().Before(src.deadline()):
			// The side was active in the other direction meanwhile.
		default:
			return total, err
		}
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// tunnel takes over the client connection after a 101 answer: it sends
// the response head, then copies bytes both ways until the server's side
// ends, or a side fails or stays inactive too long. It returns the bytes sent to
// the server and to the client, and an error when the client connection
// could not be taken over (nothing was sent to the client then). The
// caller closes up.
func tunnel(w http.ResponseWriter, up *upConn, resp upstreamResponse, hdr http.Header, to tunnelTimeouts) (in, out int64, err error) {
	cc, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return 0, 0, err
	}
	defer cc.Close()
	client := newTunnelSide(cc, to.client, to.clientFin)
	server := newTunnelSide(up.nc, to.server, to.serverFin)
	server.endsTunnel = true

	var head bytes.Buffer
	head.WriteString("HTTP/1.1 101 Switching Protocols\r\n")
	hdr.Write(&head)
	head.WriteString("Connection: Upgrade\r\n")
	if resp.upgrade != "" {
		head.WriteString("Upgrade: " + resp.upgrade + "\r\n")
	}
	head.WriteString("\r\n")
	if err := client.write(head.Bytes()); err != nil {
		return 0, 0, nil
	}
	fromClient, fromServer := pending(brw.Reader), pending(up.br)
	done := make(chan int64, 1)
	go func() {
		n, err := pipe(server, client, fromClient)
		if err != nil {
			// Unblock the other direction.
			cc.Close()
			up.nc.Close()
		}
		done <- n
	}()
	// The server's side ending, by a close or a half-close, ends the
	// tunnel once its bytes reached the client, as in HAProxy 2.6: the
	// server connection closes, the client gets the FIN, then the client
	// connection closes.
	out, _ = pipe(client, server, fromServer)
	cc.Close()
	up.nc.Close()
	return <-done, out, nil
}

// pending returns a copy of the bytes br holds already.
func pending(br *bufio.Reader) []byte {
	n := br.Buffered()
	if n == 0 {
		return nil
	}
	b, _ := br.Peek(n)
	return bytes.Clone(b)
}
