package connlimit

import "fmt"

// HAProxy 2.6's constants for a global maxconn derived from the
// file-descriptor limit (compute_ideal_maxconn in src/haproxy.c), checked
// against `show info` under prlimit: with one frontend bind and one stats
// socket, 256 descriptors give Maxconn 114, 1024 give 498, 4096 give 2034
// and 20000 give 9986 on 2 threads.
const (
	// ReservedFDs is what HAProxy keeps for itself before counting
	// listeners, checks and threads.
	ReservedFDs = 20
	// FDsPerPoller is a thread's poller descriptor and wake-up pipe.
	FDsPerPoller = 3
	// FDsPerConn is what a proxied connection needs: the client's socket
	// and the server's.
	FDsPerConn = 2
	// MinMaxConn is the lowest maxconn HAProxy derives; below it the
	// descriptor limit is too low to start.
	MinMaxConn = 100
)

// Sockets counts the descriptors a process keeps besides its
// connections, as HAProxy's maxsock does.
type Sockets struct {
	// Listeners are listening sockets: frontend binds, stats sockets and
	// the console.
	Listeners int
	// Checks are servers with health checks, each of which may hold a
	// connection.
	Checks int
	// Pollers are event loops with their own descriptors; Go's netpoller
	// is one, and the Runtime API reports Nbthread 1.
	Pollers int
	// AdminClients are descriptors kept for Runtime API clients (the
	// stats maxconn of every stats socket), which no maxconn counts. HAProxy
	// has no such term: its CLI clients live in ReservedFDs, but a Go
	// process with its database already uses most of those (the runtime's
	// epoll, eventfd and cgroup files, SQLite's database, WAL and shared
	// memory files: 17 descriptors with one bind and one stats socket).
	AdminClients int
}

func (s Sockets) reserved() int {
	return ReservedFDs + s.Listeners + s.Checks + FDsPerPoller*max(s.Pollers, 1) + s.AdminClients
}

// Plan is the global maxconn in effect and the descriptors it needs.
type Plan struct {
	// FDLimit is the RLIMIT_NOFILE soft limit (show info's Ulimit-n); 0
	// when unknown.
	FDLimit int
	// MaxConn is the global maxconn: the configured one, or the one
	// derived from FDLimit; 0 caps nothing (only when FDLimit is unknown
	// and nothing is configured).
	MaxConn int
	// MaxSock is the number of descriptors MaxConn needs with the
	// reserved ones (show info's Maxsock).
	MaxSock int
	// Derived says MaxConn was computed from FDLimit, not configured.
	Derived bool
}

// PlanMaxConn returns the global maxconn as HAProxy 2.6 sets it: the
// configured value when positive, otherwise (fdLimit − reserved) / 2 but
// at least MinMaxConn, where reserved counts ReservedFDs, the listeners,
// the checks, the pollers and the admin clients. Like HAProxy, it refuses a maxconn whose
// descriptors do not fit in fdLimit ("Cannot raise FD limit"), rather than
// run out of descriptors under load. An fdLimit of 0 (unknown) skips the
// derivation and the check.
func PlanMaxConn(configured, fdLimit int, s Sockets) (Plan, error) {
	p := Plan{FDLimit: fdLimit, MaxConn: configured}
	if fdLimit <= 0 {
		if configured > 0 {
			p.MaxSock = FDsPerConn*configured + s.reserved()
		}
		return p, nil
	}
	if p.MaxConn <= 0 {
		p.MaxConn = max((fdLimit-s.reserved())/FDsPerConn, MinMaxConn)
		p.Derived = true
	}
	p.MaxSock = FDsPerConn*p.MaxConn + s.reserved()
	if p.MaxSock > fdLimit {
		return p, fmt.Errorf("global maxconn %d needs %d file descriptors, but the limit (ulimit -n) is %d: raise the limit or lower maxconn", p.MaxConn, p.MaxSock, fdLimit)
	}
	return p, nil
}

// FrontendMaxConn returns a frontend's effective maxconn: its own when
// set, otherwise the global one, as in HAProxy.
func FrontendMaxConn(frontend, global int) int {
	if frontend > 0 {
		return frontend
	}
	return global
}
