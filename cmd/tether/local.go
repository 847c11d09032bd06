package main

import (
	"fmt"
	"slices"
	"strings"

	"tether/balancer"
)

// bindFlag collects -bind FRONTEND=ADDR[,ADDR...] flags: bind addresses
// that replace a frontend's configured ones on this node only, so that
// several nodes sharing one configuration run on one host, or nodes with
// different addresses share one configuration. The n-th address replaces
// the address of the frontend's n-th bind line, which keeps its other
// settings (TLS); a frontend gets as many addresses as it has bind lines.
type bindFlag map[string][]string

func (f bindFlag) String() string {
	var out []string
	for _, name := range slices.Sorted(func(yield func(string) bool) {
		for k := range f {
			if !yield(k) {
				return
			}
		}
	}) {
		out = append(out, name+"="+strings.Join(f[name], ","))
	}
	return strings.Join(out, " ")
}

func (f bindFlag) Set(v string) error {
	name, addrs, ok := strings.Cut(v, "=")
	if !ok || name == "" {
		return fmt.Errorf("want FRONTEND=ADDR[,ADDR...], got %q", v)
	}
	list := splitList(addrs)
	if len(list) == 0 {
		return fmt.Errorf("frontend %s: no bind address in %q", name, v)
	}
	f[name] = list
	return nil
}

// check returns an error naming a frontend cfg does not have, or one
// given more or fewer addresses than it has bind lines.
func (f bindFlag) check(cfg balancer.Config) error {
	for name, addrs := range f {
		i := slices.IndexFunc(cfg.Frontends, func(fe balancer.Frontend) bool { return fe.Name == name })
		if i < 0 {
			return fmt.Errorf("-bind %s=%s: the configuration has no frontend %q", name, strings.Join(addrs, ","), name)
		}
		if n := len(cfg.Frontends[i].Binds); n != len(addrs) {
			return fmt.Errorf("-bind %s=%s: frontend %s has %d bind line(s); give one address for each", name, strings.Join(addrs, ","), name, n)
		}
	}
	return nil
}

// apply returns cfg with the frontends' binds replaced by the node's.
// The balancer and the database keep the shared ones.
func (f bindFlag) apply(cfg balancer.Config) balancer.Config {
	if len(f) == 0 {
		return cfg
	}
	fes := slices.Clone(cfg.Frontends)
	for i, fe := range fes {
		addrs, ok := f[fe.Name]
		if !ok || len(addrs) != len(fe.Binds) {
			continue
		}
		binds := slices.Clone(fe.Binds)
		for j := range binds {
			binds[j].Addr = addrs[j]
		}
		fes[i].Binds = binds
	}
	cfg.Frontends = fes
	return cfg
}
