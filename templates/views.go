// Package templates renders Tether's console pages. Components take plain
// view structs, already formatted for display, and never see an HTTP request
// or the database; package web builds the views from balancer snapshots.
//
// Cells that change while a page is open carry two attributes the console's
// script uses to update them in place: data-k on the element that owns an
// entity (a frontend, backend or server, e.g. "s:be/web1") and data-f naming
// the entity's field. Fields are listed in package web next to the code that
// computes them.
package templates

// Page is what every page's layout shows around its content.
type Page struct {
	Title string
	// Nav is the navigation entry to highlight: "overview", "inspect",
	// "audit" or "users".
	Nav  string
	User string
	Role string
	// Admin reports whether the user has the admin role.
	Admin bool
	// Operator reports whether the user has the operator or admin role
	// (the cookie inspector shows cookie values, which viewers may not see).
	Operator bool
	// Flash is the outcome of the last action, shown once.
	Flash *Flash
	// Version and DataAt identify the snapshot the page was rendered from;
	// DataAt is RFC 3339 with milliseconds, used to show the data's age.
	Version uint64
	DataAt  string
	// Live makes the page subscribe to live updates.
	Live bool
	// Refresh names the event kind that makes the page fetch its content
	// again ("change" for pages listing changes); "" for none.
	Refresh string
	// Socat is the socat address of the Runtime API, used to build "copy as
	// socat command" text.
	Socat string
}

// Flash is the outcome of an action, shown at the top of the next page.
type Flash struct {
	OK bool
	// Commands are the Runtime API commands sent, secrets masked.
	Commands []string
	// Reply is the Runtime API's reply text when it is not empty.
	Reply   string
	Message string
}

// Perms says which controls are usable and why others are not.
type Perms struct {
	// Admin allows server state, weight, add/delete server and cookie changes.
	Admin bool
	// Operator allows clearing max counters.
	Operator bool
	// Sensitive allows seeing addresses and cookie values (operator or admin,
	// as HAProxy's show stat at operator level).
	Sensitive bool
	// Why explains disabled admin controls.
	Why string
}

// Overview is the overview page's content.
type Overview struct {
	// Fleet lists the nodes sharing the database; nil for a single node.
	Fleet     *FleetPanel
	Frontends []FrontendRow
	Backends  []BackendView
	Perms     Perms
	// TLSBinds are the frontends' TLS binds; Certs the certificate files
	// they serve.
	TLSBinds []TLSBindRow
	Certs    []CertRow
}

// TLSBindRow is one TLS bind of a frontend and its settings in HAProxy
// words.
type TLSBindRow struct {
	Frontend  string
	Addr      string
	Crt       string // the crt and crt-list sources
	ALPN      string
	Versions  string // "TLSv1.2 – TLSv1.3"
	StrictSNI string // "yes" or "no"
	Verify    string
}

// CertRow is one certificate file a TLS bind serves. Its fields are
// display text; nothing in it is secret.
type CertRow struct {
	Key     string // "c:" and the path
	Path    string
	Subject string
	SANs    string
	Issuer  string
	// NotAfter is the expiry date, Left the time to it ("12 days",
	// "expired 3 days ago").
	NotAfter string
	Left     string
	// Expiry is "ok", "warn" (under 14 days) or "expired".
	Expiry string
	SHA1   string
}

// FleetPanel is the fleet's node list.
type FleetPanel struct {
	// Newest is the newest journal version.
	Newest string
	Nodes  []NodeRow
}

// NodeRow is one node of the fleet, as its last heartbeat reported it.
type NodeRow struct {
	Key, Name string
	// Status is up, behind or lost; State its colour class.
	Status, State string
	// Applied is "applied / newest" journal version.
	Applied string
	Version string
	// Uptime is how long the node had run at its last heartbeat; Beat
	// how long ago that was.
	Uptime, Beat string
	ConsoleURL   string
	// Self marks the node serving this console.
	Self bool
}

// TallyRow is one server's sticky counters summed over the fleet's live
// nodes (Node "") or on one node.
type TallyRow struct {
	Key, Node, Server     string
	Pinned, New, Requests string
}

// FrontendRow is one frontend's line.
type FrontendRow struct {
	Key     string
	Name    string
	Binds   string
	Backend string
	Cur     string
	Max     string
	Total   string
	Rate    string
	R2xx    string
	R4xx    string
	R5xx    string
	ReqErrs string
	// ACLs are the frontend's acl lines; Rules its rules in the order they
	// run, with how often each matched.
	ACLs  []string
	Rules []RuleRow
}

// RuleRow is one rule of a frontend as configured, and the requests it
// acted on.
type RuleRow struct {
	Key  string
	Line string
	Hits string
}

// BackendView is one backend with its servers.
type BackendView struct {
	// Fleet is the servers' counters summed over the fleet's live nodes,
	// FleetNodes the same per node; both empty for a single node.
	Fleet, FleetNodes []TallyRow
	Key               string
	Name              string
	Balance           string
	// CookieLine is the cookie line in HAProxy words without the keyword,
	// e.g. "SERVER_USED insert indirect nocache dynamic"; "" without cookie.
	CookieLine string
	// CookieCmd is the Runtime API command that sets the current cookie
	// line, words escaped; "" without cookie.
	CookieCmd string
	HasCookie bool
	Dynamic   string // "ON" or "OFF"
	DynamicOn bool
	KeyFP     string
	// DynamicAlgo reports whether servers may be added and removed.
	DynamicAlgo bool
	UpTotal     string
	Rate        string
	Cur         string
	Max         string
	Total       string
	R2xx        string
	R4xx        string
	R5xx        string
	Pinned      string
	New         string
	Redisp      string
	Invalid     string
	Expired     string
	NoServer    string
	// SessRate and SessRateMax are the backend's session rate and its
	// highest value; BytesIn and BytesOut its byte counters.
	SessRate    string
	SessRateMax string
	BytesIn     string
	BytesOut    string
	// Clients estimates clients pinned by cookies: new persistent sessions
	// in the last 15 minutes.
	Clients string
	// Collisions lists servers sharing a cookie value, e.g. "web1 = web2".
	Collisions []string
	// OldKey, OldAddr and Reissued count requests that came with a cookie
	// of a retired key or a previous address, and the cookies re-issued.
	OldKey   string
	OldAddr  string
	Reissued string
	// OldClients estimates the clients still on an old cookie (seen in
	// the last five minutes).
	OldClients string
	// MigOld and MigRe draw the last minute of the migration: requests
	// per second with an old cookie (falling as clients migrate), and the
	// count of cookies re-issued (rising).
	MigOld string
	MigRe  string
	// AddrGrace is the address grace ("5m"), "" when there is none.
	AddrGrace string
	// Retired lists the retired keys still honoured; GraceUntil is when
	// the last of their windows ends, in Unix seconds ("" when none). A
	// change of either changes the page's structure, so they are not
	// live cells.
	Retired    []RetiredKeyRow
	GraceUntil string
	Dist       []DistSeg
	Servers    []ServerRow
	History    []HistoryRow
}

// RetiredKeyRow is a retired dynamic-cookie key whose cookies are still
// honoured: its fingerprint and when its window ends.
type RetiredKeyRow struct {
	FP        string
	Until     string // "15:04:05 UTC"
	UntilUnix string
}

// DistSeg is one server's share of the sticky-session distribution bar.
type DistSeg struct {
	Key   string
	Name  string
	X     string // percent offset, "0".."100"
	W     string // percent width
	Color string // palette index "0".."7"
}

// HistoryRow is one server's sticky traffic over the last 15 minutes: paths
// of two stacked series (pinned requests and new sessions) on a 0..100 × 0..20
// canvas.
type HistoryRow struct {
	Key        string
	Name       string
	PinnedPath string
	NewPath    string
	Peak       string
}

// ServerRow is one server's line.
type ServerRow struct {
	Key     string
	Backend string
	Name    string
	Addr    string
	// Status is HAProxy's status text ("UP", "DOWN 1/2", "MAINT", ...).
	Status string
	// State is the colour class: up, goingdown, down, goingup, maint, drain,
	// nocheck, noaddr.
	State string
	// Icon is a glyph repeating the state for readers who do not see colour.
	Icon    string
	Since   string
	SinceTS string // Unix seconds of the last change
	LastChk string
	Weight  string // "effective/initial"
	WeightV string // current weight, for the inline form
	Cur     string
	Max     string
	Total   string
	Rate    string
	Spark   string // SVG path on a 0..60 × 0..16 canvas
	R2xx    string
	R4xx    string
	R5xx    string
	Cookie  string
	// CookieDynamic reports whether Cookie was computed from the key.
	CookieDynamic bool
	Collision     string
	Pinned        string
	New           string
	Redisp        string
	Invalid       string
	Expired       string
	// Admin is the operator-chosen mode: "ready", "drain" or "maint".
	Admin string
	// Deletable reports whether HAProxy's del server preconditions hold;
	// DeleteWhy explains the unmet ones.
	Deletable bool
	DeleteWhy string
	// SessRate and SessRateMax are HAProxy's "Session rate" columns:
	// sessions per second now and the highest seen. (HAProxy's Limit
	// column is always empty for servers; the console leaves it out.)
	SessRate    string
	SessRateMax string
	// BytesIn and BytesOut are in B, kB, MB… (fmtBytes).
	BytesIn  string
	BytesOut string
}

// BackendPage is the backend page's content.
type BackendPage struct {
	Backend BackendView
	Perms   Perms
	Cookie  CookieForm
	Add     AddServerForm
	// Addr is the change-address form last submitted without JavaScript.
	Addr AddrForm
	// History is the history chart; nil when the console keeps none.
	History *HistoryChart
}

// AddrForm is a server's change-address form on the dynamic cookie panel,
// as submitted, with what the server's cookie becomes at that address.
type AddrForm struct {
	Server string
	Addr   string
	Port   string
	// Preview says what the server's cookie becomes; "" before a preview.
	Preview string
	Error   string
}

// For returns f when it is the form of the named server, else an empty
// form.
func (f AddrForm) For(server string) AddrForm {
	if f.Server != server {
		return AddrForm{}
	}
	return f
}

// CookieForm is the cookie settings form, filled with the current settings
// or with what the user submitted.
type CookieForm struct {
	Name     string
	Mode     string // "", "insert", "rewrite", "prefix"
	Indirect bool
	NoCache  bool
	PostOnly bool
	Preserve bool
	HTTPOnly bool
	Secure   bool
	Dynamic  bool
	Domains  string // space separated
	MaxIdle  string
	MaxLife  string
	Attrs    string // one per line
	Error    string
}

// AddServerForm is the add-server form.
type AddServerForm struct {
	Name    string
	Address string
	Port    string
	Weight  string
	Cookie  string
	Check   bool
	Ready   bool
	Error   string
}

// DrainPage shows a draining server counting down.
type DrainPage struct {
	Server  ServerRow
	Perms   Perms
	Watched bool
	// WatchBy is who asked for maintenance when idle.
	WatchBy string
	// History is the server's history chart; nil when the console keeps
	// none.
	History *HistoryChart
}

// InspectPage is the cookie inspector.
type InspectPage struct {
	Backends []string
	Backend  string
	Value    string
	Results  []InspectResult
	Error    string
	// Pinned is set after "pin this browser" succeeded.
	Pinned *PinResult
	Perms  Perms
}

// InspectResult explains what a cookie means for one backend.
type InspectResult struct {
	Backend    string
	CookieName string
	// CookieLine is the backend's whole cookie line, as in the configuration.
	CookieLine  string
	Value       string // the persistence cookie's value as given
	ServerValue string // the part naming a server
	AppValue    string // prefix mode: the application's own value
	LastSeen    string
	FirstSeen   string
	Expired     string // "" when not expired, else why
	// Code and Verdict are HAProxy's cookie status: its log letter and words.
	Code      string
	Verdict   string
	Server    string // the server it names, "" for none
	ServerKey string
	Status    string
	State     string
	Dynamic   bool
	// Outcome says what a request carrying the cookie gets now.
	Outcome string
	// Targets are the servers the request may reach, each with the whole
	// Set-Cookie line its response gets; MoreTargets counts those left out.
	Targets     []InspectTarget
	MoreTargets int
	// SetCookieNote explains an absent Set-Cookie line.
	SetCookieNote string
	// Forwarded is the Cookie header the server receives, "" when removed.
	Forwarded string
	// Pinnable reports whether "pin this browser" is offered.
	Pinnable bool
	// Servers are the backend's servers and cookie values, to pick one to pin.
	Servers []PinChoice
}

// SetsCookie reports whether a response may get a Set-Cookie line.
func (r InspectResult) SetsCookie() bool {
	for _, t := range r.Targets {
		if t.SetCookie != "" {
			return true
		}
	}
	return false
}

// InspectTarget is a server a request may reach and the Set-Cookie line its
// response gets ("" for none).
type InspectTarget struct {
	Server    string
	SetCookie string
}

// PinChoice is a server one may pin this browser to.
type PinChoice struct {
	Name   string
	Cookie string
}

// PinResult reports a "pin this browser" cookie.
type PinResult struct {
	Backend string
	Server  string
	Cookie  string // NAME=VALUE
	Host    string
	// Frontends lists frontend addresses on the console's host that receive
	// the cookie.
	Frontends []string
	Snippet   string // document.cookie line for another origin
	Curl      string
}

// AuditPage is the audit log.
type AuditPage struct {
	Backends []string
	Backend  string
	Actor    string
	Channel  string
	Entries  []AuditRow
	// Older is the query string of the next, older page; "" when none.
	Older string
}

// AuditRow is one audit entry.
type AuditRow struct {
	ID      string
	Time    string
	TimeISO string
	Actor   string
	Channel string
	Source  string
	Command string
	Result  string
	OK      bool
	Target  string
	Before  string
	After   string
	// Detail says what changed in one line, e.g. "state ready → drain".
	Detail string
}

// UsersPage lists console users.
type UsersPage struct {
	Users []UserRow
	Self  string
	Error string
	// New is the add-user form as submitted, on error.
	NewName string
	NewRole string
	// Lockouts are the current sign-in lockouts; LockoutPolicy explains
	// when they happen.
	Lockouts      []LockoutRow
	LockoutPolicy string
}

// LockoutRow is a current sign-in lockout: of User from Source, or of the
// whole Source address when User is "".
type LockoutRow struct {
	User     string
	Source   string
	Failures string
	Until    string
}

// UserRow is one console user.
type UserRow struct {
	Name    string
	Role    string
	Created string
}

// LoginPage is the login form.
type LoginPage struct {
	Name  string
	Next  string
	Error string
}

// RoleNames returns the console's roles, lowest first.
func RoleNames() []string { return []string{"viewer", "operator", "admin"} }
