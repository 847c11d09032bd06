package discovery

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"

	"tether/balancer"
)

// LookupFunc resolves a host name with the system resolver.
type LookupFunc func(ctx context.Context, host string) ([]netip.Addr, error)

// InitAddrs gives every server whose address is a host name its first
// address, as HAProxy's init-addr does before the first DNS answer, and
// returns the configuration to build the balancer from.
//
// Every slot of a server-template runs init-addr on its own, so with libc
// every slot starts with the same first address, as in HAProxy, and the
// resolvers spread them out on the first answer. A template of which some
// slot got an address is expanded into its servers (prefix+N, in order,
// after the backend's other servers); a template whose slots all start
// without one (init-addr none, the usual case) is returned as it is, and
// the balancer expands it. The methods are tried in order and the first that works wins:
// "last" takes the address from last (keyed "backend/server"), "libc"
// calls lookup (net.DefaultResolver when nil) and prefers the family of
// resolve-prefer, "none" leaves Address "" so the balancer starts the
// server in maintenance-by-resolution, and an IP literal is used as is.
// Without init-addr the methods are last,libc, plus none when the server
// has resolvers. SRV names (a leading "_") never resolve with libc.
//
// Servers that already have an IP literal, or no address, are unchanged.
// A server for which every method fails, or that names an unknown method,
// gets Address "" and an error; HAProxy refuses to start in that case.
// The input is not modified.
func InitAddrs(ctx context.Context, cfg balancer.Config, lookup LookupFunc, last map[string]netip.AddrPort) (balancer.Config, []error) {
	if lookup == nil {
		lookup = func(ctx context.Context, host string) ([]netip.Addr, error) {
			return net.DefaultResolver.LookupNetIP(ctx, "ip", host)
		}
	}
	out := cfg
	out.Backends = make([]balancer.Backend, len(cfg.Backends))
	var errs []error
	for i, be := range cfg.Backends {
		nb := be
		nb.Servers = append([]balancer.Server(nil), be.Servers...)
		nb.Templates = nil
		for j := range nb.Servers {
			s := &nb.Servers[j]
			if s.Address == "" || isIP(s.Address) {
				continue
			}
			addr, err := initAddr(ctx, be.Name, *s, lookup, last)
			s.Address = addr
			if err != nil {
				errs = append(errs, err)
			}
		}
		var expanded []balancer.Server
		for _, t := range be.Templates {
			slots := make([]balancer.Server, 0, t.High-t.Low+1)
			resolved := false
			for _, name := range t.Names() {
				s := t.Params
				s.Name = name
				s.Address = t.FQDN
				s.InitAddr = append([]string(nil), t.Params.InitAddr...)
				if !isIP(t.FQDN) {
					addr, err := initAddr(ctx, be.Name, s, lookup, last)
					s.Address = addr
					if err != nil {
						errs = append(errs, err)
					}
				}
				resolved = resolved || s.Address != ""
				slots = append(slots, s)
			}
			if resolved {
				expanded = append(expanded, slots...)
			} else {
				// Every slot starts without an address: the balancer
				// expands the template itself and keeps its FQDN.
				nb.Templates = append(nb.Templates, t)
			}
		}
		nb.Servers = append(nb.Servers, expanded...)
		out.Backends[i] = nb
	}
	return out, errs
}

// initAddr runs a server's init-addr methods and returns its address.
func initAddr(ctx context.Context, backend string, s balancer.Server, lookup LookupFunc, last map[string]netip.AddrPort) (string, error) {
	methods := s.InitAddr
	if len(methods) == 0 {
		methods = []string{"last", "libc"}
		if s.Resolvers != "" {
			methods = append(methods, "none")
		}
	}
	host := s.Address
	var failures []string
	for _, m := range methods {
		switch m {
		case "last":
			if ap, ok := last[backend+"/"+s.Name]; ok && ap.Addr().IsValid() {
				return ap.Addr().Unmap().String(), nil
			}
			failures = append(failures, "no last address")
		case "libc":
			if strings.HasPrefix(host, "_") {
				failures = append(failures, "an SRV name does not resolve with libc")
				continue
			}
			addrs, err := lookup(ctx, host)
			if a, ok := pickFamily(addrs, s.ResolvePrefer); err == nil && ok {
				return a.String(), nil
			}
			failures = append(failures, fmt.Sprintf("could not resolve address '%s'", host))
		case "none":
			return "", nil
		default:
			a, err := netip.ParseAddr(m)
			if err != nil {
				return "", fmt.Errorf("init-addr of server %s/%s: unknown init-addr method '%s', supported methods are 'libc', 'last', 'none'", backend, s.Name, m)
			}
			return a.Unmap().String(), nil
		}
	}
	return "", fmt.Errorf("init-addr of server %s/%s (%s): %w", backend, s.Name, strings.Join(failures, "; "), errNoInitAddr)
}

var errNoInitAddr = errors.New("no init-addr method gave an address")

// pickFamily returns the first address of the preferred family ("ipv4" or
// "ipv6"), or the first address when the family has none or prefer is "".
func pickFamily(addrs []netip.Addr, prefer string) (netip.Addr, bool) {
	if len(addrs) == 0 {
		return netip.Addr{}, false
	}
	for _, a := range addrs {
		a = a.Unmap()
		if (prefer == "ipv4" && a.Is4()) || (prefer == "ipv6" && a.Is6()) {
			return a, true
		}
	}
	return addrs[0].Unmap(), true
}
