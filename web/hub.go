package web

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"tether/balancer"
)

const (
	writeWait    = 10 * time.Second // a write that takes longer drops the client
	pongWait     = 60 * time.Second // a client silent this long is gone
	pingInterval = 25 * time.Second
	maxEvents    = 50 // events carried by one message at most
)

// Hub streams live state to every open console over websockets: a full
// snapshot on connect, then diffs batched at most once per Options.Batch,
// and a heartbeat with the data's age once per Options.Sample when nothing
// changed. Each client has a bounded queue and one writer goroutine; a
// client whose queue is full is dropped and never slows the others. A Hub
// is safe for concurrent use.
type Hub struct {
	log      *slog.Logger
	bal      Balancer
	stats    *sampler
	opts     Options
	build    func(snap *balancer.Snapshot, now time.Time, prev model, sample bool) model
	after    func(*balancer.Snapshot, time.Time) []wsEvent
	live     func(context.Context, sessionOwner) bool
	upgrader websocket.Upgrader
	writers  sync.WaitGroup
	dropped  atomic.Int64

	mu      sync.Mutex
	clients map[*client]struct{}
	cur     model
	version uint64
	at      time.Time
	seq     uint64
	full    [2][]byte // encoded full state for viewers [0] and others [1], valid for fullSeq
	fullSeq uint64
	closed  bool
}

// client is one websocket connection.
type client struct {
	conn      *websocket.Conn
	send      chan []byte
	done      chan struct{}
	once      sync.Once
	sensitive bool
	// owner is the signed-in user and session the connection was opened
	// with; revocation closes the connection by either.
	owner sessionOwner
	// code and reason go in the close frame; set before done is closed.
	code   int
	reason string
}

// sessionOwner names the user and session behind a websocket.
type sessionOwner struct {
	user    string // the stored user name
	session string // the session token
}

// CloseSessionEnded is the websocket close code sent when the connection's
// session ended (logout, a role or password change, a deleted user); the
// page then goes to the sign-in page instead of reconnecting.
const CloseSessionEnded = 4001

// wsMessage is what the hub sends. Type is "full" (Cells holds every
// entity), "diff" (only changed fields) or "hb" (nothing changed).
type wsMessage struct {
	Type    string    `json:"t"`
	Seq     uint64    `json:"seq"`
	Version uint64    `json:"v"`
	At      int64     `json:"at"` // Unix milliseconds of the data
	Cells   model     `json:"e,omitempty"`
	Struct  bool      `json:"struct,omitempty"`
	Events  []wsEvent `json:"ev,omitempty"`
}

// wsEvent is a balancer event as the page shows it.
type wsEvent struct {
	Kind    string `json:"k"` // "change", "health" or "warning"
	Time    int64  `json:"time"`
	Backend string `json:"b,omitempty"`
	Server  string `json:"s,omitempty"`
	Message string `json:"msg,omitempty"`
	Actor   string `json:"actor,omitempty"`
	Channel string `json:"ch,omitempty"`
	Command string `json:"cmd,omitempty"`
}

// newHub builds a hub; after, when not nil, runs after each counter sample
// and the notices it returns go to every page with that update. live, when
// not nil, is asked every
// Options.SessionCheck whether each connection's session still exists, so
// sessions ended elsewhere (another process, expiry) lose their websockets
// too.
func newHub(log *slog.Logger, bal Balancer, stats *sampler, opts Options,
	build func(*balancer.Snapshot, time.Time, model, bool) model, after func(*balancer.Snapshot, time.Time) []wsEvent,
	originOK func(*http.Request) bool, live func(context.Context, sessionOwner) bool) *Hub {
	return &Hub{
		log: log, bal: bal, stats: stats, opts: opts, build: build, after: after, live: live,
		clients: make(map[*client]struct{}),
		cur:     model{},
		upgrader: websocket.Upgrader{
			ReadBufferSize:  1024,
			WriteBufferSize: 8192,
			WriteBufferPool: &sync.Pool{},
			CheckOrigin:     originOK,
		},
	}
}

// Run publishes updates until ctx is done, then closes every connection
// and waits for their writers to finish.
func (h *Hub) Run(ctx context.Context) error {
	events, cancel := h.bal.Subscribe(1024)
	defer cancel()
	tick := time.NewTicker(h.opts.Batch)
	defer tick.Stop()
	check := time.NewTicker(h.opts.SessionCheck)
	defer check.Stop()
	now := h.opts.Now()
	h.publish(now, true, nil)
	lastSample := now
	var pending []balancer.Event
	dirty := false
	for {
		select {
		case <-ctx.Done():
			h.closeAll()
			h.writers.Wait()
			return nil
		case ev, ok := <-events:
			if !ok {
				events = nil
				continue
			}
			dirty = true
			if len(pending) < maxEvents {
				pending = append(pending, ev)
			}
		case <-check.C:
			h.checkSessions(ctx)
		case <-tick.C:
			now := h.opts.Now()
			sample := now.Sub(lastSample) >= h.opts.Sample
			if !sample && !dirty {
				continue
			}
			h.publish(now, sample, pending)
			pending, dirty = nil, false
			if sample {
				lastSample = now
			}
		}
	}
}

// publish takes a snapshot, samples counters when sample is set, and sends
// every client what changed. Only Run calls it.
func (h *Hub) publish(now time.Time, sample bool, evs []balancer.Event) {
	snap := h.bal.Snapshot()
	for _, ev := range evs {
		if cc, ok := ev.Change.(balancer.ClearCounters); ok {
			h.stats.clearMax(cc.Backend)
		}
	}
	var notices []wsEvent
	if sample {
		h.stats.sample(snap, now)
		if h.after != nil {
			notices = h.after(snap, now)
		}
	}
	next := h.build(snap, now, h.cur, sample)
	changed, structural := diffModels(h.cur, next)
	at := snap.Taken
	if at.IsZero() {
		at = now
	}
	msg := wsMessage{Type: "diff", Version: snap.Version, At: at.UnixMilli(), Struct: structural}
	for _, ev := range evs {
		msg.Events = append(msg.Events, toWSEvent(ev))
	}
	msg.Events = append(msg.Events, notices...)
	if len(changed) == 0 && len(msg.Events) == 0 && !structural {
		if !sample {
			h.mu.Lock()
			h.cur, h.version, h.at = next, snap.Version, at
			h.mu.Unlock()
			return
		}
		msg.Type = "hb"
	}
	var enc [2][]byte
	for i, sensitive := range []bool{false, true} {
		m := msg
		if len(changed) > 0 {
			m.Cells = forClient(changed, sensitive)
		}
		h.mu.Lock()
		m.Seq = h.seq + 1
		h.mu.Unlock()
		b, err := json.Marshal(m)
		if err != nil {
			h.log.Error("encode live update", "error", err)
			return
		}
		enc[i] = b
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.seq++
	h.cur, h.version, h.at = next, snap.Version, at
	for c := range h.clients {
		b := enc[0]
		if c.sensitive {
			b = enc[1]
		}
		h.sendLocked(c, b)
	}
}

func toWSEvent(ev balancer.Event) wsEvent {
	w := wsEvent{Time: ev.Time.UnixMilli(), Backend: ev.Backend, Server: ev.Server, Message: ev.Message,
		Actor: ev.Origin.Actor, Channel: ev.Origin.Channel, Command: ev.Origin.Command}
	switch ev.Kind {
	case balancer.EventHealth:
		w.Kind = "health"
	case balancer.EventWarning:
		w.Kind = "warning"
	default:
		w.Kind = "change"
	}
	return w
}

// sendLocked queues b for c without blocking; a full queue drops c.
// h.mu is held.
func (h *Hub) sendLocked(c *client, b []byte) {
	select {
	case c.send <- b:
	default:
		h.dropLocked(c, "too slow")
	}
}

func (h *Hub) dropLocked(c *client, why string) {
	if _, ok := h.clients[c]; !ok {
		return
	}
	delete(h.clients, c)
	if c.code == 0 {
		c.code = websocket.CloseGoingAway
	}
	c.once.Do(func() { close(c.done) })
	if why != "" {
		h.dropped.Add(1)
		h.log.Info("websocket client dropped", "reason", why, "remote", c.conn.RemoteAddr().String())
	}
}

func (h *Hub) drop(c *client, why string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.dropLocked(c, why)
}

// fullLocked returns the encoded full state for a new client. h.mu is held.
func (h *Hub) fullLocked(sensitive bool) []byte {
	i := 0
	if sensitive {
		i = 1
	}
	if h.full[i] == nil || h.fullSeq != h.seq {
		if h.fullSeq != h.seq {
			h.full = [2][]byte{}
		}
		m := wsMessage{Type: "full", Seq: h.seq, Version: h.version, At: h.at.UnixMilli(), Cells: forClient(h.cur, sensitive)}
		b, err := json.Marshal(m)
		if err != nil {
			h.log.Error("encode full state", "error", err)
			return nil
		}
		h.full[i], h.fullSeq = b, h.seq
	}
	return h.full[i]
}

// serveWS upgrades the request (the upgrader checks its Origin), sends the
// full state, and keeps the connection until either side ends it.
// sensitive says whether the user may see addresses and cookie values;
// owner is who opened it.
func (h *Hub) serveWS(w http.ResponseWriter, r *http.Request, sensitive bool, owner sessionOwner) {
	conn, err := h.upgrader.Upgrade(w, r, nil)
	if err != nil {
		h.log.Info("websocket upgrade refused", "remote", r.RemoteAddr, "origin", r.Header.Get("Origin"), "error", err)
		return
	}
	c := &client{conn: conn, send: make(chan []byte, h.opts.ClientBuffer), done: make(chan struct{}), sensitive: sensitive, owner: owner}
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		_ = conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseGoingAway, "shutting down"), time.Now().Add(time.Second))
		conn.Close()
		return
	}
	full := h.fullLocked(sensitive)
	c.send <- full
	h.clients[c] = struct{}{}
	h.writers.Add(1)
	h.mu.Unlock()
	go h.writer(c)
	h.reader(c)
}

// writer is the only goroutine writing to c's connection.
func (h *Hub) writer(c *client) {
	defer h.writers.Done()
	defer c.conn.Close()
	ping := time.NewTicker(pingInterval)
	defer ping.Stop()
	for {
		select {
		case b := <-c.send:
			_ = c.conn.SetWriteDeadline(time.Now().Add(writeWait))
			if err := c.conn.WriteMessage(websocket.TextMessage, b); err != nil {
				h.drop(c, "")
				return
			}
		case <-ping.C:
			if err := c.conn.WriteControl(websocket.PingMessage, nil, time.Now().Add(writeWait)); err != nil {
				h.drop(c, "")
				return
			}
		case <-c.done:
			_ = c.conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(c.code, c.reason), time.Now().Add(time.Second))
			return
		}
	}
}

// reader discards what the browser sends and notices when it goes away.
func (h *Hub) reader(c *client) {
	c.conn.SetReadLimit(512)
	_ = c.conn.SetReadDeadline(time.Now().Add(pongWait))
	c.conn.SetPongHandler(func(string) error {
		return c.conn.SetReadDeadline(time.Now().Add(pongWait))
	})
	for {
		if _, _, err := c.conn.ReadMessage(); err != nil {
			break
		}
	}
	h.drop(c, "")
}

// closeAll ends every connection and refuses new ones.
func (h *Hub) closeAll() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closed = true
	for c := range h.clients {
		h.dropLocked(c, "")
	}
}

// endSessions closes, with CloseSessionEnded and reason, every connection
// whose owner matches, and returns how many it closed.
func (h *Hub) endSessions(match func(sessionOwner) bool, reason string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for c := range h.clients {
		if match(c.owner) {
			c.code, c.reason = CloseSessionEnded, reason
			h.dropLocked(c, "")
			n++
		}
	}
	if n > 0 {
		h.log.Info("websockets closed", "count", n, "reason", reason)
	}
	return n
}

// checkSessions closes the connections whose session no longer exists.
func (h *Hub) checkSessions(ctx context.Context) {
	if h.live == nil {
		return
	}
	for _, o := range h.owners() {
		if !h.live(ctx, o) {
			h.endSessions(func(x sessionOwner) bool { return x == o }, "session ended")
		}
	}
}

// owners returns the owners of the open connections, once each.
func (h *Hub) owners() []sessionOwner {
	h.mu.Lock()
	defer h.mu.Unlock()
	seen := make(map[sessionOwner]bool, len(h.clients))
	var out []sessionOwner
	for c := range h.clients {
		if !seen[c.owner] {
			seen[c.owner] = true
			out = append(out, c.owner)
		}
	}
	return out
}

// Clients returns the number of connected consoles.
func (h *Hub) Clients() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.clients)
}

// Dropped returns how many clients were dropped for being too slow.
func (h *Hub) Dropped() int64 { return h.dropped.Load() }
