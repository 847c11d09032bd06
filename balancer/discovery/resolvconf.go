package discovery

import (
	"bufio"
	"net"
	"net/netip"
	"os"
	"strings"

	"tether/balancer"
)

// readResolvConf returns the nameservers of a resolv.conf file, named by
// their address and queried on port 53, as HAProxy's parse-resolv-conf
// does. An unreadable file yields none.
func readResolvConf(path string) []balancer.Nameserver {
	if path == "" {
		return nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []balancer.Nameserver
	seen := map[string]bool{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		rest, ok := strings.CutPrefix(line, "nameserver")
		if !ok || rest == "" || (rest[0] != ' ' && rest[0] != '\t') {
			continue
		}
		fields := strings.Fields(rest)
		if len(fields) == 0 {
			continue
		}
		addr, err := netip.ParseAddr(fields[0])
		if err != nil || seen[fields[0]] {
			continue
		}
		seen[fields[0]] = true
		out = append(out, balancer.Nameserver{
			Name:    fields[0],
			Address: net.JoinHostPort(addr.String(), "53"),
		})
	}
	return out
}
