// Package balancer is Tether's data plane: configuration value types and their
// validation, the proxy http.Handler, cookie persistence (static and dynamic
// cookies), server selection, health checks, counters and change events.
//
// It imports only the standard library and xxhash, so every other package can
// depend on it without pulling in HTTP routers, templates or SQLite.
package balancer

import (
	"fmt"
	stdbits "math/bits"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Config is a whole Tether configuration: what an HAProxy config file says
// for the features Tether supports. Defaults sections are folded into the
// frontends and backends they precede, so a Config holds effective values.
// A Config is a plain value; the balancer never mutates one it was given.
type Config struct {
	Global    Global
	Frontends []Frontend
	Backends  []Backend
	Resolvers []Resolvers
	// SSLCerts are the certificates committed at run time, by path; they
	// take the place of the files TLS binds name (see SSLCert).
	SSLCerts []SSLCert `json:",omitempty"`
}

// Global holds the settings of HAProxy's global section that Tether uses.
type Global struct {
	// StatsSockets are the Runtime API listeners ("stats socket" lines).
	StatsSockets []StatsSocket
	// StatsTimeout is the idle timeout of a Runtime API client (default 10s).
	StatsTimeout time.Duration
	// StatsMaxConn caps concurrent Runtime API clients (default 10).
	StatsMaxConn int
	// MaxConn caps concurrent client connections of the whole process
	// (global maxconn); 0 derives it from the file-descriptor limit as
	// HAProxy does.
	MaxConn int
	// BufSize is tune.bufsize: a request's or response's header block must
	// fit in BufSize-MaxRewrite bytes. 0 means 16384.
	BufSize int
	// MaxRewrite is tune.maxrewrite, the part of a buffer kept for header
	// rewrites. 0 means 1024.
	MaxRewrite int
	// Logs are the global "log" targets Tether writes to, which a proxy's
	// "log global" refers to.
	Logs []LogTarget
	// LogTag is the program name in syslog headers (log-tag); "" means
	// the name Tether was started as.
	LogTag string
	// LogSendHostname puts a host name in syslog headers
	// (log-send-hostname): LogHostname, or the system's when that is "".
	LogSendHostname bool
	LogHostname     string
	// SSLDefaultBind holds the ssl-default-bind-* lines, which apply to
	// every TLS bind that does not set the same setting itself, and
	// crt-base and ca-base.
	SSLDefaultBind SSLDefaults `json:",omitzero"`
}

// LogTarget is one "log" line Tether writes to: "log stdout|stderr|ADDR
// [len N] [format F] FACILITY [LEVEL [MINLEVEL]]".
type LogTarget struct {
	// Address is "stdout", "stderr", or a syslog server's UDP "ip:port".
	Address string
	// Len is the longest line sent, syslog header included; 0 means
	// HAProxy's 1024.
	Len int
	// Format is the syslog header layout (raw, short, rfc3164, rfc5424,
	// local, priority, timed, iso); "" is HAProxy's default, "local", or
	// "rfc3164" with log-send-hostname.
	Format string
	// Facility is the syslog facility named on the line, such as "local0";
	// a raw line does not show it.
	Facility string
	// Level and MinLevel are the optional maximum and minimum levels
	// named on the line, "" when absent.
	Level, MinLevel string
}

// logLevels are the syslog levels, most severe first.
var logLevels = [...]string{"emerg", "alert", "crit", "err", "warning", "notice", "info", "debug"}

// TakesInfo reports whether the target's maximum level lets through
// messages of level info, the level of HAProxy's access-log lines.
func (t LogTarget) TakesInfo() bool {
	return logLevel(t.Level, len(logLevels)) >= infoLevel
}

// infoLevel is the syslog severity of access-log lines.
const infoLevel = 6

// InfoSeverity returns the severity access-log lines are sent with: info,
// or the minimum level when that is less severe (a "MINLEVEL" caps more
// severe messages to it).
func (t LogTarget) InfoSeverity() int {
	return max(infoLevel, logLevel(t.MinLevel, 0))
}

// logLevel returns the number of the syslog level name, def when name is
// not one.
func logLevel(name string, def int) int {
	for i, l := range logLevels {
		if l == name {
			return i
		}
	}
	return def
}

// Default buffer sizes, HAProxy 2.6's.
const (
	DefaultBufSize    = 16384
	DefaultMaxRewrite = 1024
)

// HeaderLimit returns the largest header block (start line and headers)
// accepted from a client or a server: tune.bufsize minus tune.maxrewrite.
func (g Global) HeaderLimit() int {
	size, rewrite := g.BufSize, g.MaxRewrite
	if size <= 0 {
		size = DefaultBufSize
	}
	if rewrite <= 0 {
		rewrite = DefaultMaxRewrite
	}
	return size - rewrite
}

// Level is a Runtime API access level.
type Level int

// Runtime API access levels, in HAProxy's order.
const (
	LevelUser     Level = 1
	LevelOperator Level = 2
	LevelAdmin    Level = 3
)

// String returns the level as HAProxy writes it.
func (l Level) String() string {
	switch l {
	case LevelUser:
		return "user"
	case LevelOperator:
		return "operator"
	case LevelAdmin:
		return "admin"
	}
	return "unknown"
}

// StatsSocket is one Runtime API listener.
type StatsSocket struct {
	// Address is a UNIX socket path, or "ipv4@ADDR:PORT" / "ipv6@[ADDR]:PORT".
	Address string
	// Mode is the UNIX socket file mode; 0 means 0600.
	Mode uint32
	// Level is the access level granted to clients; 0 means operator.
	Level Level
	// SeverityOutput is "none", "number" or "string"; "" means none.
	SeverityOutput string
}

// Frontend is a set of listening addresses that forward to a default backend.
type Frontend struct {
	Name string
	// ID is the proxy number HAProxy would give it; 0 lets the balancer
	// assign one. A listen section is a Frontend and a Backend with the
	// same Name and ID.
	ID int
	// Binds are its listening addresses, one per address of a bind line.
	Binds          []Bind
	DefaultBackend string
	// ForwardFor adds X-Forwarded-For (option forwardfor), as
	// ForwardForOptions says.
	ForwardFor        bool
	ForwardForOptions ForwardForOptions `json:",omitzero"`
	// MaxConn caps the frontend's concurrent client connections; 0 means
	// the global maxconn.
	MaxConn int
	// TimeoutClient is client-side inactivity (timeout client).
	TimeoutClient time.Duration
	// TimeoutHTTPRequest bounds the wait for a complete request header
	// block (timeout http-request); 0 means TimeoutClient.
	TimeoutHTTPRequest time.Duration
	// TimeoutHTTPKeepAlive bounds the idle time between requests on a
	// client connection (timeout http-keep-alive); 0 means
	// TimeoutHTTPRequest, then TimeoutClient.
	TimeoutHTTPKeepAlive time.Duration
	// TimeoutClientFin is client inactivity once the client half-closed
	// (timeout client-fin); 0 means TimeoutClient.
	TimeoutClientFin time.Duration
	// ACLs are the frontend's "acl" lines, in order.
	ACLs []ACL
	// UseBackends are its "use_backend" rules, in order: the first whose
	// condition holds picks the backend; when none does, DefaultBackend.
	UseBackends []BackendRule
	// RequestRules are its "http-request" rules, Redirects its "redirect"
	// rules (run after them, as in HAProxy) and ResponseRules its
	// "http-response" rules, each in order.
	RequestRules  []HTTPRule
	Redirects     []HTTPRule
	ResponseRules []HTTPRule
	// Logs are where the frontend's access log goes: its own "log" lines
	// and, for "log global", the global ones.
	Logs []LogTarget
	// HTTPLog writes one line per request in HAProxy's HTTP log format
	// (option httplog). Without it the frontend logs nothing.
	HTTPLog bool
	// DontLogNull is option dontlognull. Tether logs requests only, never
	// a connection that carried none, so it changes nothing.
	DontLogNull bool
	// LogFormat is the frontend's "log-format" string; when set, lines
	// take its layout instead of option httplog's.
	LogFormat string
	// LogTag is the program name in this frontend's syslog headers
	// (log-tag); "" means Global.LogTag.
	LogTag string
	// CaptureRequest and CaptureResponse are the "capture request|response
	// header NAME len N" lines, in order; CaptureCookie is the "capture
	// cookie NAME len N" line, nil when there is none.
	CaptureRequest, CaptureResponse []Capture
	CaptureCookie                   *Capture
}

// WithoutPositions returns f with the positions of its ACLs and rules
// cleared: two frontends that differ only by where their lines sit in a
// file configure the same thing.
func (f Frontend) WithoutPositions() Frontend {
	withoutAt := func(rs []HTTPRule) []HTTPRule {
		rs = slices.Clone(rs)
		for i := range rs {
			rs[i].At = Position{}
		}
		return rs
	}
	f.ACLs = slices.Clone(f.ACLs)
	for i := range f.ACLs {
		f.ACLs[i].At = Position{}
	}
	f.UseBackends = slices.Clone(f.UseBackends)
	for i := range f.UseBackends {
		f.UseBackends[i].At = Position{}
	}
	f.RequestRules, f.Redirects, f.ResponseRules = withoutAt(f.RequestRules), withoutAt(f.Redirects), withoutAt(f.ResponseRules)
	return f
}

// WithoutPositions returns c with every frontend's positions cleared (see
// Frontend.WithoutPositions).
func (c Config) WithoutPositions() Config {
	fes := make([]Frontend, len(c.Frontends))
	for i, f := range c.Frontends {
		fes[i] = f.WithoutPositions()
	}
	if c.Frontends == nil {
		fes = nil
	}
	c.Frontends = fes
	return c
}

// Capture is one "capture" line: the header (or cookie name prefix) whose
// value the access log shows, cut to Len bytes.
type Capture struct {
	Name string
	Len  int
}

// Logged reports whether the frontend writes access-log lines: it has log
// targets and option httplog or a log-format.
func (f *Frontend) Logged() bool {
	return len(f.Logs) > 0 && (f.HTTPLog || f.LogFormat != "")
}

// ForwardForOptions are the arguments of "option forwardfor".
type ForwardForOptions struct {
	// Except is a network ("10.0.0.0/8", "::1/128") whose clients get no
	// header (except); "" for none.
	Except string
	// Header is the header's name (header); "" means X-Forwarded-For.
	Header string
	// IfNone adds the header only when the request has none (if-none).
	IfNone bool
}

// ParseForwardForExcept reads the network of "option forwardfor except":
// an address, or an address with a prefix length or a dotted IPv4 mask.
func ParseForwardForExcept(s string) (netip.Prefix, error) {
	addr, mask, hasMask := strings.Cut(s, "/")
	a, err := netip.ParseAddr(addr)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("invalid network '%s'", s)
	}
	bits := a.BitLen()
	if hasMask {
		if m, err := netip.ParseAddr(mask); err == nil && m.Is4() && a.Is4() {
			b := m.As4()
			v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
			ones := stdbits.LeadingZeros32(^v)
			if v<<ones != 0 {
				return netip.Prefix{}, fmt.Errorf("invalid mask in '%s'", s)
			}
			bits = ones
		} else if n, err := strconv.Atoi(mask); err == nil && n >= 0 && n <= a.BitLen() {
			bits = n
		} else {
			return netip.Prefix{}, fmt.Errorf("invalid mask in '%s'", s)
		}
	}
	return netip.PrefixFrom(a, bits).Masked(), nil
}

// Position is where a statement was written: a configuration file and a
// line, as "show acl" reports them; zero when unknown.
type Position struct {
	File string
	Line int
}

// ACL is one "acl" line.
type ACL struct {
	Name string
	// At is where the line was written.
	At Position
	// Words are the criterion, flags and patterns, as written.
	Words []string
	// Files holds the contents of the pattern files its "-f" flags name,
	// by name, as read when the configuration was loaded.
	Files map[string]string
}

// BackendRule is one "use_backend NAME [if|unless CONDITION]" line.
type BackendRule struct {
	Backend string
	// At is where the line was written.
	At Position
	// Cond is "if" or "unless" and the condition's words; nil when the
	// rule has no condition.
	Cond []string
	// Files holds the pattern files its anonymous ACLs read, by name.
	Files map[string]string
}

// Algorithm is a backend's load-balancing algorithm ("balance" line).
type Algorithm string

// Supported balance algorithms.
const (
	RoundRobin Algorithm = "roundrobin"
	StaticRR   Algorithm = "static-rr"
	LeastConn  Algorithm = "leastconn"
	First      Algorithm = "first"
	Source     Algorithm = "source"
	Random     Algorithm = "random"
)

// Dynamic reports whether servers may be added to or removed from a backend
// using this algorithm at run time, and whether weights may change freely
// (HAProxy's "dynamic" algorithms).
func (a Algorithm) Dynamic() bool {
	switch a {
	case RoundRobin, LeastConn, First, Random:
		return true
	}
	return false
}

// Backend is a pool of servers with its persistence and selection settings.
type Backend struct {
	Name string
	// ID is the proxy number HAProxy would give it; 0 lets the balancer
	// assign one (see Frontend.ID for listen sections).
	ID      int
	Balance Algorithm
	// Cookie is the persistence cookie; nil means no cookie persistence.
	Cookie *CookieConfig
	// DynamicCookieKey is the secret hashed into dynamic cookies.
	DynamicCookieKey Secret

	Persist    bool // option persist
	Redispatch bool // option redispatch
	// RedispatchInterval is option redispatch's optional argument: -1 (the
	// default) redispatches on the last retry, N>0 every Nth retry.
	RedispatchInterval int
	Retries            int // retries N (default 3)
	ForwardFor         bool
	ForwardForOptions  ForwardForOptions `json:",omitzero"`

	// HTTPCheck, when set, makes checks HTTP requests (option httpchk).
	HTTPCheck *HTTPCheck

	TimeoutConnect time.Duration
	TimeoutServer  time.Duration
	TimeoutCheck   time.Duration
	TimeoutQueue   time.Duration
	// TimeoutTunnel replaces client and server inactivity timeouts once a
	// connection is a tunnel (websocket); 0 keeps them.
	TimeoutTunnel time.Duration
	// TimeoutServerFin is server inactivity once the server half-closed
	// (timeout server-fin); 0 means TimeoutServer.
	TimeoutServerFin time.Duration

	Servers   []Server
	Templates []ServerTemplate

	// DynamicCookieAddrGrace is how long, after a server's address or port
	// changes, a dynamic cookie computed from the previous ones still
	// reaches the server and is re-issued (a Tether extension, set with
	// "set dynamic-cookie-addr-grace"); 0, the default, is HAProxy's
	// behaviour.
	DynamicCookieAddrGrace time.Duration `json:",omitzero"`
	// RetiredKeys are previous dynamic-cookie keys whose cookies still
	// reach their servers, each until its time (a Tether extension, "set
	// dynamic-cookie-key ... grace"). A key change without grace forgets
	// them.
	RetiredKeys []RetiredKey `json:",omitempty"`
}

// HTTPCheck configures HTTP health checks.
type HTTPCheck struct {
	Method string // default OPTIONS
	URI    string // default /
	// Version is the request's HTTP version string, default "HTTP/1.0".
	Version string
	// ExpectStatus is the exact status expected; 0 means any 2xx or 3xx.
	ExpectStatus int
}

// CookieMode says how the persistence cookie is produced.
type CookieMode int

// Cookie modes. CookiePassive only reads the cookie, which the application sets.
const (
	CookiePassive CookieMode = iota
	CookieInsert
	CookieRewrite
	CookiePrefix
)

// String returns the mode's keyword, or "" for passive.
func (m CookieMode) String() string {
	switch m {
	case CookieInsert:
		return "insert"
	case CookieRewrite:
		return "rewrite"
	case CookiePrefix:
		return "prefix"
	}
	return ""
}

// CookieConfig is a backend's "cookie" line.
type CookieConfig struct {
	Name     string
	Mode     CookieMode
	Indirect bool
	NoCache  bool
	PostOnly bool
	Preserve bool
	HTTPOnly bool
	Secure   bool
	Dynamic  bool
	Domains  []string
	MaxIdle  time.Duration
	MaxLife  time.Duration
	Attrs    []string
}

// Clone returns a deep copy of c (nil for nil).
func (c *CookieConfig) Clone() *CookieConfig {
	if c == nil {
		return nil
	}
	d := *c
	d.Domains = append([]string(nil), c.Domains...)
	d.Attrs = append([]string(nil), c.Attrs...)
	return &d
}

// Server is one origin server of a backend.
type Server struct {
	Name string
	// Address is an IP literal, a host name, or "" when the server has none
	// (a template slot waiting for DNS).
	Address string
	// Port is the service port; 0 with PortSet false means none (port mapping).
	Port    int
	PortSet bool
	// Cookie is the explicit cookie value; it overrides dynamic cookies.
	Cookie string

	Check     bool
	Inter     time.Duration // default 2s
	FastInter time.Duration // default Inter
	DownInter time.Duration // default Inter
	Rise      int           // default 2
	Fall      int           // default 3
	CheckPort int           // 0 means the service port

	Weight   int // 0..256, default 1
	Backup   bool
	Disabled bool // starts in maintenance
	MaxConn  int  // 0 means unlimited

	// IdlePool says how many idle connections to the server are kept
	// for reuse (pool-max-conn, pool-purge-delay); the zero value is
	// HAProxy's defaults.
	IdlePool IdlePool `json:",omitzero"`

	// SSL makes the connections to the server TLS (ssl). CheckSSL makes
	// its health checks TLS as well when a check port is set
	// (check-ssl); checks of an SSL server on its own port are TLS anyway.
	SSL      bool `json:",omitempty"`
	CheckSSL bool `json:",omitempty"`
	// TLS holds the verify, ca-file, sni and crt settings of the line.
	TLS ServerTLS `json:",omitzero"`

	// Resolvers names the resolvers section used to resolve Address.
	Resolvers     string
	ResolvePrefer string   // "ipv4" or "ipv6"; "" means ipv6 like HAProxy
	AllowDupIP    bool     // resolve-opts allow-dup-ip
	InitAddr      []string // init-addr methods in order; nil means the default
}

// IdlePool holds a server's pool-max-conn and pool-purge-delay.
type IdlePool struct {
	// MaxIdle, when MaxIdleSet, is pool-max-conn: the most idle
	// connections kept, 0 for none, -1 for no limit (the default).
	MaxIdle    int  `json:",omitempty"`
	MaxIdleSet bool `json:",omitempty"`
	// PurgeDelay, when PurgeDelaySet, is pool-purge-delay: each period,
	// half of the idle connections beyond the server's recent need are
	// closed; 0 keeps no idle connection. The default is 5 s.
	PurgeDelay    time.Duration `json:",omitempty"`
	PurgeDelaySet bool          `json:",omitempty"`
}

// DefaultPoolPurgeDelay is HAProxy's pool-purge-delay default.
const DefaultPoolPurgeDelay = 5 * time.Second

// Limits returns the most idle connections kept (-1: no limit) and the
// purge period (0: none kept), defaults applied.
func (p IdlePool) Limits() (maxIdle int, purgeDelay time.Duration) {
	maxIdle, purgeDelay = -1, DefaultPoolPurgeDelay
	if p.MaxIdleSet {
		maxIdle = p.MaxIdle
	}
	if p.PurgeDelaySet {
		purgeDelay = p.PurgeDelay
	}
	return maxIdle, purgeDelay
}

// ServerTemplate is a "server-template" line: Count servers named
// Prefix+N for N in [Low, High], all resolving FQDN.
type ServerTemplate struct {
	Prefix string
	Low    int
	High   int
	// FQDN is the name every slot resolves; a leading "_" makes it an SRV name.
	FQDN string
	// Params are the server settings shared by every slot (Name and Address
	// are ignored).
	Params Server
}

// Names returns the server names the template creates, in order.
func (t ServerTemplate) Names() []string {
	names := make([]string, 0, t.High-t.Low+1)
	for i := t.Low; i <= t.High; i++ {
		names = append(names, t.Prefix+strconv.Itoa(i))
	}
	return names
}

// Has reports whether name is one of the names the template creates.
func (t ServerTemplate) Has(name string) bool {
	rest, ok := strings.CutPrefix(name, t.Prefix)
	if !ok {
		return false
	}
	n, err := strconv.Atoi(rest)
	return err == nil && n >= t.Low && n <= t.High && strconv.Itoa(n) == rest
}

// Resolvers is a "resolvers" section.
type Resolvers struct {
	Name                string
	Nameservers         []Nameserver
	AcceptedPayloadSize int // default 512
	ResolveRetries      int // default 3
	TimeoutResolve      time.Duration
	TimeoutRetry        time.Duration
	// Hold maps nx, refused, timeout, other, valid, obsolete to durations.
	Hold            map[string]time.Duration
	ParseResolvConf bool
}

// Nameserver is one DNS server of a resolvers section.
type Nameserver struct {
	Name    string
	Address string // "ADDR:PORT"
	TCP     bool   // "tcp@" prefix
}
