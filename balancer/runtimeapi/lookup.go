package runtimeapi

import (
	"strings"

	"tether/balancer"
)

// backendByName finds a backend by name or "#<id>", as HAProxy's
// proxy_be_by_name does.
func backendByName(snap *balancer.Snapshot, name string) *balancer.BackendStatus {
	if id, ok := hashID(name); ok {
		for i := range snap.Backends {
			if snap.Backends[i].ID == id {
				return &snap.Backends[i]
			}
		}
		return nil
	}
	for i := range snap.Backends {
		if snap.Backends[i].Config.Name == name {
			return &snap.Backends[i]
		}
	}
	return nil
}

// serverByName finds a server of be by name or "#<id>".
func serverByName(be *balancer.BackendStatus, name string) *balancer.ServerStatus {
	if id, ok := hashID(name); ok {
		for i := range be.Servers {
			if be.Servers[i].ID == id {
				return &be.Servers[i]
			}
		}
		return nil
	}
	for i := range be.Servers {
		if be.Servers[i].Config.Name == name {
			return &be.Servers[i]
		}
	}
	return nil
}

// hashID parses "#<id>" the way HAProxy does (atoi after the '#').
func hashID(name string) (int, bool) {
	if !strings.HasPrefix(name, "#") {
		return 0, false
	}
	return atoi(name[1:]), true
}

// atoi parses a leading decimal integer like C's atoi: leading blanks,
// an optional sign, digits, anything after ignored, 0 when none.
func atoi(s string) int {
	v, _, _ := strtol(s)
	return int(v)
}

// strtol parses like C's strtol in base 10. It returns the value, the
// unparsed rest, and whether any digit was read. Out-of-range values are
// clamped.
func strtol(s string) (int64, string, bool) {
	i := 0
	for i < len(s) && (s[i] == ' ' || (s[i] >= '\t' && s[i] <= '\r')) {
		i++
	}
	neg := false
	if i < len(s) && (s[i] == '+' || s[i] == '-') {
		neg = s[i] == '-'
		i++
	}
	start := i
	var v int64
	over := false
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		if v > (1<<62)/5 {
			over = true
		} else {
			v = v*10 + int64(s[i]-'0')
		}
		i++
	}
	if i == start {
		return 0, s, false
	}
	if over {
		v = 1<<63 - 1
	}
	if neg {
		v = -v
	}
	return v, s[i:], true
}

// findServer resolves "backend/server" like HAProxy's cli_find_server,
// writing its error replies.
func (c *call) findServer(snap *balancer.Snapshot, arg string) (*balancer.BackendStatus, *balancer.ServerStatus) {
	beName, srvName, _ := strings.Cut(arg, "/")
	if srvName == "" || beName == "" {
		c.err("Require 'backend/server'.\n")
		return nil, nil
	}
	be := backendByName(snap, beName)
	if be == nil {
		c.err("No such backend.\n")
		return nil, nil
	}
	sv := serverByName(be, srvName)
	if sv == nil {
		c.err("No such server.\n")
		return nil, nil
	}
	return be, sv
}

// findBackend resolves a backend argument like HAProxy's cli_find_backend.
func (c *call) findBackend(snap *balancer.Snapshot, arg string) *balancer.BackendStatus {
	if arg == "" {
		c.err("A backend name is expected.\n")
		return nil
	}
	be := backendByName(snap, arg)
	if be == nil {
		c.err("No such backend.\n")
	}
	return be
}

// arg returns the i-th word, or "" when there are fewer words.
func (c *call) arg(i int) string {
	if i < len(c.args) {
		return c.args[i]
	}
	return ""
}
