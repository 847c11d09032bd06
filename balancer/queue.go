package balancer

import (
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Server maxconn and queueing, after HAProxy 2.6 (src/queue.c and
// assign_server_and_queue in src/backend.c). A server whose maxconn is N
// serves at most N requests at a time; the others wait. A request already
// bound to a server (by its persistence cookie, or by an algorithm that
// does not skip saturated servers) waits in that server's queue; a request
// for which every server was saturated waits in the backend's queue and is
// served by the first eligible server that frees a slot. A server that
// frees a slot serves the oldest waiter of its own queue and of the
// backend's queue. Waiting is bounded by "timeout queue" (defaulting to
// "timeout connect") and by the client going away.
//
// Servers whose maxconn is 0 never touch any of this: the request path for
// them takes no lock and reads no extra atomic.

// slotQueue is a backend's queueing state: its waiters and those of its
// servers, guarded by one mutex. It outlives table swaps with backendLive.
type slotQueue struct {
	mu sync.Mutex
	// waiting is the backend's own queue, oldest first.
	waiting []*slotWaiter
	// seq orders waiters of all queues by arrival.
	seq uint64
	// servers lists the backend's servers as last published, in ID order,
	// for handing backend waiters to servers with free slots.
	servers []*serverLive
	// activeUsable tells whether an active server is usable; backups take
	// backend waiters only when none is.
	activeUsable bool
	// total counts every waiter of the backend and its servers (HAProxy's
	// totpend); max is its highest value.
	total, max atomic.Int64
	// served counts the waiters the backend's queue has given a slot to,
	// for the queue positions the access log shows.
	served uint64
}

// serverSlots is a server's queueing state, guarded by its backend's
// slotQueue mutex except for the atomics, which pickers read without it.
type serverSlots struct {
	// held counts slots taken by requests in flight; it only changes under
	// the backend's slotQueue mutex.
	held atomic.Int64
	// qlen is the length of waiting; qmax its highest value.
	qlen, qmax atomic.Int64
	// waiting is the server's own queue, oldest first.
	waiting []*slotWaiter
	// served counts the waiters this queue has given a slot to.
	served uint64
	// maxConn, usable and backup are the server's settings as last
	// published.
	maxConn int
	usable  bool
	backup  bool
}

// slotWaiter is one request waiting for a slot.
type slotWaiter struct {
	seq uint64
	// granted receives the server whose slot the waiter was given.
	granted chan *serverLive
	// queued is true while the waiter is in a queue (guarded by the mutex).
	queued bool
	srv    *serverLive // the server queue waited in, nil for the backend's
	// mark is the queue's served count when the waiter joined it; pos is
	// set when it is granted a slot: how many waiters the queue served
	// from then on, itself included (HAProxy's %sq or %bq).
	mark, pos uint64
}

// full reports whether a server with the given maxconn is saturated, as
// HAProxy's round-robin and least-connection pickers see it: its queue is
// not empty or every slot is taken.
func (l *serverLive) full(maxConn int) bool {
	return maxConn > 0 && (l.slots.qlen.Load() > 0 || l.slots.held.Load() >= int64(maxConn))
}

// publishQueue brings the queueing state in line with this table and serves
// waiters that a raised maxconn or a newly usable server can now take. It is
// called once the table is published, under the writer lock.
func (be *backendRT) publishQueue() {
	q := &be.live.queue
	q.mu.Lock()
	defer q.mu.Unlock()
	activeUsable := be.usableCount > 0
	if !be.changedAll && activeUsable == q.activeUsable && len(q.servers) == be.servers.Len() {
		// Only the changed servers can have gained room or eligibility.
		for _, i := range be.changed {
			s := be.servers.At(i)
			if q.servers[i] != s.live {
				q.republishLocked(be)
				return
			}
			s.live.slots.maxConn, s.live.slots.usable = s.cfg.MaxConn, s.usable()
		}
		for _, i := range be.changed {
			q.dispatchLocked(q.servers[i])
		}
		return
	}
	q.activeUsable = activeUsable
	q.republishLocked(be)
}

// republishLocked records every server of be and serves what waits.
func (q *slotQueue) republishLocked(be *backendRT) {
	q.servers = q.servers[:0]
	for _, s := range be.servers.All() {
		sl := &s.live.slots
		sl.maxConn, sl.usable, sl.backup = s.cfg.MaxConn, s.usable(), s.cfg.Backup
		q.servers = append(q.servers, s.live)
	}
	for _, l := range q.servers {
		q.dispatchLocked(l)
	}
}

// eligibleLocked reports whether l may serve the backend's queue.
func (q *slotQueue) eligibleLocked(l *serverLive) bool {
	s := &l.slots
	return s.usable && (!s.backup || !q.activeUsable)
}

// hasRoomLocked reports whether l can take one more request now.
func hasRoomLocked(l *serverLive) bool {
	s := &l.slots
	return s.maxConn == 0 || s.held.Load() < int64(s.maxConn)
}

// freeServerLocked returns the first eligible server with a free slot and
// nobody in its own queue, or nil.
func (q *slotQueue) freeServerLocked() *serverLive {
	for _, l := range q.servers {
		if q.eligibleLocked(l) && len(l.slots.waiting) == 0 && hasRoomLocked(l) {
			return l
		}
	}
	return nil
}

// grantLocked takes w out of its queue and gives it a slot of l.
func (q *slotQueue) grantLocked(w *slotWaiter, l *serverLive) {
	served := &q.served
	if w.srv != nil {
		served = &w.srv.slots.served
	}
	*served++
	w.pos = *served - w.mark
	q.removeLocked(w)
	l.slots.held.Add(1)
	w.granted <- l
}

// removeLocked takes w out of the queue it waits in.
func (q *slotQueue) removeLocked(w *slotWaiter) {
	if !w.queued {
		return
	}
	w.queued = false
	q.total.Add(-1)
	if w.srv == nil {
		q.waiting = slices.DeleteFunc(q.waiting, func(o *slotWaiter) bool { return o == w })
		return
	}
	s := &w.srv.slots
	s.waiting = slices.DeleteFunc(s.waiting, func(o *slotWaiter) bool { return o == w })
	s.qlen.Store(int64(len(s.waiting)))
}

// dispatchLocked hands l's free slots to the oldest waiters of its own
// queue and, when l is eligible, of the backend's queue.
func (q *slotQueue) dispatchLocked(l *serverLive) {
	s := &l.slots
	for hasRoomLocked(l) {
		var w *slotWaiter
		if len(s.waiting) > 0 {
			w = s.waiting[0]
		}
		if len(q.waiting) > 0 && q.eligibleLocked(l) && (w == nil || q.waiting[0].seq < w.seq) {
			w = q.waiting[0]
		}
		if w == nil {
			return
		}
		q.grantLocked(w, l)
	}
}

// enqueueLocked adds a waiter to l's queue, or to the backend's when l is
// nil.
func (q *slotQueue) enqueueLocked(l *serverLive) *slotWaiter {
	q.seq++
	w := &slotWaiter{seq: q.seq, granted: make(chan *serverLive, 1), queued: true, srv: l}
	storeMax(&q.max, q.total.Add(1))
	if l == nil {
		w.mark = q.served
		q.waiting = append(q.waiting, w)
		return w
	}
	s := &l.slots
	w.mark = s.served
	s.waiting = append(s.waiting, w)
	n := int64(len(s.waiting))
	s.qlen.Store(n)
	storeMax(&s.qmax, n)
	return w
}

// release gives back a slot of l taken by acquire and serves the next
// waiter.
func (q *slotQueue) release(l *serverLive) {
	q.mu.Lock()
	l.slots.held.Add(-1)
	q.dispatchLocked(l)
	q.mu.Unlock()
}

// queuePos is where a request left a queue, as the access log shows it:
// how many requests the server's or the backend's queue served from the
// moment it joined until it left, itself included; 0 when it did not wait
// in that queue.
type queuePos struct {
	server, backend int64
}

// acquire takes a slot on srv, waiting in its queue when it is saturated,
// or, with srv nil, a slot on whichever server frees one first, waiting in
// the backend's queue. It returns the server whose slot was taken, or nil
// when the wait ended by "timeout queue" or by the client going away.
func (be *backendRT) acquire(r *http.Request, srv *serverRT) *serverRT {
	return be.acquireAt(r, srv, nil)
}

// acquireAt is acquire, recording in pos, when not nil, where the request
// left the queue it waited in.
func (be *backendRT) acquireAt(r *http.Request, srv *serverRT, pos *queuePos) *serverRT {
	q := &be.live.queue
	q.mu.Lock()
	var w *slotWaiter
	if srv != nil {
		l := srv.live
		if len(l.slots.waiting) == 0 && hasRoomLocked(l) {
			l.slots.held.Add(1)
			q.mu.Unlock()
			return srv
		}
		w = q.enqueueLocked(l)
	} else {
		if l := q.freeServerLocked(); l != nil {
			l.slots.held.Add(1)
			q.mu.Unlock()
			return be.grantedServer(l)
		}
		w = q.enqueueLocked(nil)
	}
	q.mu.Unlock()
	got := be.wait(r, w)
	if got != nil && pos != nil {
		// w.pos was written before w was granted, which wait received.
		if w.srv != nil {
			pos.server = int64(w.pos)
		} else {
			pos.backend = int64(w.pos)
		}
	}
	return got
}

// wait blocks until w is granted a slot, "timeout queue" expires or the
// client goes away, and returns the granted server or nil.
func (be *backendRT) wait(r *http.Request, w *slotWaiter) *serverRT {
	q := &be.live.queue

	var expire <-chan time.Time
	if d := orDefault(be.cfg.TimeoutQueue, be.cfg.TimeoutConnect); d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		expire = t.C
	}
	var l *serverLive
	select {
	case l = <-w.granted:
	case <-expire:
	case <-r.Context().Done():
	}
	if l == nil {
		q.mu.Lock()
		if w.queued {
			q.removeLocked(w)
			q.mu.Unlock()
			return nil
		}
		q.mu.Unlock()
		// Granted while giving up: use the slot unless the client left.
		l = <-w.granted
		if r.Context().Err() != nil {
			q.release(l)
			return nil
		}
	}
	return be.grantedServer(l)
}

// grantedServer maps the server whose slot was taken to this table's
// server. A server added since the request's table was loaded is not in
// it: the slot is given back and nil returned.
func (be *backendRT) grantedServer(l *serverLive) *serverRT {
	if s := be.serverOfLive(l); s != nil {
		return s
	}
	be.live.queue.release(l)
	return nil
}
