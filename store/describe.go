package store

import (
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"tether/balancer"
)

// maxAuditDiffs caps the settings one audit entry lists.
const maxAuditDiffs = 40

// settingDiff is one setting that a change touched.
type settingDiff struct {
	object   string // "" for the change's own object, else e.g. "server s2"
	name     string // e.g. "state"
	old, new string
}

// description gathers the settings a commit touches, for its audit entry.
type description struct {
	// backend is the backend the change names: its settings and servers
	// are listed without naming it.
	backend string
	diffs   []settingDiff
	servers map[string]bool // servers touched, by name
	// added holds the "backend/server" keys of servers added or deleted:
	// their runtime settings are part of that line.
	added map[string]bool
}

func (d *description) markAddedOrDeleted(backend, server string) {
	if d.added == nil {
		d.added = make(map[string]bool)
	}
	d.added[backend+"/"+server] = true
}

// markBackendAdded records that a whole backend was added: its servers are
// part of that line.
func (d *description) markBackendAdded(backend string) { d.markAddedOrDeleted(backend, "") }

func (d *description) addedOrDeleted(backend, server string) bool {
	return d.added[backend+"/"+server] || d.added[backend+"/"]
}

// backendObject names a backend as an audit object.
func (d *description) backendObject(backend string) string {
	if backend == d.backend {
		return ""
	}
	return "backend " + backend
}

// serverObject names a server as an audit object.
func (d *description) serverObject(backend, server string) string {
	if backend == d.backend {
		return "server " + server
	}
	return "server " + backend + "/" + server
}

func (d *description) add(object, name, old, new string) {
	for i, x := range d.diffs {
		// A runtime setting and the configured one often move together
		// (set server addr changes both): list it once, as the runtime one.
		if x.object == object && strings.TrimPrefix(x.name, "config-") == strings.TrimPrefix(name, "config-") &&
			x.old == old && x.new == new {
			if !strings.HasPrefix(name, "config-") {
				d.diffs[i].name = name
			}
			return
		}
	}
	d.diffs = append(d.diffs, settingDiff{object: object, name: name, old: old, new: new})
}

func (d *description) touchServer(backend, name string) {
	if backend != d.backend {
		name = backend + "/" + name
	}
	if d.servers == nil {
		d.servers = make(map[string]bool)
	}
	d.servers[name] = true
}

// render fills e's Before, After and Detail. primary is the server the
// change names ("" when none): its settings are listed without a prefix.
func (d *description) render(e *AuditEntry, primary string) {
	var before, after, detail []string
	for i, x := range d.diffs {
		if i == maxAuditDiffs {
			more := fmt.Sprintf("… and %d more", len(d.diffs)-i)
			before, after, detail = append(before, more), append(after, more), append(detail, more)
			break
		}
		prefix := ""
		if x.object != "" && x.object != "server "+primary {
			prefix = x.object + ": "
		}
		switch {
		case x.old == "" && x.new == "":
			detail = append(detail, prefix+x.name)
		case x.old == "":
			after = append(after, prefix+x.new)
			detail = append(detail, prefix+x.name+" "+x.new)
		case x.new == "":
			before = append(before, prefix+x.old)
			detail = append(detail, prefix+x.name+" "+x.old)
		default:
			before = append(before, prefix+x.name+" "+x.old)
			after = append(after, prefix+x.name+" "+x.new)
			detail = append(detail, prefix+x.name+" "+x.old+" → "+x.new)
		}
	}
	e.Before = strings.Join(before, ", ")
	e.After = strings.Join(after, ", ")
	e.Detail = strings.Join(detail, "; ")
	if len(d.diffs) == 0 {
		e.Detail = "no durable change"
	}
}

// serverLabel names a field of balancer.Server as the audit log shows it.
func serverLabel(path string) string {
	switch path {
	case "Address":
		return "config-addr"
	case "Port":
		return "config-port"
	case "PortSet":
		return "config-port-set"
	case "Check":
		return "check-configured"
	case "Weight":
		return "init-weight"
	}
	return fieldLabel(path)
}

// runtimeLabel names a field of balancer.ServerRuntime.
func runtimeLabel(path string) string {
	switch path {
	case "Admin":
		return "state"
	case "CheckEnabled":
		return "check"
	case "Address":
		return "addr"
	}
	return fieldLabel(path)
}

// backendLabel names a field of balancer.Backend or of its cookie and
// check settings.
func backendLabel(path string) string {
	switch path {
	case "DynamicCookieKey":
		return "key fp"
	case "Cookie.Dynamic":
		return "dynamic-cookies"
	case "ForwardFor":
		return "forwardfor"
	case "HTTPCheck":
		return "httpchk"
	}
	return fieldLabel(path)
}

// fieldLabel turns a Go field path into a lower-case label with dashes
// between words, spelling HAProxy's keywords as HAProxy does:
// "Cookie.MaxIdle" becomes "cookie.maxidle", "AllowDupIP" "allow-dup-ip".
func fieldLabel(path string) string {
	var b strings.Builder
	prev := rune(0)
	for _, r := range path {
		if r >= 'A' && r <= 'Z' && prev >= 'a' && prev <= 'z' {
			b.WriteByte('-')
		}
		prev = r
		if r >= 'A' && r <= 'Z' {
			r += 'a' - 'A'
		}
		b.WriteRune(r)
	}
	return strings.NewReplacer("max-", "max", "fast-inter", "fastinter", "down-inter", "downinter").Replace(b.String())
}

// secretField reports whether a field holds a secret that only its
// fingerprint may show.
func secretField(name string) bool {
	return strings.Contains(name, "Key") || strings.Contains(name, "Secret") || strings.Contains(name, "Password")
}

// diffFields compares two values of one struct type field by field and
// reports each difference to add. Nested structs and pointers to structs
// are walked with a dotted path; a pointer that appears or disappears is
// reported as "on"/"off" and its fields compared with their zero values.
func diffFields(path string, a, b reflect.Value, add func(path, old, new string)) {
	t := a.Type()
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		p := f.Name
		if path != "" {
			p = path + "." + f.Name
		}
		fa, fb := a.Field(i), b.Field(i)
		if reflect.DeepEqual(fa.Interface(), fb.Interface()) {
			continue
		}
		switch {
		case f.Type.Kind() == reflect.Pointer && f.Type.Elem().Kind() == reflect.Struct:
			if fa.IsNil() != fb.IsNil() {
				add(p, onOff(!fa.IsNil()), onOff(!fb.IsNil()))
			}
			za, zb := fa, fb
			if za.IsNil() {
				za = reflect.New(f.Type.Elem())
			}
			if zb.IsNil() {
				zb = reflect.New(f.Type.Elem())
			}
			diffFields(p, za.Elem(), zb.Elem(), add)
		case f.Type.Kind() == reflect.Struct && f.Type != reflect.TypeFor[time.Time]():
			diffFields(p, fa, fb, add)
		case secretField(f.Name) && f.Type.Kind() == reflect.String:
			add(p, fingerprintText(fa.String()), fingerprintText(fb.String()))
		default:
			add(p, valueText(fa), valueText(fb))
		}
	}
}

func fingerprintText(key string) string {
	if key == "" {
		return "none"
	}
	return KeyFingerprint(key)
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

// valueText renders a setting's value compactly.
func valueText(v reflect.Value) string {
	switch x := v.Interface().(type) {
	case time.Duration:
		return x.String()
	case balancer.CookieMode:
		if x == balancer.CookiePassive {
			return "passive"
		}
		return x.String()
	case fmt.Stringer:
		return x.String()
	}
	switch v.Kind() {
	case reflect.Bool:
		return onOff(v.Bool())
	case reflect.String:
		if v.String() == "" {
			return `""`
		}
		return v.String()
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return strconv.FormatInt(v.Int(), 10)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return strconv.FormatUint(v.Uint(), 10)
	case reflect.Slice:
		if v.Len() == 0 {
			return "none"
		}
		parts := make([]string, v.Len())
		for i := range v.Len() {
			parts[i] = valueText(v.Index(i))
		}
		return strings.Join(parts, ",")
	case reflect.Map:
		if v.Len() == 0 {
			return "none"
		}
		parts := make([]string, 0, v.Len())
		for _, k := range v.MapKeys() {
			parts = append(parts, valueText(k)+"="+valueText(v.MapIndex(k)))
		}
		slices.Sort(parts)
		return strings.Join(parts, ",")
	case reflect.Struct:
		var parts []string
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() && !v.Field(i).IsZero() {
				parts = append(parts, strings.ToLower(v.Type().Field(i).Name)+"="+valueText(v.Field(i)))
			}
		}
		return "{" + strings.Join(parts, " ") + "}"
	case reflect.Pointer:
		if v.IsNil() {
			return "none"
		}
		return valueText(v.Elem())
	}
	return fmt.Sprint(v.Interface())
}

func (d *description) serverConfig(object string, a, b balancer.Server) {
	diffFields("", reflect.ValueOf(a), reflect.ValueOf(b), func(p, old, new string) {
		d.add(object, serverLabel(p), old, new)
	})
}

func (d *description) serverRuntime(object string, a, b *balancer.ServerRuntime) {
	switch {
	case a == nil && b == nil:
		return
	case a == nil:
		d.add(object, "runtime", "none", runtimeText(*b))
		return
	case b == nil:
		d.add(object, "runtime", runtimeText(*a), "none")
		return
	}
	diffFields("", reflect.ValueOf(*a), reflect.ValueOf(*b), func(p, old, new string) {
		d.add(object, runtimeLabel(p), old, new)
	})
}

func runtimeText(r balancer.ServerRuntime) string {
	s := "state " + r.Admin.String() + " weight " + strconv.Itoa(r.Weight) + " check " + onOff(r.CheckEnabled)
	if r.Address != "" {
		s += " addr " + r.Address
	}
	if r.PortSet {
		s += " port " + strconv.Itoa(r.Port)
	}
	return s
}

// serverText summarises an added or deleted server.
func serverText(sv balancer.Server, rt *balancer.ServerRuntime) string {
	addr := sv.Address
	if addr == "" {
		addr = "(no address)"
	}
	s := "server " + sv.Name + " " + addr
	if sv.PortSet {
		s += ":" + strconv.Itoa(sv.Port)
	}
	if sv.Cookie != "" {
		s += " cookie " + sv.Cookie
	}
	if rt == nil {
		return s + " weight " + strconv.Itoa(sv.Weight)
	}
	s += " state " + rt.Admin.String() + " weight " + strconv.Itoa(rt.Weight) + " check " + onOff(rt.CheckEnabled)
	if rt.Address != "" && (rt.Address != sv.Address || rt.Port != sv.Port || rt.PortSet != sv.PortSet) {
		s += " now " + rt.Address
		if rt.PortSet {
			s += ":" + strconv.Itoa(rt.Port)
		}
	}
	return s
}

func (d *description) backendSettings(object string, a, b balancer.Backend) {
	a.Servers, b.Servers, a.Templates, b.Templates = nil, nil, nil, nil
	diffFields("", reflect.ValueOf(a), reflect.ValueOf(b), func(p, old, new string) {
		d.add(object, backendLabel(p), old, new)
	})
}

// section compares two values of any type and reports differing fields
// under name, for the rarely changed parts of a configuration (global
// settings, frontends, resolvers, server templates).
func (d *description) section(object string, a, b any) {
	va, vb := reflect.ValueOf(a), reflect.ValueOf(b)
	if va.Kind() == reflect.Struct {
		diffFields("", va, vb, func(p, old, new string) { d.add(object, fieldLabel(p), old, new) })
		return
	}
	d.add(object, "settings", valueText(va), valueText(vb))
}

// describeStates describes what differs between before and after, which
// may be whole states or the parts of them a commit touched.
func describeStates(before, after balancer.State, d *description) {
	bc, ac := before.Config, after.Config
	if !reflect.DeepEqual(bc.Global, ac.Global) {
		d.section("global", bc.Global, ac.Global)
	}
	if !reflect.DeepEqual(bc.Frontends, ac.Frontends) {
		describeNamed(d, "frontend", bc.Frontends, ac.Frontends, func(f balancer.Frontend) string { return f.Name })
	}
	if !reflect.DeepEqual(bc.Resolvers, ac.Resolvers) {
		describeNamed(d, "resolvers", bc.Resolvers, ac.Resolvers, func(r balancer.Resolvers) string { return r.Name })
	}
	describeBackends(before, after, d)
	describeSSLCerts(bc.SSLCerts, ac.SSLCerts, d)
}

// describeSSLCerts describes certificates committed at run time by
// subject and fingerprint, never by their key.
func describeSSLCerts(a, b []balancer.SSLCert, d *description) {
	old := make(map[string]balancer.SSLCert, len(a))
	for _, c := range a {
		old[c.Path] = c
	}
	for _, c := range b {
		o, had := old[c.Path]
		delete(old, c.Path)
		switch {
		case !had:
			d.add("ssl cert "+c.Path, "committed", "", c.Describe())
		case o.PEM.Ref() != c.PEM.Ref():
			d.add("ssl cert "+c.Path, "committed", o.Describe(), c.Describe())
		}
	}
	for _, o := range a {
		if _, gone := old[o.Path]; gone {
			d.add("ssl cert "+o.Path, "committed", o.Describe(), "")
		}
	}
}

// describeNamed describes changes to a list of named sections.
func describeNamed[T any](d *description, kind string, a, b []T, name func(T) string) {
	old := make(map[string]T, len(a))
	for _, x := range a {
		old[name(x)] = x
	}
	seen := make(map[string]bool, len(b))
	for _, x := range b {
		n := name(x)
		seen[n] = true
		if o, ok := old[n]; !ok {
			d.add("", "add "+kind+" "+n, "", "")
		} else if !reflect.DeepEqual(o, x) {
			d.section(kind+" "+n, o, x)
		}
	}
	for _, x := range a {
		if !seen[name(x)] {
			d.add("", "del "+kind+" "+name(x), "", "")
		}
	}
}

func describeBackends(before, after balancer.State, d *description) {
	oldIdx := make(map[string]int, len(before.Config.Backends))
	for i, b := range before.Config.Backends {
		oldIdx[b.Name] = i
	}
	newNames := make(map[string]bool, len(after.Config.Backends))
	for _, b := range after.Config.Backends {
		newNames[b.Name] = true
	}
	for _, b := range before.Config.Backends {
		if !newNames[b.Name] {
			d.add("", "del backend "+b.Name, "", "")
		}
	}
	for _, ab := range after.Config.Backends {
		j, existed := oldIdx[ab.Name]
		if !existed {
			d.add("", "add backend "+ab.Name, "", "")
			d.markBackendAdded(ab.Name)
			continue
		}
		bb := before.Config.Backends[j]
		if !backendSettingsEqual(bb, ab) {
			d.backendSettings(d.backendObject(ab.Name), bb, ab)
		}
		if !reflect.DeepEqual(bb.Templates, ab.Templates) {
			d.add(d.backendObject(ab.Name), "server-templates", templatesText(bb.Templates), templatesText(ab.Templates))
		}
		describeServers(ab.Name, bb.Servers, ab.Servers, before.Servers, after.Servers, d)
	}
	describeRuntime(before.Servers, after.Servers, newNames, d)
}

// describeRuntime describes the runtime settings that differ between
// before and after. Settings of a deleted backend went with it.
func describeRuntime(before, after map[string]balancer.ServerRuntime, backends map[string]bool, d *description) {
	var changed, gone []string
	for k, ra := range after {
		if rb, ok := before[k]; !ok || !reflect.DeepEqual(rb, ra) {
			changed = append(changed, k)
		}
	}
	for k := range before {
		if _, ok := after[k]; !ok {
			gone = append(gone, k)
		}
	}
	slices.Sort(changed)
	slices.Sort(gone)
	for _, k := range changed {
		b, name, _ := strings.Cut(k, "/")
		if d.addedOrDeleted(b, name) {
			continue
		}
		ra := after[k]
		d.touchServer(b, name)
		d.serverRuntime(d.serverObject(b, name), runtimeOf(before, b, name), &ra)
	}
	for _, k := range gone {
		b, name, _ := strings.Cut(k, "/")
		if !backends[b] || d.addedOrDeleted(b, name) {
			continue
		}
		rb := before[k]
		d.touchServer(b, name)
		d.serverRuntime(d.serverObject(b, name), &rb, nil)
	}
}

// describeServers describes the configured servers of one backend that
// differ between before and after (runtime settings are described by
// describeRuntime).
func describeServers(backend string, before, after []balancer.Server, rtBefore, rtAfter map[string]balancer.ServerRuntime, d *description) {
	oldIdx := make(map[string]int, len(before))
	for i, sv := range before {
		oldIdx[sv.Name] = i
	}
	newIdx := make(map[string]int, len(after))
	for i, sv := range after {
		newIdx[sv.Name] = i
	}
	var kept []string // names present on both sides, in their old order
	for _, sv := range before {
		if _, ok := newIdx[sv.Name]; ok {
			kept = append(kept, sv.Name)
			continue
		}
		d.touchServer(backend, sv.Name)
		d.markAddedOrDeleted(backend, sv.Name)
		d.add(d.serverObject(backend, sv.Name), "del", serverText(sv, runtimeOf(rtBefore, backend, sv.Name)), "")
	}
	i := 0
	reordered := false
	for _, sv := range after {
		j, existed := oldIdx[sv.Name]
		if !existed {
			d.touchServer(backend, sv.Name)
			d.markAddedOrDeleted(backend, sv.Name)
			d.add(d.serverObject(backend, sv.Name), "add", "", serverText(sv, runtimeOf(rtAfter, backend, sv.Name)))
			continue
		}
		if kept[i] != sv.Name && !reordered {
			reordered = true
			d.add(d.backendObject(backend), "servers reordered", "", "")
		}
		i++
		if !serverEqual(&before[j], &sv) {
			d.touchServer(backend, sv.Name)
			d.serverConfig(d.serverObject(backend, sv.Name), before[j], sv)
		}
	}
}

func templatesText(ts []balancer.ServerTemplate) string {
	parts := make([]string, len(ts))
	for i, t := range ts {
		parts[i] = fmt.Sprintf("%s[%d-%d] %s", t.Prefix, t.Low, t.High, t.FQDN)
	}
	return strings.Join(parts, ",")
}

// backendSettingsEqual compares two backends without their servers and
// templates.
func backendSettingsEqual(a, b balancer.Backend) bool {
	a.Servers, b.Servers, a.Templates, b.Templates = nil, nil, nil, nil
	return reflect.DeepEqual(a, b)
}

// runtimeOf returns a server's runtime settings, or nil.
func runtimeOf(m map[string]balancer.ServerRuntime, backend, server string) *balancer.ServerRuntime {
	r, ok := m[backend+"/"+server]
	if !ok {
		return nil
	}
	return &r
}

// serverEqual reports whether two servers are the same. It compares field
// by field, without reflection; TestServerEqualSeesEveryField keeps it
// complete.
func serverEqual(a, b *balancer.Server) bool {
	return a.Name == b.Name && a.Address == b.Address && a.Port == b.Port && a.PortSet == b.PortSet &&
		a.Cookie == b.Cookie && a.Check == b.Check && a.Inter == b.Inter && a.FastInter == b.FastInter &&
		a.DownInter == b.DownInter && a.Rise == b.Rise && a.Fall == b.Fall && a.CheckPort == b.CheckPort &&
		a.Weight == b.Weight && a.Backup == b.Backup && a.Disabled == b.Disabled && a.MaxConn == b.MaxConn &&
		a.Resolvers == b.Resolvers && a.ResolvePrefer == b.ResolvePrefer && a.AllowDupIP == b.AllowDupIP &&
		slices.Equal(a.InitAddr, b.InitAddr) && a.SSL == b.SSL && a.CheckSSL == b.CheckSSL && a.TLS == b.TLS &&
		a.IdlePool == b.IdlePool
}
