package main

import (
	"flag"
	"fmt"
	"io"
	"net/netip"
	"strconv"

	"tether/balancer"
)

// runCookie prints the dynamic cookie of each ADDR[:PORT] argument.
func runCookie(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("cookie", flag.ContinueOnError)
	fs.SetOutput(stderr)
	key := fs.String("key", "", "the backend's dynamic-cookie-key")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *key == "" || fs.NArg() == 0 {
		return fmt.Errorf("usage: tether cookie -key KEY ADDR[:PORT] ...")
	}
	for _, arg := range fs.Args() {
		addr, port, err := parseAddrPort(arg)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s %s\n", arg, balancer.DynamicCookie(*key, addr, port))
	}
	return nil
}

// parseAddrPort accepts "IP", "IP:PORT" and "[IPv6]:PORT".
func parseAddrPort(s string) (netip.Addr, int32, error) {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr(), int32(ap.Port()), nil
	}
	if a, err := netip.ParseAddr(s); err == nil {
		return a, 0, nil
	}
	for i := len(s) - 1; i >= 0; i-- {
		if s[i] == ':' {
			a, err := netip.ParseAddr(s[:i])
			p, perr := strconv.Atoi(s[i+1:])
			if err == nil && perr == nil && p >= 0 && p <= 65535 {
				return a, int32(p), nil
			}
			break
		}
	}
	return netip.Addr{}, 0, fmt.Errorf("%q is not an IP address with an optional port", s)
}
