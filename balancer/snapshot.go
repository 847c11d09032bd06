package balancer

import (
	"strconv"
	"time"
)

// Snapshot is a consistent, read-only view of a balancer: configuration,
// server states and counters at one moment. Counters are read from atomics
// one by one, so two counters may be a few requests apart.
type Snapshot struct {
	// Version increases with every applied change and health transition.
	Version   uint64
	Started   time.Time
	Taken     time.Time
	Frontends []FrontendStatus
	Backends  []BackendStatus
}

// Backend returns the named backend's status, or nil.
func (s *Snapshot) Backend(name string) *BackendStatus {
	for i := range s.Backends {
		if s.Backends[i].Config.Name == name {
			return &s.Backends[i]
		}
	}
	return nil
}

// FrontendStatus is a frontend's configuration and counters.
type FrontendStatus struct {
	ID     int
	Config Frontend
	Stats  FrontendCounters
	// Rules are the frontend's http-request, redirect, use_backend and
	// http-response rules in the order they run, with how often each
	// matched.
	Rules []RuleStatus
}

// RuleStatus is one rule as configured and the requests (or, for
// http-response rules, responses) it acted on since it was loaded.
type RuleStatus struct {
	Line string
	Hits int64
}

// FrontendCounters are a frontend's traffic counters.
type FrontendCounters struct {
	CurSessions   int64
	MaxSessions   int64
	TotalSessions int64
	TotalRequests int64
	BytesIn       int64
	BytesOut      int64
	Responses     ResponseClasses
	RequestErrors int64
}

// BackendStatus is a backend's effective configuration, servers and counters.
type BackendStatus struct {
	ID int
	// Config is the backend's current configuration, runtime changes
	// included, without its dynamic-cookie key (see KeyFingerprint);
	// Config.Servers is in server ID order.
	Config Backend
	// KeyFingerprint identifies the dynamic-cookie key without revealing it
	// ("" when there is no key).
	KeyFingerprint string
	// RetiredKeys are the previous keys whose cookies are still honoured
	// (set dynamic-cookie-key ... grace), by fingerprint.
	RetiredKeys []RetiredKeyStatus
	Servers     []ServerStatus
	Stats       BackendCounters
}

// Server returns the named server's status, or nil.
func (b *BackendStatus) Server(name string) *ServerStatus {
	for i := range b.Servers {
		if b.Servers[i].Config.Name == name {
			return &b.Servers[i]
		}
	}
	return nil
}

// DynamicCookies reports whether dynamic cookies are on for the backend.
func (b *BackendStatus) DynamicCookies() bool {
	return b.Config.Cookie != nil && b.Config.Cookie.Dynamic
}

// BackendCounters are a backend's traffic counters.
type BackendCounters struct {
	CurSessions   int64
	MaxSessions   int64
	TotalSessions int64
	TotalRequests int64
	BytesIn       int64
	BytesOut      int64
	Responses     ResponseClasses
	ConnErrors    int64
	RespErrors    int64
	CliAborts     int64 // responses cut short by the client (cli_abrt)
	SrvAborts     int64 // responses cut short by the server (srv_abrt)
	Retries       int64
	Redispatches  int64
	// NoServer counts requests refused with 503 because no server was usable.
	NoServer int64
	LBTotal  int64
	// Downs counts the times a health check left the backend without a
	// usable server (chkdown).
	Downs int64
	// QueueCur counts requests waiting for a server slot (maxconn), in the
	// backend's queue and its servers' queues; QueueMax is its highest value.
	QueueCur int64
	QueueMax int64
	Sticky   StickyCounters
	// LastChange is when the backend last went up or down.
	LastChange time.Time
}

// ResponseClasses counts HTTP responses by class: 1xx..5xx and other.
type ResponseClasses [6]int64

// StickyCounters describe how cookie persistence behaved.
type StickyCounters struct {
	// Pinned counts requests that arrived with a valid cookie and were
	// served by the server it names.
	Pinned int64
	// NewSessions counts persistent sessions assigned: responses that set
	// the cookie for a client that did not have a valid one.
	NewSessions int64
	// Invalid counts cookies that named no server.
	Invalid int64
	// Expired counts cookies refused for their maxidle or maxlife date.
	Expired int64
	// Redispatched counts requests whose cookie named a server that was
	// down or in maintenance and that were sent elsewhere.
	Redispatched int64
	// OldKey and OldAddr count requests that came with a dynamic cookie
	// computed with a retired key or from a previous address, in its
	// grace window (one that was both counts in both); Reissued counts
	// the responses that gave such a client the current cookie.
	OldKey   int64
	OldAddr  int64
	Reissued int64
	// OldClients estimates how many distinct client addresses came with
	// such a cookie in the last five minutes: the clients still to
	// migrate (linear counting, about 2% off up to a few thousand).
	OldClients int64
}

// OpState is a server's operational state, as in show servers state.
type OpState int

// Operational states.
const (
	OpStopped  OpState = 0
	OpStarting OpState = 1
	OpRunning  OpState = 2
	OpStopping OpState = 3
)

// Admin state bits, as HAProxy's srv_admin_state.
const (
	AdminFMaint uint8 = 0x01 // forced maintenance (operator or "disabled")
	// AdminCMaint marks a server declared "disabled" in the configuration.
	// Like HAProxy it comes with AdminFMaint and stays after the server is
	// enabled; it does not keep the server in maintenance by itself.
	AdminCMaint uint8 = 0x04
	AdminFDrain uint8 = 0x08 // forced drain
	AdminRMaint uint8 = 0x20 // maintenance because the name does not resolve
)

// ServerStatus is a server's configuration, state and counters.
type ServerStatus struct {
	ID int
	// Config is the server's current configuration: address and port after
	// runtime changes ("" while it has none), initial weight in
	// Config.Weight.
	Config Server
	// FQDN is the host name the server resolves, "" for an IP server.
	FQDN string
	// Cookie is the value that pins a client to this server ("" for none).
	Cookie string
	// CookieDynamic reports whether Cookie was generated from the key.
	CookieDynamic bool
	// CookieCollision names another server of the backend with the same
	// cookie value, if any.
	CookieCollision string
	Admin           uint8 // Admin* bits
	// Op is the operational state; a server in maintenance is stopped,
	// as HAProxy reports it.
	Op     OpState
	Weight int // current (user) weight
	// CheckEnabled reports whether health checks run.
	CheckEnabled bool
	// WhenIdle is a standing request for maintenance once idle.
	WhenIdle IdleIntent
	// PrevAddrs are the previous addresses whose dynamic cookies still
	// reach the server (Backend.DynamicCookieAddrGrace).
	PrevAddrs []PrevAddr
	Check     CheckResult
	// LastChange is when the operational or admin state last changed.
	LastChange time.Time
	Stats      ServerCounters
}

// Usable reports whether the server may take new, non-persistent traffic.
func (s *ServerStatus) Usable() bool {
	return !s.InMaint() && s.Admin&AdminFDrain == 0 && s.Op != OpStopped && s.Weight > 0
}

// InMaint reports whether the server is in maintenance, forced or because
// its name does not resolve.
func (s *ServerStatus) InMaint() bool {
	return s.Admin&(AdminFMaint|AdminRMaint) != 0
}

// DeleteBlocker returns why del server would refuse the server now, in
// HAProxy 2.6's order: ErrServerReferenced for a server resolved through a
// resolvers section (server-template slots filled by DNS),
// ErrNotInMaintenance unless it was put in maintenance, ErrServerHasConns
// while sessions are attached. It returns nil when the server can be
// deleted.
func (s *ServerStatus) DeleteBlocker() error {
	switch {
	case s.Config.Resolvers != "":
		return ErrServerReferenced
	case s.Admin&AdminFMaint == 0:
		return ErrNotInMaintenance
	case s.Stats.CurSessions > 0:
		return ErrServerHasConns
	}
	return nil
}

// Running reports whether the server counts as running for persistence: not
// in maintenance and not down. A draining server is running.
func (s *ServerStatus) Running() bool {
	return !s.InMaint() && s.Op != OpStopped
}

// StatusText returns the server's status as HAProxy's stats show it:
// "UP", "DOWN", "DRAIN", "MAINT", "MAINT (resolution)", "no check", with
// " i/n" while a transition is pending.
func (s *ServerStatus) StatusText() string {
	switch {
	case s.Admin&AdminRMaint != 0:
		return "MAINT (resolution)"
	case s.Admin&AdminFMaint != 0:
		return "MAINT"
	}
	var st string
	switch s.Op {
	case OpStopped:
		st = "DOWN"
	case OpStopping:
		st = "NOLB"
	default:
		st = "UP"
	}
	if st == "UP" && (s.Admin&AdminFDrain != 0 || s.Weight == 0) {
		st = "DRAIN"
	}
	if !s.CheckEnabled {
		if st == "UP" {
			return "no check"
		}
		return st
	}
	rise, fall := s.Config.Rise, s.Config.Fall
	switch {
	case s.Op == OpStopped && s.Check.Health > 0:
		st += " " + strconv.Itoa(s.Check.Health) + "/" + strconv.Itoa(rise)
	case s.Op != OpStopped && s.Check.Health < rise+fall-1:
		st += " " + strconv.Itoa(s.Check.Health-rise+1) + "/" + strconv.Itoa(fall)
	}
	return st
}

// CheckResult is the outcome of a server's last health check.
type CheckResult struct {
	// Status is HAProxy's check status: "INI", "L4OK", "L4TOUT", "L4CON",
	// "L7OK", "L7STS", "L7RSP", "L7TOUT", "SOCKERR", or "" when unchecked.
	Status   string
	Code     int // HTTP status of an HTTP check
	Duration time.Duration
	// Health is HAProxy's check health: 0..rise-1 while down,
	// rise..rise+fall-1 while up. Servers without checks have one too:
	// rise at start, 0 once maintenance began, rise+fall-1 after
	// "set server health up" or "stopping".
	Health int
	Time   time.Time
	// Description is the human text, e.g. "Layer4 connection problem".
	Description string
}

// ServerCounters are a server's traffic and check counters.
type ServerCounters struct {
	CurSessions   int64
	MaxSessions   int64
	TotalSessions int64
	// TotalRequests counts the responses the server sent; Responses
	// counts them by class. Tether's own error pages count in neither.
	TotalRequests int64
	BytesIn       int64
	BytesOut      int64
	Responses     ResponseClasses
	ConnErrors    int64
	RespErrors    int64
	CliAborts     int64 // responses cut short by the client (cli_abrt)
	SrvAborts     int64 // responses cut short by the server (srv_abrt)
	Retries       int64
	Redispatches  int64
	LBTotal       int64
	ChecksFailed  int64
	Downs         int64 // UP to DOWN transitions
	Downtime      time.Duration
	LastSession   time.Time
	Sticky        StickyCounters
	// QueueCur counts requests waiting in the server's queue for a slot
	// (maxconn); QueueMax is its highest value.
	QueueCur int64
	QueueMax int64
}
