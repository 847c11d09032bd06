// Package web is Tether's browser console: the chi router, the pages, the
// actions (each one a Runtime API command sent through the dispatcher),
// authentication and roles, cross-origin protection, the websocket hub that
// streams live state to every open page, and /metrics.
package web

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"tether/balancer"
	"tether/balancer/runtimeapi"
	"tether/balancer/tlsbind"
	"tether/store"
	"tether/templates"
)

// Balancer is what the console reads from the balancer.
// *balancer.Balancer satisfies it.
type Balancer interface {
	Snapshot() *balancer.Snapshot
	Subscribe(buffer int) (<-chan balancer.Event, func())
	// PreviewCookie returns the dynamic cookie a server of backend would
	// get at addr and port, for the change-address preview.
	PreviewCookie(backend string, addr netip.Addr, port int) (string, error)
	// Explain tells what a request carrying cookieHeader gets from backend's
	// cookie persistence at now, for the cookie inspector.
	Explain(backend, cookieHeader string, now time.Time) (balancer.Explanation, error)
}

// Dispatcher runs one Runtime API command at an access level and says
// whether it succeeded, with HAProxy's reply. The runtime API dispatcher
// satisfies it.
type Dispatcher interface {
	Run(ctx context.Context, c runtimeapi.Command, level balancer.Level, origin balancer.Origin) runtimeapi.Result
}

// Sessions authenticates users and keeps their console sessions.
type Sessions interface {
	Authenticate(ctx context.Context, name, password string) (store.User, error)
	CreateSession(ctx context.Context, userID int64, ttl time.Duration) (string, error)
	SessionUser(ctx context.Context, token string) (store.User, error)
	DeleteSession(ctx context.Context, token string) error
}

// Users manages console users.
type Users interface {
	ListUsers(ctx context.Context) ([]store.User, error)
	CreateUser(ctx context.Context, name, password, role string) (store.User, error)
	SetUserRole(ctx context.Context, name, role string) error
	SetUserPassword(ctx context.Context, name, password string) error
	DeleteUser(ctx context.Context, name string) error
}

// AuditLog lists audit entries and records the console's own: sign-ins,
// failed sign-ins and cleared lockouts.
type AuditLog interface {
	ListAudit(ctx context.Context, f store.AuditFilter) ([]store.AuditEntry, error)
	AppendAudit(ctx context.Context, e store.AuditEntry) error
}

// Deps are the console's dependencies. *store.Store satisfies Sessions,
// Users, AuditLog and HistoryStore.
type Deps struct {
	Balancer Balancer
	Runtime  Dispatcher
	Sessions Sessions
	Users    Users
	Audit    AuditLog
	// History, when set, records per-server minute history and serves the
	// history charts; nil means no history beyond the last 15 minutes.
	History HistoryStore
	// Fleet, when set, is the registry of the nodes sharing the database:
	// the console then shows them and sums their counters. nil for a
	// single node.
	Fleet Fleet
	// Certificates, when set, returns the certificates of the running
	// TLS binds, which the overview lists and its form replaces.
	Certificates func() *tlsbind.Store
}

// Options tune the console; the zero value is usable.
type Options struct {
	// SecureCookies marks the session cookie Secure even on plain HTTP
	// requests (behind a TLS-terminating proxy). Requests over TLS always
	// get Secure cookies.
	SecureCookies bool
	// SessionTTL is how long a login lasts; 0 means 12 hours.
	SessionTTL time.Duration
	// TrustedOrigins are extra origins ("https://console.example.com")
	// allowed to post forms and open websockets.
	TrustedOrigins []string
	// Socat is the Runtime API address shown in "copy as socat command":
	// a UNIX socket path or a socat address such as "tcp:127.0.0.1:9999".
	Socat string
	// Batch is the shortest interval between two live updates; 0 means
	// 250ms (at most four per second).
	Batch time.Duration
	// Sample is the interval at which counters are sampled and rates
	// computed; 0 means one second.
	Sample time.Duration
	// SessionCheck is how often open websockets are checked against their
	// sessions, to close those whose session ended outside this console
	// (another process, expiry); 0 means 5 seconds. Changes made through
	// the console close them at once.
	SessionCheck time.Duration
	// ClientBuffer is the number of messages queued per websocket client
	// before the client is dropped as too slow; 0 means 64.
	ClientBuffer int
	// MetricsToken, when set, is the bearer token /metrics requires
	// ("Authorization: Bearer TOKEN"); Prometheus sends it with
	// authorization: {credentials: TOKEN} in its scrape config.
	MetricsToken string
	// MetricsHosts, when set, are the only Host names (without port) on
	// which /metrics answers, e.g. "localhost" and "127.0.0.1".
	MetricsHosts []string
	// LoginHashers is how many sign-ins may check a password at once; a
	// sign-in that finds them all busy is refused with 429. 0 means half
	// of GOMAXPROCS, at least one.
	LoginHashers int
	// LoginCPUShare is the share of one CPU that password checks may use
	// over time (argon2id is expensive by design; a flood of sign-ins from
	// many addresses must leave the CPU to the proxy). Sign-ins beyond it
	// are refused with 429, except from addresses that signed in within
	// the last day. 0 means 0.02 (a check takes some 35ms of one CPU, and
	// its 19 MiB of memory traffic slows the other CPUs too); a negative
	// value means no limit.
	LoginCPUShare float64
	// HistoryRetention is how long per-server minute history is kept;
	// 0 means 24 hours.
	HistoryRetention time.Duration
	// HistorySample is how often counters are read for the history; 0
	// means 5 seconds.
	HistorySample time.Duration
	// HistoryFlush is how often the history gathered is written; 0 means
	// one minute.
	HistoryFlush time.Duration
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
	// NodeName is this node's name in the fleet.
	NodeName string
	// FleetPoll is how often the fleet's registry is read; 0 means one
	// second.
	FleetPoll time.Duration
	// FleetLostAfter is how long a node may miss heartbeats before it
	// shows as lost and its counters leave the sums; 0 means 6 seconds.
	FleetLostAfter time.Duration
}

func (o Options) withDefaults() Options {
	if o.SessionTTL <= 0 {
		o.SessionTTL = 12 * time.Hour
	}
	if o.Batch <= 0 {
		o.Batch = 250 * time.Millisecond
	}
	if o.Sample <= 0 {
		o.Sample = time.Second
	}
	if o.SessionCheck <= 0 {
		o.SessionCheck = 5 * time.Second
	}
	if o.ClientBuffer <= 0 {
		o.ClientBuffer = 64
	}
	if o.LoginHashers <= 0 {
		o.LoginHashers = max(runtime.GOMAXPROCS(0)/2, 1)
	}
	if o.LoginCPUShare == 0 {
		o.LoginCPUShare = 0.02
	}
	if o.HistoryRetention <= 0 {
		o.HistoryRetention = 24 * time.Hour
	}
	if o.HistorySample <= 0 {
		o.HistorySample = 5 * time.Second
	}
	if o.HistoryFlush <= 0 {
		o.HistoryFlush = time.Minute
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.FleetPoll <= 0 {
		o.FleetPoll = time.Second
	}
	if o.FleetLostAfter <= 0 {
		o.FleetLostAfter = 6 * time.Second
	}
	return o
}

// Server is the console's http.Handler. Run must be running for live
// updates, rates and "maintenance when idle". A Server is safe for
// concurrent use.
type Server struct {
	log   *slog.Logger
	deps  Deps
	opts  Options
	hub   *Hub
	stats *sampler
	// rec records history; nil without Deps.History.
	rec    *recorder
	drains *drainWatches
	gate   *loginGate
	// busyPage is the sign-in page saying the hashing slots or budget are
	// taken, rendered once: the common answer to a flood.
	busyPage []byte
	metrics  *prometheus.Registry
	cop      *http.CrossOriginProtection
	router   http.Handler
	// fleet is the fleet as last read; nil until read or outside a fleet.
	fleet atomic.Pointer[fleetView]
}

// NewServer builds the console. Every field of deps but History and
// Certificates must be set.
func NewServer(log *slog.Logger, deps Deps, opts Options) *Server {
	opts = opts.withDefaults()
	log = log.With("component", "web")
	s := &Server{
		log:    log,
		deps:   deps,
		opts:   opts,
		stats:  newSampler(),
		drains: newDrainWatches(),
		gate:   newLoginGate(opts.LoginHashers, opts.LoginCPUShare),
	}
	s.hub = newHub(log.With("component", "hub"), deps.Balancer, s.stats, opts,
		func(snap *balancer.Snapshot, now time.Time, prev model, sample bool) model {
			return s.buildModel(snap, viewer{perms: templates.Perms{Admin: true, Operator: true, Sensitive: true}, now: now}, prev, sample)
		},
		s.afterSample, s.sameOrigin, s.sessionLive)
	if deps.History != nil {
		s.rec = newRecorder(log.With("component", "history"), deps.Balancer, deps.History, opts)
	}
	s.metrics = newMetricsRegistry(log, deps.Balancer)
	s.cop = http.NewCrossOriginProtection()
	for _, o := range opts.TrustedOrigins {
		if err := s.cop.AddTrustedOrigin(o); err != nil {
			log.Warn("ignoring trusted origin", "origin", o, "error", err)
		}
	}
	s.cop.SetDenyHandler(http.HandlerFunc(s.denyCrossOrigin))
	var busy bytes.Buffer
	page := templates.Page{Title: "Sign in", Socat: opts.Socat}
	if err := templates.LoginView(page, templates.LoginPage{Next: "/", Error: refusedBusy.message(0)}).Render(context.Background(), &busy); err != nil {
		log.Error("render the busy sign-in page", "error", err)
	}
	s.busyPage = busy.Bytes()
	s.router = s.routes()
	return s
}

// ServeHTTP serves the console.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.router.ServeHTTP(w, r)
}

// Run samples counters, publishes live updates, records history and runs
// "maintenance when idle" watches until ctx is done; it then closes every
// websocket connection (http.Server.Shutdown does not close hijacked
// connections) and writes the history not yet written.
func (s *Server) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	if s.rec != nil {
		wg.Go(func() { s.rec.Run(ctx) })
	}
	if s.deps.Fleet != nil {
		wg.Go(func() { s.watchFleet(ctx) })
	}
	return s.hub.Run(ctx)
}

// sessionLive reports whether o's session still exists for its user; a
// failed check keeps the connection (the next check tries again).
func (s *Server) sessionLive(ctx context.Context, o sessionOwner) bool {
	if o.session == "" {
		return true
	}
	u, err := s.deps.Sessions.SessionUser(ctx, o.session)
	if err != nil {
		if !errors.Is(err, store.ErrNotFound) {
			s.log.Warn("check websocket session", "user", o.user, "error", err)
			return true
		}
		return false
	}
	return u.Name == o.user
}

// endUserSessions closes the open websockets of the named user (stored or
// canonical name); the store ends the sessions themselves.
func (s *Server) endUserSessions(name, reason string) {
	canon, _ := store.CanonicalUserName(name)
	s.hub.endSessions(func(o sessionOwner) bool { return o.user == name || o.user == canon }, reason)
}

// Hub returns the server's websocket hub.
func (s *Server) Hub() *Hub { return s.hub }

// sameOrigin reports whether a websocket request comes from a page of this
// console (its Origin names the host the request was sent to) or from a
// trusted origin. A request without Origin is refused: browsers always send
// it on websockets.
func (s *Server) sameOrigin(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return false
	}
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" {
		return false
	}
	if strings.EqualFold(u.Host, r.Host) {
		return true
	}
	for _, t := range s.opts.TrustedOrigins {
		if strings.EqualFold(strings.TrimSuffix(t, "/"), origin) {
			return true
		}
	}
	return false
}
