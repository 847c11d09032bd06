package web

import (
	"crypto/sha256"
	"crypto/subtle"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"tether/balancer"
)

// collector exports a balancer snapshot as Prometheus metrics at scrape
// time, sticky counters included. Addresses and cookie values are not
// exported.
type collector struct {
	bal Balancer

	feCur, feReq, feResp                       *prometheus.Desc
	beCur, beReq, beResp, beUp, beDyn, beNoSrv *prometheus.Desc
	beSticky, beRedisp, beGrace, beOldClients  *prometheus.Desc
	srvUp, srvState, srvWeight, srvCur         *prometheus.Desc
	srvTot, srvResp, srvSticky, srvCheckDur    *prometheus.Desc
	srvConnErr, srvDowns                       *prometheus.Desc
}

func newCollector(bal Balancer) *collector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc("tether_"+name, help, labels, nil)
	}
	fe, be, srv := []string{"frontend"}, []string{"backend"}, []string{"backend", "server"}
	return &collector{
		bal:          bal,
		feCur:        d("frontend_current_sessions", "Current sessions of the frontend.", fe...),
		feReq:        d("frontend_requests_total", "HTTP requests received by the frontend.", fe...),
		feResp:       d("frontend_responses_total", "HTTP responses of the frontend by class.", "frontend", "code"),
		beCur:        d("backend_current_sessions", "Current sessions of the backend.", be...),
		beReq:        d("backend_requests_total", "HTTP requests sent to the backend.", be...),
		beResp:       d("backend_responses_total", "HTTP responses of the backend by class.", "backend", "code"),
		beUp:         d("backend_servers_up", "Servers of the backend that are up and not in maintenance.", be...),
		beDyn:        d("backend_dynamic_cookies", "1 when dynamic cookies are enabled on the backend.", be...),
		beNoSrv:      d("backend_no_server_total", "Requests refused with 503 because no server was usable.", be...),
		beSticky:     d("backend_sticky_total", "Cookie persistence outcomes of the backend: pinned, new, invalid, expired, redispatched; old_key and old_addr (cookies honoured in a grace window), reissued.", "backend", "outcome"),
		beOldClients: d("backend_dynamic_cookie_old_clients", "Estimated distinct clients that came with a dynamic cookie of a retired key or previous address in the last five minutes: the clients still to migrate.", "backend"),
		beGrace:      d("backend_dynamic_cookie_grace_seconds", "Seconds left in the backend's longest open dynamic-cookie grace window, by kind (key, addr); 0 when none is open.", "backend", "kind"),
		beRedisp:     d("backend_redispatch_total", "Retries that were redispatched to another server.", be...),
		srvUp:        d("server_up", "1 when the server is up and not in maintenance.", srv...),
		srvState:     d("server_state", "The server's state as the console shows it (1 for the current one).", "backend", "server", "state"),
		srvWeight:    d("server_weight", "The server's current weight.", srv...),
		srvCur:       d("server_current_sessions", "Current sessions of the server.", srv...),
		srvTot:       d("server_sessions_total", "Sessions (requests) sent to the server.", srv...),
		srvResp:      d("server_responses_total", "HTTP responses of the server by class.", "backend", "server", "code"),
		srvSticky:    d("server_sticky_total", "Cookie persistence outcomes of the server: pinned, new, invalid, expired, redispatched; old_key and old_addr (cookies honoured in a grace window), reissued.", "backend", "server", "outcome"),
		srvCheckDur:  d("server_check_duration_seconds", "Duration of the server's last health check.", srv...),
		srvConnErr:   d("server_connection_errors_total", "Failed connections to the server.", srv...),
		srvDowns:     d("server_downs_total", "Transitions of the server from up to down.", srv...),
	}
}

// Describe sends every metric description.
func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.feCur, c.feReq, c.feResp, c.beCur, c.beReq, c.beResp, c.beUp, c.beDyn,
		c.beNoSrv, c.beSticky, c.beRedisp, c.beGrace, c.beOldClients, c.srvUp, c.srvState, c.srvWeight, c.srvCur, c.srvTot, c.srvResp,
		c.srvSticky, c.srvCheckDur, c.srvConnErr, c.srvDowns} {
		ch <- d
	}
}

// codeLabel names a ResponseClasses index: 1xx..5xx, then other.
func codeLabel(k int) string {
	if k >= 5 {
		return "other"
	}
	return string(rune('1'+k)) + "xx"
}

// Collect reads one snapshot and sends its metrics.
func (c *collector) Collect(ch chan<- prometheus.Metric) {
	snap := c.bal.Snapshot()
	send := func(d *prometheus.Desc, t prometheus.ValueType, v float64, labels ...string) {
		m, err := prometheus.NewConstMetric(d, t, v, labels...)
		if err != nil {
			m = prometheus.NewInvalidMetric(d, err)
		}
		ch <- m
	}
	sticky := func(d *prometheus.Desc, st balancer.StickyCounters, labels ...string) {
		for _, o := range []struct {
			name string
			v    int64
		}{{"pinned", st.Pinned}, {"new", st.NewSessions}, {"invalid", st.Invalid}, {"expired", st.Expired}, {"redispatched", st.Redispatched},
			{"old_key", st.OldKey}, {"old_addr", st.OldAddr}, {"reissued", st.Reissued}} {
			send(d, prometheus.CounterValue, float64(o.v), append(labels, o.name)...)
		}
	}
	for i := range snap.Frontends {
		f := &snap.Frontends[i]
		n := f.Config.Name
		send(c.feCur, prometheus.GaugeValue, float64(f.Stats.CurSessions), n)
		send(c.feReq, prometheus.CounterValue, float64(f.Stats.TotalRequests), n)
		for k, v := range f.Stats.Responses {
			send(c.feResp, prometheus.CounterValue, float64(v), n, codeLabel(k))
		}
	}
	for i := range snap.Backends {
		b := &snap.Backends[i]
		n := b.Config.Name
		send(c.beCur, prometheus.GaugeValue, float64(b.Stats.CurSessions), n)
		send(c.beReq, prometheus.CounterValue, float64(b.Stats.TotalRequests), n)
		for k, v := range b.Stats.Responses {
			send(c.beResp, prometheus.CounterValue, float64(v), n, codeLabel(k))
		}
		dyn := 0.0
		if b.DynamicCookies() {
			dyn = 1
		}
		send(c.beDyn, prometheus.GaugeValue, dyn, n)
		send(c.beNoSrv, prometheus.CounterValue, float64(b.Stats.NoServer), n)
		send(c.beRedisp, prometheus.CounterValue, float64(b.Stats.Redispatches), n)
		sticky(c.beSticky, b.Stats.Sticky, n)
		keyLeft, addrLeft := graceLeft(b, snap.Taken)
		send(c.beGrace, prometheus.GaugeValue, keyLeft.Seconds(), n, "key")
		send(c.beGrace, prometheus.GaugeValue, addrLeft.Seconds(), n, "addr")
		send(c.beOldClients, prometheus.GaugeValue, float64(b.Stats.Sticky.OldClients), n)
		up := 0
		for j := range b.Servers {
			sv := &b.Servers[j]
			s := sv.Config.Name
			isUp := 0.0
			if sv.Running() {
				isUp, up = 1, up+1
			}
			send(c.srvUp, prometheus.GaugeValue, isUp, n, s)
			cls, _ := stateClass(sv)
			send(c.srvState, prometheus.GaugeValue, 1, n, s, cls)
			send(c.srvWeight, prometheus.GaugeValue, float64(sv.Weight), n, s)
			send(c.srvCur, prometheus.GaugeValue, float64(sv.Stats.CurSessions), n, s)
			send(c.srvTot, prometheus.CounterValue, float64(sv.Stats.TotalSessions), n, s)
			for k, v := range sv.Stats.Responses {
				send(c.srvResp, prometheus.CounterValue, float64(v), n, s, codeLabel(k))
			}
			sticky(c.srvSticky, sv.Stats.Sticky, n, s)
			send(c.srvCheckDur, prometheus.GaugeValue, sv.Check.Duration.Seconds(), n, s)
			send(c.srvConnErr, prometheus.CounterValue, float64(sv.Stats.ConnErrors), n, s)
			send(c.srvDowns, prometheus.CounterValue, float64(sv.Stats.Downs), n, s)
		}
		send(c.beUp, prometheus.GaugeValue, float64(up), n)
	}
}

// newMetricsRegistry returns a registry with the balancer's collector and
// the Go runtime and process collectors.
func newMetricsRegistry(log *slog.Logger, bal Balancer) *prometheus.Registry {
	reg := prometheus.NewRegistry()
	for _, c := range []prometheus.Collector{newCollector(bal), collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})} {
		if err := reg.Register(c); err != nil {
			log.Error("register metrics collector", "error", err)
		}
	}
	return reg
}

// handleMetrics serves /metrics: to any client by default; with
// Options.MetricsHosts only on those host names (404 on others, so the
// console's public name does not expose it); with Options.MetricsToken only
// to requests bearing it ("Authorization: Bearer TOKEN", 401 otherwise).
func (s *Server) handleMetrics() http.Handler {
	h := promhttp.HandlerFor(s.metrics, promhttp.HandlerOpts{})
	want := sha256.Sum256([]byte("Bearer " + s.opts.MetricsToken))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if len(s.opts.MetricsHosts) > 0 && !hostAllowed(r.Host, s.opts.MetricsHosts) {
			s.serveError(w, r, notFound("no such page"))
			return
		}
		if s.opts.MetricsToken != "" {
			got := sha256.Sum256([]byte(r.Header.Get("Authorization")))
			if subtle.ConstantTimeCompare(got[:], want[:]) != 1 {
				w.Header().Set("WWW-Authenticate", `Bearer realm="tether metrics"`)
				http.Error(w, "metrics need a bearer token", http.StatusUnauthorized)
				return
			}
		}
		h.ServeHTTP(w, r)
	})
}

// hostAllowed reports whether the request's Host, without its port, is one
// of hosts (compared without case).
func hostAllowed(host string, hosts []string) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.Trim(host, "[]"), ".")
	for _, h := range hosts {
		if strings.EqualFold(host, strings.Trim(h, "[]")) {
			return true
		}
	}
	return false
}

// graceLeft returns how long the backend's longest open dynamic-cookie
// grace windows last from now: the retired keys' and the previous
// addresses'.
func graceLeft(b *balancer.BackendStatus, now time.Time) (key, addr time.Duration) {
	for _, rk := range b.RetiredKeys {
		key = max(key, rk.Until.Sub(now))
	}
	for i := range b.Servers {
		for _, pa := range b.Servers[i].PrevAddrs {
			addr = max(addr, pa.Until.Sub(now))
		}
	}
	return key, addr
}
