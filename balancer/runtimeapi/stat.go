package runtimeapi

import (
	"fmt"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"

	"tether/balancer"
	"tether/balancer/connlimit"
)

// statField describes one column of HAProxy 2.6's statistics: its name,
// typed-output tags (origin, nature, scope) and value type.
type statField struct {
	name string
	tags string
	typ  string
}

// statFields are HAProxy 2.6's statistics columns in order: the 103 static
// fields, then the SSL, HTTP/2 and HTTP/1 module fields that 2.6 prints
// after the "-" column.
var statFields = func() []statField {
	const spec = `pxname:KNS:str svname:KNS:str qcur:MGP:u32 qmax:MMP:u32 scur:MGP:u32 smax:MMP:u32
slim:CLP:u32 stot:MCP:u64 bin:MCP:u64 bout:MCP:u64 dreq:MCP:u64 dresp:MCP:u64 ereq:MCP:u64
econ:MCP:u64 eresp:MCP:u64 wretr:MCP:u64 wredis:MCP:u64 status:SGP:str weight:MaP:u32
act:SGP:u32 bck:SGP:u32 chkfail:MCP:u64 chkdown:MCP:u64 lastchg:MAP:u32 downtime:MCP:u32
qlimit:CLP:u32 pid:KGP:u32 iid:KGS:u32 sid:KGS:u32 throttle:MGP:u32 lbtot:MCP:u64
tracked:CNS:str type:CGS:u32 rate:MRP:u32 rate_lim:CLP:u32 rate_max:MMP:u32
check_status:MOP:str check_code:MOP:u32 check_duration:MDP:u64 hrsp_1xx:MCP:u64
hrsp_2xx:MCP:u64 hrsp_3xx:MCP:u64 hrsp_4xx:MCP:u64 hrsp_5xx:MCP:u64 hrsp_other:MCP:u64
hanafail:MCP:u64 req_rate:MRP:u32 req_rate_max:MMP:u32 req_tot:MCP:u64 cli_abrt:MCP:u64
srv_abrt:MCP:u64 comp_in:MCP:u64 comp_out:MCP:u64 comp_byp:MCP:u64 comp_rsp:MCP:u64
lastsess:MAP:s32 last_chk:MOP:str last_agt:MOP:str qtime:MaP:u32 ctime:MaP:u32 rtime:MaP:u32
ttime:MaP:u32 agent_status:MOP:str agent_code:MOP:u32 agent_duration:MDP:u64
check_desc:MOP:str agent_desc:MOP:str check_rise:CGS:u32 check_fall:CGS:u32
check_health:CGS:u32 agent_rise:MaS:u32 agent_fall:MaS:u32 agent_health:MaS:u32
addr:CGS:str cookie:CNS:str mode:CGS:str algo:CGS:str conn_rate:MRP:u32
conn_rate_max:MMP:u32 conn_tot:MCP:u64 intercepted:MCP:u64 dcon:MCP:u64 dses:MCP:u64
wrew:MCP:u64 connect:MCP:u64 reuse:MCP:u64 cache_lookups:MCP:u64 cache_hits:MCP:u64
srv_icur:MGP:u32 src_ilim:MGP:u32 qtime_max:MMP:u32 ctime_max:MMP:u32 rtime_max:MMP:u32
ttime_max:MMP:u32 eint:MCP:u64 idle_conn_cur:MGP:u32 safe_conn_cur:MGP:u32
used_conn_cur:MGP:u32 need_conn_est:MGP:u32 uweight:MaP:u32 agg_server_status:MGP:u32
agg_server_check_status:MGP:u32 agg_check_status:MGP:u32
ssl_sess:MCP:u64 ssl_reused_sess:MCP:u64 ssl_failed_handshake:MCP:u64
h2_headers_rcvd:MCP:u64 h2_data_rcvd:MCP:u64 h2_settings_rcvd:MCP:u64
h2_rst_stream_rcvd:MCP:u64 h2_goaway_rcvd:MCP:u64 h2_detected_conn_protocol_errors:MCP:u64
h2_detected_strm_protocol_errors:MCP:u64 h2_rst_stream_resp:MCP:u64 h2_goaway_resp:MCP:u64
h2_open_connections:MGP:u64 h2_backend_open_streams:MGP:u64 h2_total_connections:MCP:u64
h2_backend_total_streams:MCP:u64 h1_open_connections:MGP:u64 h1_open_streams:MGP:u64
h1_total_connections:MCP:u64 h1_total_streams:MCP:u64 h1_bytes_in:MCP:u64
h1_bytes_out:MCP:u64 h1_spliced_bytes_in:MCP:u64 h1_spliced_bytes_out:MCP:u64`
	var fs []statField
	for _, f := range strings.Fields(spec) {
		p := strings.Split(f, ":")
		fs = append(fs, statField{p[0], p[1], p[2]})
	}
	return fs
}()

// backendTags are the fields whose tags differ on BACKEND rows in 2.6.
var backendTags = map[int]string{19: "MGP", 20: "MGP", 33: "MGP", 35: "MGP"}

// tagsFor returns the typed-output tags of field pos on a row of kind.
func tagsFor(kind byte, pos int) string {
	if t, ok := backendTags[pos]; ok && kind == 'B' {
		return t
	}
	return statFields[pos].tags
}

// Positions of the statistics fields Tether fills.
const (
	stStaticFields = 103 // fields before the "-" column
	stSSL          = 103 // first SSL module field
	stH2           = 106
	stModulesEnd   = 127
)

// statRow is one line of show stat: the object kind ('F', 'B', 'S'),
// proxy and object IDs, and its field values ("" for absent).
type statRow struct {
	kind   byte
	iid    int
	sid    int
	values [stModulesEnd]string
}

func (r *statRow) set(pos int, v string) { r.values[pos] = v }
func (r *statRow) setN(pos int, v int64) { r.values[pos] = strconv.FormatInt(v, 10) }
func (r *statRow) zero(positions ...int) { r.fill(positions, "0") }
func (r *statRow) fill(ps []int, v string) {
	for _, p := range ps {
		r.values[p] = v
	}
}
func (r *statRow) zeroRange(from, to int) {
	for p := from; p < to; p++ {
		r.values[p] = "0"
	}
}
func (r *statRow) secondsSince(t time.Time, now time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return int64(now.Sub(t) / time.Second)
}

// statOptions are the arguments of show stat.
type statOptions struct {
	format   string // "", "typed" or "json"
	hideDown bool
	hideMnt  bool
	bound    bool
	iid      int
	typeMask int
	sid      int
}

func cmdShowStat(c *call) {
	opts := statOptions{iid: -1, typeMask: -1, sid: -1}
	arg := 2
	if c.arg(arg) == "domain" {
		arg++
		switch c.arg(arg) {
		case "proxy":
			arg++
		default:
			c.err("Invalid statistics domain.\n")
			return
		}
	}
	snap := c.d.b.Snapshot()
	if c.arg(arg) != "" && c.arg(arg+1) != "" && c.arg(arg+2) != "" {
		iid := proxyID(snap, c.arg(arg))
		if iid == 0 {
			c.err("No such proxy.\n")
			return
		}
		opts.bound, opts.iid = true, iid
		opts.typeMask = atoi(c.arg(arg + 1))
		opts.sid = atoi(c.arg(arg + 2))
		arg += 3
	}
	for ; arg < len(c.args); arg++ {
		switch c.args[arg] {
		case "typed", "json":
			opts.format = c.args[arg]
		case "no-maint":
			opts.hideMnt = true
		case "up":
			opts.hideDown = true
		}
	}
	rows := c.d.statRows(snap, opts, c.s.level >= balancer.LevelOperator)
	switch opts.format {
	case "typed":
		c.dump(typedStat(rows))
	case "json":
		c.dump(jsonStat(rows))
	default:
		c.dump(csvStat(rows))
	}
}

// proxyID resolves a proxy name or number like HAProxy's show stat filter.
func proxyID(snap *balancer.Snapshot, arg string) int {
	for _, fe := range snap.Frontends {
		if fe.Config.Name == arg {
			return fe.ID
		}
	}
	for _, be := range snap.Backends {
		if be.Config.Name == arg {
			return be.ID
		}
	}
	return atoi(arg)
}

// proxyEntry is a frontend or backend in HAProxy's proxy order.
type proxyEntry struct {
	id int
	fe *balancer.FrontendStatus
	be *balancer.BackendStatus
}

// proxiesInOrder lists the proxies as HAProxy's show stat does: in
// declaration order, which balancer.ProxyOrder recovers from the IDs, a
// listen section's frontend and backend together.
func proxiesInOrder(snap *balancer.Snapshot) []proxyEntry {
	fes := make([]balancer.ProxyRef, len(snap.Frontends))
	for i, f := range snap.Frontends {
		fes[i] = balancer.ProxyRef{Name: f.Config.Name, ID: f.ID}
	}
	bes := make([]balancer.ProxyRef, len(snap.Backends))
	for i, b := range snap.Backends {
		bes[i] = balancer.ProxyRef{Name: b.Config.Name, ID: b.ID}
	}
	order := balancer.ProxyOrder(fes, bes)
	ps := make([]proxyEntry, len(order))
	for i, p := range order {
		if p.Frontend >= 0 {
			ps[i].fe = &snap.Frontends[p.Frontend]
			ps[i].id = ps[i].fe.ID
		}
		if p.Backend >= 0 {
			ps[i].be = &snap.Backends[p.Backend]
			ps[i].id = ps[i].be.ID
		}
	}
	return ps
}

func (d *Dispatcher) statRows(snap *balancer.Snapshot, o statOptions, legends bool) []*statRow {
	now := d.opts.Now()
	var rows []*statRow
	for _, p := range proxiesInOrder(snap) {
		if o.iid != -1 && p.id != o.iid {
			continue
		}
		if p.fe != nil && o.typeMask&1 != 0 {
			rows = append(rows, frontendRow(p.fe, d.opts.MaxConn.MaxConn))
		}
		if p.be == nil {
			continue
		}
		if o.typeMask&4 != 0 {
			for i := range p.be.Servers {
				sv := &p.be.Servers[i]
				if o.sid != -1 && sv.ID != o.sid {
					continue
				}
				maint := sv.InMaint()
				if o.hideMnt && maint {
					continue
				}
				if o.hideDown && (maint || sv.Op == balancer.OpStopped) {
					continue
				}
				rows = append(rows, serverRow(p.be, sv, legends, now))
			}
		}
		if o.typeMask&2 != 0 {
			r := backendRow(p.be, legends, now)
			if o.hideDown || o.hideMnt {
				// Filtered dumps tell how many servers are up out of all.
				up := 0
				for i := range p.be.Servers {
					if sv := &p.be.Servers[i]; !sv.InMaint() && sv.Op != balancer.OpStopped {
						up++
					}
				}
				r.values[17] += fmt.Sprintf(" (%d/%d)", up, len(p.be.Servers))
			}
			rows = append(rows, r)
		}
	}
	return rows
}

// frontendRow is a frontend's show stat line; globalMaxConn is the
// process's maxconn, the frontend's slim when it has none of its own.
func frontendRow(fe *balancer.FrontendStatus, globalMaxConn int) *statRow {
	r := &statRow{kind: 'F', iid: fe.ID}
	st := fe.Stats
	r.set(0, fe.Config.Name)
	r.set(1, "FRONTEND")
	r.setN(4, st.CurSessions)
	r.setN(5, st.MaxSessions)
	if slim := connlimit.FrontendMaxConn(fe.Config.MaxConn, globalMaxConn); slim > 0 {
		r.setN(6, int64(slim))
	}
	r.setN(7, st.TotalSessions)
	r.setN(8, st.BytesIn)
	r.setN(9, st.BytesOut)
	r.zero(10, 11)
	r.setN(12, st.RequestErrors)
	r.set(17, "OPEN")
	r.set(26, "1")
	r.setN(27, int64(fe.ID))
	r.zero(28, 32, 33, 34, 35)
	setResponses(r, st.Responses)
	r.zero(46, 47)
	r.setN(48, st.TotalRequests)
	r.zero(51, 52, 53, 54)
	r.set(75, "http")
	r.zero(77, 78)
	r.setN(79, st.TotalSessions)
	r.zero(80, 81, 82, 83, 86, 87, 94)
	r.zeroRange(stSSL, stModulesEnd)
	return r
}

func setResponses(r *statRow, rc balancer.ResponseClasses) {
	for i, n := range rc {
		r.setN(39+i, n)
	}
}

// checkDescriptions are HAProxy's texts for check statuses.
var checkDescriptions = map[string]string{
	"UNK": "Unknown", "INI": "Initializing", "SOCKERR": "Socket error",
	"L4OK": "Layer4 check passed", "L4TOUT": "Layer4 timeout", "L4CON": "Layer4 connection problem",
	"L6OK": "Layer6 check passed", "L6TOUT": "Layer6 timeout", "L6RSP": "Layer6 invalid response",
	"L7TOUT": "Layer7 timeout", "L7RSP": "Layer7 invalid response", "L7OK": "Layer7 check passed",
	"L7OKC": "Layer7 check conditionally passed", "L7STS": "Layer7 wrong status",
}

// checksShown reports whether HAProxy would print a server's check fields:
// its checks are configured, enabled and not paused by maintenance.
func checksShown(sv *balancer.ServerStatus) bool {
	return sv.Config.Check && sv.CheckEnabled && !sv.InMaint()
}

func serverRow(be *balancer.BackendStatus, sv *balancer.ServerStatus, legends bool, now time.Time) *statRow {
	r := &statRow{kind: 'S', iid: be.ID, sid: sv.ID}
	st := sv.Stats
	r.set(0, be.Config.Name)
	r.set(1, sv.Config.Name)
	r.setN(2, st.QueueCur)
	r.setN(3, st.QueueMax)
	r.setN(4, st.CurSessions)
	r.setN(5, st.MaxSessions)
	if sv.Config.MaxConn > 0 {
		r.setN(6, int64(sv.Config.MaxConn))
	}
	r.setN(7, st.TotalSessions)
	r.setN(8, st.BytesIn)
	r.setN(9, st.BytesOut)
	r.zero(11)
	r.setN(13, st.ConnErrors)
	r.setN(14, st.RespErrors)
	r.setN(15, st.Retries)
	r.setN(16, st.Redispatches)
	r.set(17, sv.StatusText())
	w := sv.Weight
	if sv.Admin&balancer.AdminFDrain != 0 {
		w = 0
	}
	r.setN(18, int64(w))
	if sv.Config.Backup {
		r.zero(19)
		r.set(20, "1")
	} else {
		r.set(19, "1")
		r.zero(20)
	}
	r.setN(23, r.secondsSince(sv.LastChange, now))
	if sv.Config.Check && sv.CheckEnabled {
		r.setN(21, st.ChecksFailed)
		r.setN(22, st.Downs)
		r.setN(24, int64(st.Downtime/time.Second))
	}
	if checksShown(sv) {
		status := sv.Check.Status
		if status == "" {
			status = "INI"
		}
		r.set(36, status)
		if sv.Check.Code != 0 {
			r.setN(37, int64(sv.Check.Code))
		}
		r.setN(38, sv.Check.Duration.Milliseconds())
		r.set(56, sv.Check.Description)
		r.set(65, checkDescriptions[status])
		r.setN(67, int64(sv.Config.Rise))
		r.setN(68, int64(sv.Config.Fall))
		r.setN(69, int64(sv.Check.Health))
	}
	r.set(26, "1")
	r.setN(27, int64(be.ID))
	r.setN(28, int64(sv.ID))
	r.setN(30, st.LBTotal)
	r.set(32, "2")
	r.zero(33, 35)
	setResponses(r, st.Responses)
	r.setN(48, st.TotalRequests)
	r.setN(49, st.CliAborts)
	r.setN(50, st.SrvAborts)
	if st.LastSession.IsZero() {
		r.set(55, "-1")
	} else {
		r.setN(55, r.secondsSince(st.LastSession, now))
	}
	r.zero(58, 59, 60, 61)
	if legends {
		if sv.Config.Address != "" {
			// HAProxy leaves the address empty until a host name resolves.
			r.set(73, hostPort(sv.Config.Address, sv.Config.Port))
		}
		if sv.Cookie != "" {
			r.set(74, sv.Cookie)
		}
	}
	r.set(75, "http")
	r.zero(83, 84, 85, 88, 90, 91, 92, 93, 94, 95, 96, 97, 98)
	r.setN(99, int64(sv.Weight))
	r.zeroRange(stSSL, stH2)
	return r
}

// hostPort formats an address as HAProxy's stats do: IPv6 in brackets.
func hostPort(addr string, port int) string {
	if strings.Contains(addr, ":") {
		addr = "[" + addr + "]"
	}
	return addr + ":" + strconv.Itoa(port)
}

func backendRow(be *balancer.BackendStatus, legends bool, now time.Time) *statRow {
	r := &statRow{kind: 'B', iid: be.ID}
	st := be.Stats
	r.set(0, be.Config.Name)
	r.set(1, "BACKEND")
	r.setN(2, st.QueueCur)
	r.setN(3, st.QueueMax)
	r.setN(4, st.CurSessions)
	r.setN(5, st.MaxSessions)
	r.setN(7, st.TotalSessions)
	r.setN(8, st.BytesIn)
	r.setN(9, st.BytesOut)
	r.zero(10, 11)
	r.setN(13, st.ConnErrors)
	r.setN(14, st.RespErrors)
	r.setN(15, st.Retries)
	r.setN(16, st.Redispatches)
	var act, bck, wact, wbck, uact, ubck int64
	for i := range be.Servers {
		sv := &be.Servers[i]
		if !sv.Usable() {
			continue
		}
		if sv.Config.Backup {
			bck++
			wbck += int64(sv.Weight)
			ubck += int64(sv.Weight)
		} else {
			act++
			wact += int64(sv.Weight)
			uact += int64(sv.Weight)
		}
	}
	weight, uweight := wact, uact
	if act == 0 {
		weight, uweight = wbck, ubck
	}
	if weight > 0 || len(be.Servers) == 0 {
		r.set(17, "UP")
	} else {
		r.set(17, "DOWN")
	}
	r.setN(18, weight)
	r.setN(19, act)
	r.setN(20, bck)
	r.setN(22, st.Downs)
	r.setN(23, r.secondsSince(st.LastChange, now))
	r.zero(24)
	r.set(26, "1")
	r.setN(27, int64(be.ID))
	r.zero(28)
	r.setN(30, st.LBTotal)
	r.set(32, "1")
	r.zero(33, 35)
	setResponses(r, st.Responses)
	r.setN(48, st.TotalRequests)
	r.setN(49, st.CliAborts)
	r.setN(50, st.SrvAborts)
	r.zero(51, 52, 53, 54)
	r.set(55, "-1")
	var last time.Time
	for i := range be.Servers {
		if t := be.Servers[i].Stats.LastSession; t.After(last) {
			last = t
		}
	}
	if !last.IsZero() {
		r.setN(55, r.secondsSince(last, now))
	}
	r.zero(58, 59, 60, 61)
	if legends && be.Config.Cookie != nil {
		r.set(74, be.Config.Cookie.Name)
	}
	r.set(75, "http")
	if legends {
		algo := string(be.Config.Balance)
		if algo == "" {
			algo = string(balancer.RoundRobin)
		}
		r.set(76, algo)
	}
	r.zero(83, 84, 85, 86, 87, 90, 91, 92, 93, 94)
	r.setN(99, uweight)
	r.zero(100, 101, 102)
	r.zeroRange(stSSL, stModulesEnd)
	return r
}

// csvStat renders rows as HAProxy 2.6's CSV: a header, then one line per
// row, every field followed by a comma.
func csvStat(rows []*statRow) string {
	var b strings.Builder
	b.WriteString("# ")
	for i, f := range statFields {
		if i == stStaticFields {
			b.WriteString("-,")
		}
		b.WriteString(f.name + ",")
	}
	b.WriteString("\n")
	for _, r := range rows {
		for i := range statFields {
			if i == stStaticFields {
				b.WriteString("-,")
			}
			b.WriteString(csvQuote(r.values[i]) + ",")
		}
		b.WriteString("\n")
	}
	return b.String()
}

// csvQuote quotes a field that contains a comma or a double quote.
func csvQuote(s string) string {
	if !strings.ContainsAny(s, ",\"") {
		return s
	}
	return `"` + strings.ReplaceAll(s, `"`, `""`) + `"`
}

func typedStat(rows []*statRow) string {
	var b strings.Builder
	for _, r := range rows {
		for i, f := range statFields {
			v := r.values[i]
			if v == "" {
				continue
			}
			fmt.Fprintf(&b, "%c.%d.%d.%d.%s.1:%s:%s:%s\n", r.kind, r.iid, r.sid, i, f.name, tagsFor(r.kind, i), f.typ, v)
		}
	}
	return b.String()
}

var (
	originNames = map[byte]string{'M': "Metric", 'S': "Status", 'K': "Key", 'C': "Config", 'P': "Product"}
	natureNames = map[byte]string{'G': "Gauge", 'L': "Limit", 'm': "Min", 'M': "Max", 'R': "Rate", 'C': "Counter",
		'D': "Duration", 'A': "Age", 'T': "Time", 'N': "Name", 'O': "Output", 'a': "Avg"}
	scopeNames = map[byte]string{'C': "Cluster", 'P': "Process", 'S': "Service", 's': "System"}
	objTypes   = map[byte]string{'F': "Frontend", 'B': "Backend", 'S': "Server", 'L': "Listener"}
)

func jsonTags(tags string) string {
	return `"tags":{"origin":"` + originNames[tags[0]] + `","nature":"` + natureNames[tags[1]] + `","scope":"` + scopeNames[tags[2]] + `"}`
}

func jsonValue(typ, v string) string {
	if typ == "str" {
		return `"value":{"type":"str","value":"` + jsonEscape(v) + `"}`
	}
	return `"value":{"type":"` + typ + `","value":` + v + `}`
}

func jsonEscape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"' || c == '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c < 0x20:
			fmt.Fprintf(&b, `\u%04x`, c)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

func jsonStat(rows []*statRow) string {
	var b strings.Builder
	b.WriteString("[")
	for ri, r := range rows {
		if ri > 0 {
			b.WriteString(",")
		}
		b.WriteString("[")
		first := true
		for i, f := range statFields {
			v := r.values[i]
			if v == "" {
				continue
			}
			if !first {
				b.WriteString(",")
			}
			first = false
			fmt.Fprintf(&b, `{"objType":"%s","proxyId":%d,"id":%d,"field":{"pos":%d,"name":"%s"},"processNum":1,%s,%s}`,
				objTypes[r.kind], r.iid, r.sid, i, f.name, jsonTags(tagsFor(r.kind, i)), jsonValue(f.typ, v))
		}
		b.WriteString("]")
	}
	b.WriteString("]\n")
	return b.String()
}

// infoField is one line of show info.
type infoField struct {
	pos   int
	name  string
	tags  string
	typ   string
	value string
}

func cmdShowInfo(c *call) {
	format := ""
	for _, a := range c.args[2:] {
		if a == "typed" || a == "json" {
			format = a
		}
	}
	fields := c.d.infoFields()
	var b strings.Builder
	switch format {
	case "typed":
		for _, f := range fields {
			fmt.Fprintf(&b, "%d.%s.1:%s:%s:%s\n", f.pos, f.name, f.tags, f.typ, f.value)
		}
	case "json":
		b.WriteString("[")
		for i, f := range fields {
			if i > 0 {
				b.WriteString(",")
			}
			fmt.Fprintf(&b, `{"field":{"pos":%d,"name":"%s"},"processNum":1,%s,%s}`, f.pos, f.name, jsonTags(f.tags), jsonValue(f.typ, f.value))
		}
		b.WriteString("]\n")
	default:
		for _, f := range fields {
			b.WriteString(f.name + ": " + f.value + "\n")
		}
	}
	c.dump(b.String())
}

// infoLayout lists the show info fields Tether fills, with HAProxy 2.6's
// positions, names, tags and types.
var infoLayout = []infoField{
	{0, "Name", "POS", "str", ""},
	{1, "Version", "POS", "str", ""},
	{2, "Release_date", "POS", "str", ""},
	{3, "Nbthread", "CGS", "u32", ""},
	{4, "Nbproc", "CGS", "u32", ""},
	{5, "Process_num", "KGP", "u32", ""},
	{6, "Pid", "SGP", "u32", ""},
	{7, "Uptime", "MDP", "str", ""},
	{8, "Uptime_sec", "MDP", "u32", ""},
	{13, "Ulimit-n", "CLP", "u32", ""},
	{14, "Maxsock", "CLP", "u32", ""},
	{15, "Maxconn", "CLP", "u32", ""},
	{16, "Hard_maxconn", "CLP", "u32", ""},
	{17, "CurrConns", "MGP", "u32", ""},
	{18, "CumConns", "MCP", "u32", ""},
	{19, "CumReq", "MCP", "u32", ""},
	{50, "node", "COS", "str", ""},
	{52, "Stopping", "MGP", "u32", ""},
	{58, "DroppedLogs", "MGP", "u32", ""},
	{61, "TotalBytesOut", "MGP", "u64", ""},
	{66, "Build info", "POS", "str", ""},
	{70, "Start_time_sec", "MDP", "u32", ""},
	{71, "Tainted", "SGP", "str", ""},
}

// infoNames returns the names of the show info fields Tether reports.
func (d *Dispatcher) infoNames() []string {
	names := make([]string, len(infoLayout))
	for i, f := range infoLayout {
		names[i] = f.name
	}
	return names
}

// infoFields returns the show info fields with their current values.
func (d *Dispatcher) infoFields() []infoField {
	snap := d.b.Snapshot()
	now := d.opts.Now()
	up := now.Sub(d.started)
	if !snap.Started.IsZero() {
		up = now.Sub(snap.Started)
	}
	if up < 0 {
		up = 0
	}
	var cur, cumConns, cumReq, bytesOut int64
	for _, fe := range snap.Frontends {
		cur += fe.Stats.CurSessions
		cumConns += fe.Stats.TotalSessions
		cumReq += fe.Stats.TotalRequests
		bytesOut += fe.Stats.BytesOut
	}
	if d.opts.Conns != nil {
		// Open client connections, as HAProxy counts them, rather than
		// requests in progress.
		cur = int64(d.opts.Conns.Current())
	}
	secs := int64(up / time.Second)
	node, _ := os.Hostname()
	n := func(v int64) string { return strconv.FormatInt(v, 10) }
	values := map[string]string{
		"Name":           ProductName,
		"Version":        Version,
		"Release_date":   ReleaseDate,
		"Nbthread":       "1",
		"Nbproc":         "1",
		"Process_num":    "1",
		"Pid":            n(int64(os.Getpid())),
		"Uptime":         fmt.Sprintf("%dd %dh%02dm%02ds", secs/86400, secs%86400/3600, secs%3600/60, secs%60),
		"Uptime_sec":     n(secs),
		"Ulimit-n":       n(int64(d.opts.MaxConn.FDLimit)),
		"Maxsock":        n(int64(d.opts.MaxConn.MaxSock)),
		"Maxconn":        n(int64(d.opts.MaxConn.MaxConn)),
		"Hard_maxconn":   n(int64(d.opts.MaxConn.MaxConn)),
		"CurrConns":      n(cur),
		"CumConns":       n(cumConns),
		"CumReq":         n(cumReq),
		"node":           node,
		"Stopping":       "0",
		"DroppedLogs":    n(int64(d.b.DroppedLogs())),
		"TotalBytesOut":  n(bytesOut),
		"Build info":     Version,
		"Start_time_sec": n(now.Add(-up).Unix()),
		"Tainted":        "0",
	}
	fields := make([]infoField, len(infoLayout))
	for i, f := range infoLayout {
		f.value = values[f.name]
		fields[i] = f
	}
	return fields
}

// serverState is one line of show servers state (format version 1).
func serverStateLine(be *balancer.BackendStatus, sv *balancer.ServerStatus, now time.Time) string {
	addr := sv.Config.Address
	if !isIP(addr) {
		addr = "-"
	}
	fqdn := sv.FQDN
	if fqdn == "" {
		fqdn = "-"
	}
	status, result := checkStatusCodes(sv)
	var chkState int
	if sv.Config.Check {
		chkState |= 0x02
		if sv.CheckEnabled {
			chkState |= 0x04
		}
	}
	if sv.InMaint() && (sv.Config.Check || sv.Admin&balancer.AdminCMaint != 0) {
		// HAProxy pauses the checks of a server in maintenance.
		chkState |= 0x08
	}
	since := int64(0)
	if !sv.LastChange.IsZero() {
		since = int64(now.Sub(sv.LastChange) / time.Second)
	}
	return fmt.Sprintf("%d %s %d %s %s %d %d %d %d %d %d %d %d %d %d %d %d %s %d %s %d %d %s %s %d\n",
		be.ID, be.Config.Name, sv.ID, sv.Config.Name, addr,
		int(sv.Op), sv.Admin, sv.Weight, sv.Config.Weight, since,
		status, result, sv.Check.Health, chkState, 0,
		0, 0, fqdn, sv.Config.Port,
		"-", 0, sv.Config.CheckPort,
		"-", "-", 0)
}

func isIP(s string) bool {
	_, err := netip.ParseAddr(s)
	return err == nil
}

// checkStatusCodes returns HAProxy's numeric check status and result.
func checkStatusCodes(sv *balancer.ServerStatus) (int, int) {
	if !sv.Config.Check {
		return 1, 0
	}
	codes := map[string][2]int{
		"": {1, 0}, "INI": {1, 0}, "SOCKERR": {5, 2}, "L4OK": {6, 3}, "L4TOUT": {7, 2},
		"L4CON": {8, 2}, "L6OK": {9, 3}, "L6TOUT": {10, 2}, "L6RSP": {11, 2}, "L7TOUT": {12, 2},
		"L7RSP": {13, 2}, "L7OK": {15, 3}, "L7OKC": {16, 4}, "L7STS": {17, 2},
	}
	c, ok := codes[sv.Check.Status]
	if !ok {
		return 0, 0
	}
	return c[0], c[1]
}

const serversStateHeader = "1\n# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight srv_iweight srv_time_since_last_change srv_check_status srv_check_result srv_check_health srv_check_state srv_agent_state bk_f_forced_id srv_f_forced_id srv_fqdn srv_port srvrecord srv_use_ssl srv_check_port srv_check_addr srv_agent_addr srv_agent_port\n"

// backendsArg returns the backends a "show servers ..." command covers,
// writing HAProxy's error for an unknown backend.
func (c *call) backendsArg(snap *balancer.Snapshot, arg string) ([]balancer.BackendStatus, bool) {
	if arg == "" {
		return snap.Backends, true
	}
	be := backendByName(snap, arg)
	if be == nil {
		c.err("Can't find backend.\n")
		return nil, false
	}
	return []balancer.BackendStatus{*be}, true
}

func cmdShowServersState(c *call) {
	snap := c.d.b.Snapshot()
	bes, ok := c.backendsArg(snap, c.arg(3))
	if !ok {
		return
	}
	now := c.d.opts.Now()
	var b strings.Builder
	b.WriteString(serversStateHeader)
	for i := range bes {
		for j := range bes[i].Servers {
			b.WriteString(serverStateLine(&bes[i], &bes[i].Servers[j], now))
		}
	}
	c.dump(b.String())
}

func cmdShowServersConn(c *call) {
	snap := c.d.b.Snapshot()
	bes, ok := c.backendsArg(snap, c.arg(3))
	if !ok {
		return
	}
	var b strings.Builder
	b.WriteString("# bkname/svname bkid/svid addr port - purge_delay used_cur used_max need_est unsafe_nb safe_nb idle_lim idle_cur idle_per_thr[1]\n")
	for _, be := range bes {
		for _, sv := range be.Servers {
			addr := sv.Config.Address
			if !isIP(addr) {
				addr = "-"
			}
			fmt.Fprintf(&b, "%s/%s %d/%d %s %d - 5000 %d %d 0 0 0 -1 0 0\n",
				be.Config.Name, sv.Config.Name, be.ID, sv.ID, addr, sv.Config.Port,
				sv.Stats.CurSessions, sv.Stats.MaxSessions)
		}
	}
	c.dump(b.String())
}

// stickyHeader documents the columns of show sticky, format version 2:
// backend and server identity, the server's current cookie value ("-"
// when none), whether it is dynamic, and the persistence counters; version
// 2 added the last four (dynamic-cookie grace; old_clients estimates the
// clients that came with an old cookie in the last five minutes).
const stickyHeader = "2\n# be_id be_name srv_id srv_name cookie cookie_dynamic pinned new_sessions invalid expired redispatched old_key old_addr reissued old_clients\n"

func cmdShowSticky(c *call) {
	snap := c.d.b.Snapshot()
	bes, ok := c.backendsArg(snap, c.arg(2))
	if !ok {
		return
	}
	legends := c.s.level >= balancer.LevelOperator
	var b strings.Builder
	b.WriteString(stickyHeader)
	for _, be := range bes {
		for _, sv := range be.Servers {
			cookie := sv.Cookie
			if cookie == "" || !legends {
				cookie = "-"
			}
			dyn := 0
			if sv.CookieDynamic {
				dyn = 1
			}
			s := sv.Stats.Sticky
			fmt.Fprintf(&b, "%d %s %d %s %s %d %d %d %d %d %d %d %d %d %d\n", be.ID, be.Config.Name, sv.ID, sv.Config.Name,
				cookie, dyn, s.Pinned, s.NewSessions, s.Invalid, s.Expired, s.Redispatched, s.OldKey, s.OldAddr, s.Reissued, s.OldClients)
		}
	}
	c.dump(b.String())
}
