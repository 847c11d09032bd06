package balancer

import (
	"errors"
	"time"
)

// Change is one typed runtime change, applied atomically by Balancer.Apply.
// Every Change names the backend it affects.
type Change interface {
	// BackendName returns the backend the change affects.
	BackendName() string
	isChange()
}

// ServerRef names one server of one backend.
type ServerRef struct {
	Backend string
	Server  string
}

// BackendName returns r.Backend.
func (r ServerRef) BackendName() string { return r.Backend }

// String returns "backend/server".
func (r ServerRef) String() string { return r.Backend + "/" + r.Server }

// SetAdminState puts a server in ready, drain or maintenance
// (set server B/S state, enable/disable server).
type SetAdminState struct {
	ServerRef
	State AdminMode
}

// SetWeight sets a server's current (user) weight, 0..256.
type SetWeight struct {
	ServerRef
	Weight int
}

// SetAddr changes a server's address and optionally its port.
// The dynamic cookie is recomputed.
type SetAddr struct {
	ServerRef
	Address string // an IP literal
	Port    int
	PortSet bool // false keeps the current port
	// Resolved marks a change made by DNS discovery; Address "" then means
	// the name no longer resolves and the server goes to maintenance.
	Resolved bool
	// GraceUntil is when a cookie computed from the previous address stops
	// reaching the server; Apply sets it from the backend's
	// DynamicCookieAddrGrace, zero when the backend has none.
	GraceUntil time.Time `json:",omitzero"`
}

// SetHealth forces a server's operational state (set server B/S health).
type SetHealth struct {
	ServerRef
	Health ForcedHealth
}

// SetCheckEnabled enables or disables health checks of a server.
type SetCheckEnabled struct {
	ServerRef
	Enabled bool
}

// SetCheckPort changes the port health checks connect to.
type SetCheckPort struct {
	ServerRef
	Port int
}

// SetMaxConn changes a server's connection limit (0 is unlimited).
type SetMaxConn struct {
	ServerRef
	MaxConn int
}

// SetMaintWhenIdle asks for a server to be put in maintenance once it is
// idle, or withdraws the request (Intent.Asked false). The request is part
// of the durable state; setting the server ready or in maintenance ends it.
type SetMaintWhenIdle struct {
	ServerRef
	Intent IdleIntent
}

// IdleIntent is a standing request for maintenance when idle: who asked
// and from where.
type IdleIntent struct {
	Asked bool
	By    string
	From  string
}

// AddServer adds a server to a backend. Like HAProxy it starts in
// maintenance with its checks disabled.
type AddServer struct {
	Backend string
	Server  Server
}

// BackendName returns the backend the server is added to.
func (c AddServer) BackendName() string { return c.Backend }

// DelServer removes a server that is in maintenance and has no connections.
type DelServer struct {
	ServerRef
}

// SetDynamicCookies enables or disables dynamic cookies on a backend.
type SetDynamicCookies struct {
	Backend string
	Enabled bool
}

// BackendName returns c.Backend.
func (c SetDynamicCookies) BackendName() string { return c.Backend }

// SetDynamicCookieKey replaces a backend's dynamic-cookie key. With a
// Grace (a Tether extension), cookies computed with the previous keys keep
// reaching their servers, and are re-issued, until GraceUntil; without
// one, as in HAProxy, only cookies of the new key are valid.
type SetDynamicCookieKey struct {
	Backend string
	Key     Secret
	// Grace is the window the caller asks for; Apply turns it into
	// GraceUntil, which is what replay uses.
	Grace      time.Duration `json:",omitzero"`
	GraceUntil time.Time     `json:",omitzero"`
}

// SetDynamicCookieAddrGrace sets a backend's DynamicCookieAddrGrace.
type SetDynamicCookieAddrGrace struct {
	Backend string
	Grace   time.Duration
}

// BackendName returns c.Backend.
func (c SetDynamicCookieAddrGrace) BackendName() string { return c.Backend }

// BackendName returns c.Backend.
func (c SetDynamicCookieKey) BackendName() string { return c.Backend }

// SetCookie replaces a backend's cookie settings; nil removes persistence.
type SetCookie struct {
	Backend string
	Cookie  *CookieConfig
}

// BackendName returns c.Backend.
func (c SetCookie) BackendName() string { return c.Backend }

// ShutdownSessions closes every connection in flight on a server.
type ShutdownSessions struct {
	ServerRef
}

// ClearCounters resets max counters, or every counter when All is set.
// Backend "" means every backend.
type ClearCounters struct {
	Backend string
	All     bool
}

// BackendName returns c.Backend.
func (c ClearCounters) BackendName() string { return c.Backend }

func (SetAdminState) isChange()             {}
func (SetWeight) isChange()                 {}
func (SetAddr) isChange()                   {}
func (SetHealth) isChange()                 {}
func (SetCheckEnabled) isChange()           {}
func (SetCheckPort) isChange()              {}
func (SetMaxConn) isChange()                {}
func (AddServer) isChange()                 {}
func (SetMaintWhenIdle) isChange()          {}
func (DelServer) isChange()                 {}
func (SetDynamicCookies) isChange()         {}
func (SetDynamicCookieKey) isChange()       {}
func (SetDynamicCookieAddrGrace) isChange() {}
func (SetCookie) isChange()                 {}
func (ShutdownSessions) isChange()          {}
func (ClearCounters) isChange()             {}

// AdminMode is an operator-chosen server state.
type AdminMode int

// Admin modes of set server B/S state.
const (
	Ready AdminMode = iota
	Drain
	Maint
)

// String returns the mode as the Runtime API spells it.
func (m AdminMode) String() string {
	switch m {
	case Drain:
		return "drain"
	case Maint:
		return "maint"
	}
	return "ready"
}

// ForcedHealth is the operational state forced by set server B/S health.
type ForcedHealth int

// Forced health values.
const (
	HealthUp ForcedHealth = iota
	HealthStopping
	HealthDown
)

// Origin says who made a change and through which channel.
type Origin struct {
	// Channel is "console", "socket", "ctl", "import", "dns" or "health".
	Channel string
	// Source details the channel: a socket path, a TCP address, a page.
	Source string
	// Actor is the console user, or "" when unknown.
	Actor string
	// Command is the command as issued (Runtime API syntax), for the audit
	// log; secrets in it must already be masked by the caller.
	Command string
	// File is the configuration file an import or reload read, kept with
	// the state it produced; zero for other changes.
	File ConfigFile
}

// ConfigFile identifies a configuration file by path and content.
type ConfigFile struct {
	Path string
	// Digest is the hex prefix of the SHA-256 of the file's bytes.
	Digest string
}

// Errors returned by Apply, matched with errors.Is. The Runtime API maps
// them to HAProxy's replies.
var (
	ErrNoSuchBackend      = errors.New("no such backend")
	ErrNoSuchServer       = errors.New("no such server")
	ErrServerExists       = errors.New("a server with the same name already exists in the backend")
	ErrNotDynamicBackend  = errors.New("backend does not use a dynamic load balancing algorithm")
	ErrStaticWeight       = errors.New("backend uses a static algorithm and only accepts weights 0% and 100%")
	ErrWeightRange        = errors.New("weight must be between 0 and 256 inclusive")
	ErrNotInMaintenance   = errors.New("only servers in maintenance mode can be deleted")
	ErrServerHasConns     = errors.New("server still has connections attached to it")
	ErrCheckNotConfigured = errors.New("health check was not configured on this server")
	ErrInvalidAddress     = errors.New("invalid address")
	ErrInvalid            = errors.New("invalid value")
	// ErrKeyBytes reports a dynamic-cookie key holding NUL, CR or LF, which
	// no configuration line can carry.
	ErrKeyBytes = errors.New("invalid value: a dynamic-cookie key must not contain NUL, CR or LF bytes")
)

// ErrServerReferenced refuses to delete a server resolved through a
// resolvers section, as every slot of a DNS server-template is: HAProxy 2.6
// marks such servers non-purgeable.
var ErrServerReferenced = errors.New("server cannot be removed at run time: other configuration elements point to it")

// Commit is what the balancer hands its committer for one Apply or
// Replace, after validating it and before making it visible: the typed
// changes, who made them, and the durable state they touch.
type Commit struct {
	// Changes are the changes of one Apply, in order; nil for a Replace.
	Changes []Change
	Origin  Origin
	Time    time.Time
	// Before and After are the part of the durable state the commit
	// touches, for describing it: for changes, the settings of the
	// backends they name and the servers they name (a server absent from
	// one side was added or deleted); for a Replace, the whole states.
	// A committer must not modify them.
	Before State
	After  State
	// Replaced marks a Replace: After is then the whole new state.
	Replaced bool
	// State returns the whole durable state once the commit is applied.
	// It copies every server, so a committer calls it only to write a
	// checkpoint, and only during the call.
	State func() State
}

// Committer persists a commit. If it returns an error the change is not
// applied. It runs while the balancer's writer lock is held, so it must not
// call Apply.
type Committer func(Commit) error

// State is everything about a balancer that must survive a restart: its
// configuration with every runtime change folded in (servers added and
// removed, addresses, keys, cookie settings, dynamic cookies on or off) and
// each server's runtime settings.
type State struct {
	Config Config
	// Servers holds each server's runtime settings, keyed by "backend/server".
	Servers map[string]ServerRuntime
}

// ServerRuntime is the runtime part of a server's durable state.
type ServerRuntime struct {
	Admin        AdminMode
	Weight       int // current (user) weight
	CheckEnabled bool
	// Address is the current IP address ("" when the server has none); it
	// differs from the configured one after set server addr or resolution.
	Address string
	Port    int
	PortSet bool
	// WhenIdle is a standing request for maintenance when idle.
	WhenIdle IdleIntent
	// PrevAddrs are addresses the server's dynamic cookie was computed
	// from before, whose cookies still reach it until their time (see
	// Backend.DynamicCookieAddrGrace).
	PrevAddrs []PrevAddr `json:",omitempty"`
}
