package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"reflect"
	"slices"
	"strings"
	"time"

	"tether/balancer"
	"tether/balancer/haproxycfg"
	"tether/balancer/tlsbind"
	"tether/store"
)

// startPlan is what a start will run and what it must write first. Nothing
// is written while planning: a start that fails before commit changes
// nothing in the database.
type startPlan struct {
	state balancer.State
	// write, when set, is the one transaction that stores state: the
	// import of a changed file, or the demo on an empty database.
	write *store.AuditEntry
	// seeded reports that write seeds the demo.
	seeded bool
	// version is the journal version of the stored state read.
	version int64
}

// planStart returns the state to run: the database's, or the config file's
// when one is given and it changed since it was last imported (runtime
// settings of unchanged servers kept), or the demo when the database is
// empty and no file is given.
func planStart(ctx context.Context, st *store.Store, file string, stderr io.Writer, log *slog.Logger) (startPlan, error) {
	cur, found, version, err := st.LoadStateVersion(ctx)
	if err != nil {
		return startPlan{}, err
	}
	plan, err := planFrom(ctx, st, cur, found, file, stderr, log)
	plan.version = version
	return plan, err
}

// planFrom plans the start from the stored state cur.
func planFrom(ctx context.Context, st *store.Store, cur balancer.State, found bool, file string, stderr io.Writer, log *slog.Logger) (startPlan, error) {
	if file != "" {
		src, err := os.ReadFile(file)
		if err != nil {
			return startPlan{}, fmt.Errorf("read config: %w", err)
		}
		digest := fileDigest(src)
		if found {
			// The most recent import decides, whichever file it was.
			last, err := st.LastImport(ctx)
			if err != nil {
				return startPlan{}, err
			}
			if last.Digest == digest {
				log.Info("config file unchanged since its import; running the stored state with its runtime changes", "file", file)
				return startPlan{state: cur}, nil
			}
		}
		next, _, err := importedState(file, src, cur, false, stderr)
		if err != nil {
			return startPlan{}, err
		}
		e := importAudit(file, digest, cur, next, found)
		if found {
			for _, c := range append(diffStates(cur, next), overriddenRuntime(cur, next)...) {
				fmt.Fprintf(stderr, "%s changed since its last import: %s\n", file, c)
			}
		}
		return startPlan{state: next, write: &e}, nil
	}
	if found {
		return startPlan{state: cur}, nil
	}
	e := store.AuditEntry{Time: time.Now(), Actor: "tether", Channel: "import", Source: "demo", Command: "seed demo", Result: "ok"}
	return startPlan{state: demoState(), write: &e, seeded: true}, nil
}

// importedState parses a config file, printing its warnings, and returns
// the state of running it from cur (runtime settings of unchanged servers
// kept, unless replace) and the number of warnings. It fails when a
// balancer cannot be built from it.
func importedState(file string, src []byte, cur balancer.State, replace bool, stderr io.Writer) (balancer.State, int, error) {
	cfg, warnings, err := haproxycfg.Parse(file, src)
	for _, w := range warnings {
		fmt.Fprintln(stderr, "warning:", w)
	}
	if err != nil {
		return balancer.State{}, len(warnings), err
	}
	next := mergeImport(cur, cfg)
	next.Config.SSLCerts = unreplacedSSLCerts(cur.Config.SSLCerts)
	if replace {
		next.Servers = map[string]balancer.ServerRuntime{}
	}
	if _, err := balancer.New(next.Config, balancer.Options{Runtime: next.Servers}); err != nil {
		return balancer.State{}, len(warnings), fmt.Errorf("%s: %w", file, err)
	}
	return next, len(warnings), nil
}

// openState opens the database read-only and loads its state.
func openState(ctx context.Context, db string) (*store.Store, balancer.State, bool, error) {
	st, err := store.OpenReadOnly(ctx, db, nil)
	if err != nil {
		return nil, balancer.State{}, false, err
	}
	cur, found, err := st.LoadState(ctx)
	if err != nil {
		st.Close()
		return nil, balancer.State{}, false, err
	}
	return st, cur, found, nil
}

func fileDigest(src []byte) string {
	sum := sha256.Sum256(src)
	return hex.EncodeToString(sum[:8])
}

// importCommand is the audit command of an import or reload of file.
func importCommand(file string) string {
	return "import " + file
}

func importAudit(file, digest string, before, after balancer.State, hadState bool) store.AuditEntry {
	result := "ok"
	if hadState {
		result = strings.Join(diffStates(before, after), "; ")
		if result == "" {
			result = "no change"
		}
	}
	return store.AuditEntry{Time: time.Now(), Actor: "tether", Channel: "import", Source: file, Command: importCommand(file), Result: result,
		File: balancer.ConfigFile{Path: file, Digest: digest}}
}

// mergeImport returns the state of running cfg: cfg itself, with the
// runtime settings of servers that still exist under the same address kept,
// as HAProxy's server-state file does across reloads.
func mergeImport(cur balancer.State, cfg balancer.Config) balancer.State {
	next := balancer.State{Config: cfg, Servers: map[string]balancer.ServerRuntime{}}
	old := map[string]balancer.Server{}
	for _, be := range cur.Config.Backends {
		for _, s := range be.Servers {
			old[be.Name+"/"+s.Name] = s
		}
	}
	oldTemplates := map[string][]balancer.ServerTemplate{}
	for _, be := range cur.Config.Backends {
		oldTemplates[be.Name] = be.Templates
	}
	for _, be := range cfg.Backends {
		for _, s := range be.Servers {
			k := be.Name + "/" + s.Name
			rt, ok := cur.Servers[k]
			if o, had := old[k]; ok && had && o.Address == s.Address && o.Port == s.Port && o.Weight == s.Weight {
				next.Servers[k] = rt
			}
		}
		// Slots of an unchanged template keep what DNS and operators set.
		for _, tpl := range be.Templates {
			if !slices.ContainsFunc(oldTemplates[be.Name], func(o balancer.ServerTemplate) bool { return reflect.DeepEqual(o, tpl) }) {
				continue
			}
			for _, name := range tpl.Names() {
				k := be.Name + "/" + name
				if rt, ok := cur.Servers[k]; ok {
					next.Servers[k] = rt
				}
			}
		}
	}
	return next
}

// diffStates describes what changes from a to b, one line per object.
func diffStates(a, b balancer.State) []string {
	var out []string
	ab := map[string]balancer.Backend{}
	for _, be := range a.Config.Backends {
		ab[be.Name] = be
	}
	bb := map[string]bool{}
	for _, be := range b.Config.Backends {
		bb[be.Name] = true
		old, ok := ab[be.Name]
		if !ok {
			out = append(out, fmt.Sprintf("+ backend %s (%d servers)", be.Name, len(be.Servers)))
			continue
		}
		os := map[string]balancer.Server{}
		for _, s := range old.Servers {
			os[s.Name] = s
		}
		ns := map[string]bool{}
		for _, s := range be.Servers {
			ns[s.Name] = true
			o, ok := os[s.Name]
			switch {
			case !ok:
				out = append(out, fmt.Sprintf("+ server %s/%s %s", be.Name, s.Name, hostPort(s)))
			case !reflect.DeepEqual(o, s):
				out = append(out, fmt.Sprintf("~ server %s/%s %s", be.Name, s.Name, hostPort(s)))
			}
		}
		for _, s := range old.Servers {
			if !ns[s.Name] {
				out = append(out, fmt.Sprintf("- server %s/%s", be.Name, s.Name))
			}
		}
		o2, n2 := old, be
		o2.Servers, n2.Servers = nil, nil
		// The dynamic-cookie grace is runtime state a file cannot hold;
		// a reload keeps it (balancer.Replace).
		o2.DynamicCookieAddrGrace, n2.DynamicCookieAddrGrace = 0, 0
		o2.RetiredKeys, n2.RetiredKeys = nil, nil
		if o2.DynamicCookieKey != n2.DynamicCookieKey {
			out = append(out, fmt.Sprintf("~ backend %s dynamic-cookie-key (fingerprint %s → %s)", be.Name, o2.DynamicCookieKey, n2.DynamicCookieKey))
			o2.DynamicCookieKey, n2.DynamicCookieKey = "", ""
		}
		if !reflect.DeepEqual(o2, n2) {
			out = append(out, fmt.Sprintf("~ backend %s settings", be.Name))
		}
	}
	for _, be := range a.Config.Backends {
		if !bb[be.Name] {
			out = append(out, fmt.Sprintf("- backend %s", be.Name))
		}
	}
	// Where ACLs and rules sit in the file is not configuration.
	if !reflect.DeepEqual(a.Config.WithoutPositions().Frontends, b.Config.WithoutPositions().Frontends) {
		out = append(out, "~ frontends")
	}
	if !reflect.DeepEqual(a.Config.Global, b.Config.Global) {
		out = append(out, "~ global")
	}
	if !reflect.DeepEqual(a.Config.Resolvers, b.Config.Resolvers) {
		out = append(out, "~ resolvers")
	}
	for _, c := range a.Config.SSLCerts {
		if _, kept := b.Config.SSLCert(c.Path); !kept {
			out = append(out, fmt.Sprintf("- ssl cert %s committed at run time (%s): the file changed since", c.Path, c.Describe()))
		}
	}
	return out
}

func hostPort(s balancer.Server) string {
	if s.PortSet {
		return fmt.Sprintf("%s:%d", s.Address, s.Port)
	}
	return s.Address
}

// runImport shows what a config file would change and applies it. It
// refuses a database that a running Tether holds, and a dry run neither
// creates nor writes any file.
func runImport(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlagSet("import", stderr)
	file := fs.String("f", "", "HAProxy-syntax config file")
	replace := fs.Bool("replace", false, "drop runtime changes instead of keeping those of unchanged servers")
	dryRun := fs.Bool("n", false, "only show what would change; write nothing")
	strict := fs.Bool("strict", false, "fail when the file has warnings")
	db := fs.String("db", envOr(getenv, "TETHER_DB", "tether.db"), "SQLite database file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *file == "" {
		return errors.New("import: -f FILE is required")
	}
	src, err := os.ReadFile(*file)
	if err != nil {
		return fmt.Errorf("read config: %w", err)
	}
	if !*dryRun {
		lock, err := store.Lock(*db)
		if err != nil {
			if errors.Is(err, store.ErrInUse) {
				return fmt.Errorf("import: %w: a running Tether owns it; change it through that process, or stop it first", err)
			}
			return err
		}
		defer lock.Release()
	}
	// Read what the database holds without creating it: a refused import
	// leaves no file behind.
	var st *store.Store
	_, statErr := os.Stat(*db)
	switch {
	case errors.Is(statErr, os.ErrNotExist):
	case *dryRun:
		st, err = store.OpenReadOnly(ctx, *db, nil)
	default:
		st, err = store.Open(ctx, *db, nil)
	}
	if err != nil {
		return err
	}
	var cur balancer.State
	found := false
	if st != nil {
		defer st.Close()
		if cur, found, err = st.LoadState(ctx); err != nil {
			return err
		}
	}
	next, warnings, err := importedState(*file, src, cur, *replace, stderr)
	if err != nil {
		return err
	}
	if *strict && warnings > 0 {
		return fmt.Errorf("import: %s has %d warning(s) and -strict is set: nothing written", *file, warnings)
	}
	changes := diffStates(cur, next)
	if !found {
		changes = diffStates(balancer.State{}, next)
	}
	if len(changes) == 0 {
		fmt.Fprintln(stdout, "no change")
	}
	for _, c := range changes {
		fmt.Fprintln(stdout, c)
	}
	if *dryRun {
		fmt.Fprintln(stdout, "dry run: nothing written")
		return nil
	}
	if st == nil {
		if st, err = store.Open(ctx, *db, nil); err != nil {
			return err
		}
		defer st.Close()
	}
	if err := st.ReplaceState(ctx, next, importAudit(*file, fileDigest(src), cur, next, found)); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "imported %s into %s\n", *file, *db)
	return nil
}

// runExport prints the current state as an HAProxy config file.
func runExport(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlagSet("export", stderr)
	db := fs.String("db", envOr(getenv, "TETHER_DB", "tether.db"), "SQLite database file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	st, cur, found, err := openState(ctx, *db)
	if err != nil {
		return err
	}
	defer st.Close()
	if !found {
		return fmt.Errorf("export: %s holds no configuration", *db)
	}
	for _, note := range unexportable(cur) {
		fmt.Fprintln(stderr, "export: warning:", note)
	}
	return haproxycfg.Write(stdout, foldRuntime(cur))
}

// unexportable lists the runtime settings of st that an HAProxy
// configuration cannot express, which the export therefore leaves out:
// certificates committed at run time, drain mode, health checks disabled
// at run time, and operator states of server-template slots (a template line has one setting for every slot).
// DNS-resolved addresses and weights are node-local and not listed.
func unexportable(st balancer.State) []string {
	var notes []string
	for _, c := range st.Config.SSLCerts {
		notes = append(notes, fmt.Sprintf("certificate %s was committed at run time (%s); HAProxy reads the file, so put that bundle there before loading the export", c.Path, c.Describe()))
	}
	for _, be := range st.Config.Backends {
		if be.DynamicCookieKey != "" && !haproxycfg.KeyWritable(be.DynamicCookieKey) {
			notes = append(notes, fmt.Sprintf("backend %s's dynamic-cookie-key holds a NUL byte, which a configuration file cannot hold; left out: set a new key with 'set dynamic-cookie-key backend %s KEY'", be.Name, be.Name))
		}
		if be.DynamicCookieAddrGrace > 0 || len(be.RetiredKeys) > 0 {
			notes = append(notes, fmt.Sprintf("backend %s has a dynamic-cookie grace (retired keys, address grace), which HAProxy does not have; exported as comments", be.Name))
		}
		for _, s := range be.Servers {
			rt, ok := st.Servers[be.Name+"/"+s.Name]
			if !ok {
				continue
			}
			ref := be.Name + "/" + s.Name
			if rt.Admin == balancer.Drain {
				notes = append(notes, fmt.Sprintf("server %s is in drain mode, which a configuration file cannot express; exported as ready", ref))
			}
			if s.Check && !rt.CheckEnabled {
				notes = append(notes, fmt.Sprintf("server %s has its health checks disabled at run time, which a configuration file cannot express; exported with 'check'", ref))
			}
		}
		for _, t := range be.Templates {
			for _, name := range t.Names() {
				rt, ok := st.Servers[be.Name+"/"+name]
				if !ok {
					continue
				}
				ref := be.Name + "/" + name
				want := balancer.Ready
				if t.Params.Disabled {
					want = balancer.Maint
				}
				if rt.Admin != want {
					notes = append(notes, fmt.Sprintf("server %s (from server-template %s) is in %s mode, which the template line cannot express; exported as %s", ref, t.Prefix, rt.Admin, want))
				}
				if t.Params.Check && !rt.CheckEnabled {
					notes = append(notes, fmt.Sprintf("server %s (from server-template %s) has its health checks disabled at run time, which the template line cannot express; exported with 'check'", ref, t.Prefix))
				}
			}
		}
	}
	return notes
}

// foldRuntime writes runtime settings that HAProxy's config can express
// into the configuration: current addresses and weights, and maintenance
// as "disabled".
func foldRuntime(st balancer.State) balancer.Config {
	cfg := st.Config
	cfg.Backends = append([]balancer.Backend(nil), st.Config.Backends...)
	for i, be := range cfg.Backends {
		servers := append([]balancer.Server(nil), be.Servers...)
		for j, s := range servers {
			rt, ok := st.Servers[be.Name+"/"+s.Name]
			if !ok {
				continue
			}
			if _, err := netip.ParseAddr(s.Address); err == nil && rt.Address != "" {
				servers[j].Address = rt.Address
			}
			if rt.PortSet {
				servers[j].Port, servers[j].PortSet = rt.Port, true
			}
			servers[j].Weight = rt.Weight
			servers[j].Disabled = rt.Admin == balancer.Maint
		}
		cfg.Backends[i].Servers = servers
	}
	return cfg
}

// addrPortOf returns a runtime entry's address, for init-addr last.
func addrPortOf(rt balancer.ServerRuntime) (netip.AddrPort, bool) {
	a, err := netip.ParseAddr(rt.Address)
	if err != nil {
		return netip.AddrPort{}, false
	}
	return netip.AddrPortFrom(a, uint16(rt.Port)), true
}

// unreplacedSSLCerts returns the certificates committed at run time whose
// file still holds what it held at the commit. A file replaced since (or
// gone) wins, as on an HAProxy reload, and its committed certificate is
// dropped.
func unreplacedSSLCerts(certs []balancer.SSLCert) []balancer.SSLCert {
	var out []balancer.SSLCert
	for _, c := range certs {
		data, err := os.ReadFile(c.Path)
		if err != nil || tlsbind.Digest(data) != c.FileDigest {
			continue
		}
		out = append(out, c)
	}
	return out
}
