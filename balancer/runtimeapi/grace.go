package runtimeapi

import (
	"fmt"
	"strings"
	"time"

	"tether/balancer"
)

// graceArg reads the delay at word i of a grace command, in HAProxy's time
// syntax (a bare number counts milliseconds, as for HAProxy's timeouts).
func (c *call) graceArg(i int, usage string) (time.Duration, bool) {
	v := c.arg(i)
	d, rest, err := balancer.ParseHAProxyTime(v, time.Millisecond)
	if err != nil || rest != "" {
		c.err(fmt.Sprintf("'%s' expects a delay such as 30m, 2h or 0.\n", usage))
		return 0, false
	}
	return d, true
}

// cmdSetDynamicCookieAddrGrace runs "set dynamic-cookie-addr-grace backend
// <bk> <delay>": from then on, when a server's address or port changes,
// cookies computed from the previous ones keep reaching it for <delay>.
func cmdSetDynamicCookieAddrGrace(c *call) {
	be := c.findBackend(c.d.b.Snapshot(), c.arg(3))
	if be == nil {
		return
	}
	d, ok := c.graceArg(4, "set dynamic-cookie-addr-grace backend <bk>")
	if !ok {
		return
	}
	c.applyReport(balancer.SetDynamicCookieAddrGrace{Backend: be.Config.Name, Grace: d})
}

// graceHeader documents the columns of show dynamic-cookie-grace, format
// version 1: one "addr-grace" line per backend with its setting, then one
// line per open window: "key" with a retired key's fingerprint, "addr"
// with a server's previous address, each with when it ends (RFC 3339) and
// the seconds left.
const graceHeader = "1\n# be_id be_name kind subject until remaining_s\n"

func cmdShowDynamicCookieGrace(c *call) {
	snap := c.d.b.Snapshot()
	bes, ok := c.backendsArg(snap, c.arg(2))
	if !ok {
		return
	}
	legends := c.s.level >= balancer.LevelOperator
	var b strings.Builder
	b.WriteString(graceHeader)
	window := func(be *balancer.BackendStatus, kind, subject string, until time.Time) {
		left := max(0, int64((until.Sub(snap.Taken)+time.Second-1)/time.Second))
		fmt.Fprintf(&b, "%d %s %s %s %s %d\n", be.ID, be.Config.Name, kind, subject, until.UTC().Format(time.RFC3339), left)
	}
	for i := range bes {
		be := &bes[i]
		fmt.Fprintf(&b, "%d %s addr-grace %s - -\n", be.ID, be.Config.Name, balancer.FormatHAProxyTime(be.Config.DynamicCookieAddrGrace))
		for _, rk := range be.RetiredKeys {
			window(be, "key", rk.Fingerprint, rk.Until)
		}
		for _, sv := range be.Servers {
			for _, pa := range sv.PrevAddrs {
				subject := sv.Config.Name
				if legends {
					subject += "@" + pa.Address + ":" + fmt.Sprint(pa.Port)
				}
				window(be, "addr", subject, pa.Until)
			}
		}
	}
	c.dump(b.String())
}
