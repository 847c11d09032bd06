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
// different addresses share one configuration.
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

// check returns an error naming a frontend cfg does not have.
func (f bindFlag) check(cfg balancer.Config) error {
	for name := range f {
		if !slices.ContainsFunc(cfg.Frontends, func(fe balancer.Frontend) bool { return fe.Name == name }) {
			return fmt.Errorf("-bind %s: the configuration has no frontend %q", f.String(), name)
		}
	}
	return nil
}

// apply returns cfg with the frontends' bind addresses replaced by the
// node's; the n-th address keeps the TLS settings of the n-th shared bind
// (the last one's when the node lists more). The balancer and the database
// keep the shared ones.
func (f bindFlag) apply(cfg balancer.Config) balancer.Config {
	if len(f) == 0 {
		return cfg
	}
	fes := slices.Clone(cfg.Frontends)
	for i, fe := range fes {
		if addrs, ok := f[fe.Name]; ok {
			binds := make([]balancer.Bind, len(addrs))
			for j, a := range addrs {
				binds[j].Addr = a
				if n := len(fe.Binds); n > 0 {
					binds[j].TLS = fe.Binds[min(j, n-1)].TLS
				}
			}
			fes[i].Binds = binds
		}
	}
	cfg.Frontends = fes
	return cfg
}
