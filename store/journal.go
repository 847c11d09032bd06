package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"tether/balancer"
)

// defaultCheckpointEvery is how many journal rows with changes may follow
// the newest state document before a commit writes a new one, so that
// loading the state replays at most that many.
const defaultCheckpointEvery = 1000

// Committer returns the hook the balancer calls for every change
// (balancer.Options.Committer). Each call runs Commit with a 5 s timeout.
func (s *Store) Committer() balancer.Committer {
	return func(c balancer.Commit) error {
		ctx, cancel := context.WithTimeout(context.Background(), commitTimeout)
		defer cancel()
		return s.Commit(ctx, c)
	}
}

// Commit appends one journal row in one transaction: the typed changes,
// and the audit entry saying who changed what, from what to what. A
// Replace (c.Replaced) stores c.After as a new state document instead;
// every defaultCheckpointEvery rows, the whole state is stored as one too. On
// error nothing is written.
func (s *Store) Commit(ctx context.Context, c balancer.Commit) error {
	_, err := s.CommitVersion(ctx, c)
	return err
}

// CommitVersion commits c as Commit does and returns the version (journal
// row) it wrote.
func (s *Store) CommitVersion(ctx context.Context, c balancer.Commit) (int64, error) {
	return s.commit(ctx, c, -1)
}

// CommitAt commits c as Commit does, for a node that has applied the
// journal up to version applied, and returns the version of the row it
// wrote. When a row that changed the state (typed changes, or a whole
// state) was committed after applied, it writes nothing and returns an
// error matching ErrConflict: the node must apply that row first. Rows
// that only record a refused command do not conflict.
func (s *Store) CommitAt(ctx context.Context, c balancer.Commit, applied int64) (int64, error) {
	if applied < 0 {
		return 0, fmt.Errorf("commit at version %d: versions start at 0", applied)
	}
	return s.commit(ctx, c, applied)
}

// commit commits c; when applied is not negative, only if no row changed
// the state after version applied.
func (s *Store) commit(ctx context.Context, c balancer.Commit, applied int64) (int64, error) {
	e := AuditEntry{
		Time:    c.Time,
		Actor:   c.Origin.Actor,
		Channel: c.Origin.Channel,
		Source:  c.Origin.Source,
		Command: c.Origin.Command,
		Result:  ResultOK,
	}
	if e.Time.IsZero() {
		e.Time = s.now()
	}
	primary := ""
	if len(c.Changes) > 0 {
		e.Backend = c.Changes[0].BackendName()
		primary = changeServer(c.Changes[0])
		if e.Command == "" {
			e.Command = changeCommand(c.Changes[0])
		}
	}
	d := description{backend: e.Backend}
	describeStates(c.Before, c.After, &d)
	e.Server = primary
	if e.Server == "" && len(d.servers) == 1 {
		for name := range d.servers {
			e.Server = name
		}
	}
	d.render(&e, primary)
	e = scrubEntry(e, append(stateKeys(c.Before), stateKeys(c.After)...))

	var changes []byte
	secrets := changeSecrets(c.Changes)
	if len(c.Changes) > 0 {
		var err error
		if changes, err = balancer.EncodeChanges(c.Changes); err != nil {
			return 0, fmt.Errorf("commit change: %w", err)
		}
	}
	var doc *balancer.State
	switch {
	case c.Replaced:
		if err := checkState(c.After); err != nil {
			return 0, fmt.Errorf("commit reload: %w", err)
		}
		doc = &c.After
	case c.State != nil && s.sinceDocument.Load() >= s.checkpointEvery:
		st := c.State()
		doc = &st
	}

	start := time.Now()
	var id int64
	err := s.write(ctx, func(tx *sql.Tx) error {
		if applied >= 0 {
			if err := checkApplied(ctx, tx, applied); err != nil {
				return err
			}
		}
		if err := insertSecrets(ctx, tx, secrets); err != nil {
			return err
		}
		var err error
		id, err = s.insertJournal(ctx, tx, e, changes)
		if err != nil {
			return err
		}
		if doc != nil {
			return insertDocumentFrom(ctx, tx, id, e.Time, *doc, c.Origin.File)
		}
		return nil
	})
	if err != nil {
		if len(c.Changes) > 0 {
			return 0, fmt.Errorf("commit %T to backend %q: %w", c.Changes[0], c.Changes[0].BackendName(), err)
		}
		return 0, fmt.Errorf("commit change: %w", err)
	}
	if doc != nil {
		s.sinceDocument.Store(0)
	} else if changes != nil {
		s.sinceDocument.Add(1)
	}
	if took := time.Since(start); took > slowCommit {
		s.log.Warn("slow commit", "backend", e.Backend, "server", e.Server, "took", took)
	}
	return id, nil
}

// checkApplied returns an error matching ErrConflict when a journal row
// after version applied changed the state. It runs in a write transaction,
// so no row can be committed between the check and the caller's write.
func checkApplied(ctx context.Context, tx *sql.Tx, applied int64) error {
	var newest int64
	err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(id), 0) FROM journal WHERE id > ?
		AND (changes != '' OR id IN (SELECT journal_id FROM state_documents WHERE journal_id > ?))`, applied, applied).Scan(&newest)
	if err != nil {
		return fmt.Errorf("check the journal version: %w", err)
	}
	if newest > 0 {
		return &ConflictError{Applied: applied, Newest: newest}
	}
	return nil
}

// slowCommit is the commit duration above which a warning is logged.
const slowCommit = time.Second

// changeServer returns the server a change names, or "".
func changeServer(c balancer.Change) string {
	if a, ok := c.(balancer.AddServer); ok {
		return a.Server.Name
	}
	if ref, ok := c.(interface{ Ref() balancer.ServerRef }); ok {
		return ref.Ref().Server
	}
	return ""
}

// changeCommand names a change for a journal row whose origin carried no
// command text. It never includes a key.
func changeCommand(c balancer.Change) string {
	name := strings.TrimPrefix(fmt.Sprintf("%T", c), "balancer.")
	if ref, ok := c.(interface{ Ref() balancer.ServerRef }); ok {
		return name + " " + ref.Ref().String()
	}
	return name + " " + c.BackendName()
}

// ReplaceState stores st as the whole state, as a new state document, and
// appends audit to the journal, in one transaction. It is meant for the
// first seeding of a database and for imports. audit.Time defaults to now,
// audit.Result to "ok" and audit.Detail to a summary of st; dynamic-cookie
// keys found in audit's text are replaced by their fingerprints.
func (s *Store) ReplaceState(ctx context.Context, st balancer.State, audit AuditEntry) error {
	_, err := s.ReplaceStateVersion(ctx, st, audit)
	return err
}

// ReplaceStateVersion stores st as ReplaceState does and returns the
// version (journal row) it wrote.
func (s *Store) ReplaceStateVersion(ctx context.Context, st balancer.State, audit AuditEntry) (int64, error) {
	if err := checkState(st); err != nil {
		return 0, fmt.Errorf("replace state: %w", err)
	}
	if audit.Time.IsZero() {
		audit.Time = s.now()
	}
	if audit.Result == "" {
		audit.Result = ResultOK
	}
	if audit.Detail == "" {
		audit.Detail = summarizeState(st)
	}
	audit = scrubEntry(audit, stateKeys(st))
	var version int64
	err := s.write(ctx, func(tx *sql.Tx) error {
		id, err := s.insertJournal(ctx, tx, audit, nil)
		if err != nil {
			return err
		}
		version = id
		return insertDocumentFrom(ctx, tx, id, audit.Time, st, audit.File)
	})
	if err != nil {
		return 0, fmt.Errorf("replace state: %w", err)
	}
	s.sinceDocument.Store(0)
	return version, nil
}

// LoadState reads the balancer's durable state: the newest state document
// with the changes journalled after it applied in order. found is false
// when no state was ever stored (a new database), in which case the State
// is empty.
//
// The State comes back in the form Normalize gives: every empty slice or map
// is nil.
func (s *Store) LoadState(ctx context.Context) (st balancer.State, found bool, err error) {
	st, found, _, err = s.LoadStateVersion(ctx)
	return st, found, err
}

// LoadStateVersion loads the state as LoadState does and returns the
// journal version it includes: the newest row at the time, so that a
// follower starting after that version misses no change and applies none
// twice.
func (s *Store) LoadStateVersion(ctx context.Context) (st balancer.State, found bool, version int64, err error) {
	opts := &sql.TxOptions{ReadOnly: true}
	if s.engine == postgresEngine {
		// One snapshot for the document, the secrets and the rows.
		opts.Isolation = sql.LevelRepeatableRead
	}
	tx, err := s.rdb.BeginTx(ctx, opts)
	if err != nil {
		return balancer.State{}, false, 0, fmt.Errorf("load state: begin: %w", err)
	}
	defer tx.Rollback()
	st, found, _, err = loadJournal(ctx, tx, s.now())
	if err != nil {
		return balancer.State{}, false, 0, fmt.Errorf("load state: %w", err)
	}
	if err := tx.QueryRowContext(ctx, "SELECT COALESCE(MAX(id), 0) FROM journal").Scan(&version); err != nil {
		return balancer.State{}, false, 0, fmt.Errorf("load state: read journal version: %w", err)
	}
	return Normalize(st), found, version, nil
}

// loadJournal returns the newest document with the journal after it
// replayed, and how many journal rows with changes it replayed.
func loadJournal(ctx context.Context, q querier, now time.Time) (balancer.State, bool, int64, error) {
	var docID int64
	var doc string
	err := q.QueryRowContext(ctx, "SELECT journal_id, document FROM state_documents ORDER BY journal_id DESC LIMIT 1").Scan(&docID, &doc)
	if errors.Is(err, sql.ErrNoRows) {
		return balancer.State{}, false, 0, nil
	}
	if err != nil {
		return balancer.State{}, false, 0, fmt.Errorf("read state document: %w", err)
	}
	st, err := balancer.DecodeState([]byte(doc))
	if err != nil {
		return balancer.State{}, false, 0, fmt.Errorf("state document of journal row %d: %w", docID, err)
	}
	secrets := make(map[string]string)
	err = eachRow(ctx, q, "SELECT ref, value FROM secrets", func(r *sql.Rows) error {
		var ref, value string
		if err := r.Scan(&ref, &value); err != nil {
			return err
		}
		secrets[ref] = value
		return nil
	})
	if err != nil {
		return balancer.State{}, false, 0, fmt.Errorf("read secrets: %w", err)
	}
	find := func(ref string) (string, bool) { v, ok := secrets[ref]; return v, ok }
	if err := st.ResolveSecrets(find); err != nil {
		return balancer.State{}, false, 0, fmt.Errorf("state document of journal row %d: %w", docID, err)
	}
	var changes []balancer.Change
	var rows int64
	err = eachRow(ctx, q, "SELECT id, changes FROM journal WHERE id > ? AND changes != '' ORDER BY id", func(r *sql.Rows) error {
		var id int64
		var data string
		if err := r.Scan(&id, &data); err != nil {
			return err
		}
		cs, err := balancer.DecodeChanges([]byte(data))
		if err == nil {
			err = openKeys(cs, find)
		}
		if err != nil {
			return fmt.Errorf("journal row %d: %w", id, err)
		}
		changes = append(changes, cs...)
		rows++
		return nil
	}, docID)
	if err != nil {
		return balancer.State{}, false, 0, fmt.Errorf("read journal: %w", err)
	}
	if st, err = balancer.Replay(st, changes, now); err != nil {
		return balancer.State{}, false, 0, fmt.Errorf("journal after row %d: %w", docID, err)
	}
	return st, true, rows, nil
}

// changeSecrets returns the keys and certificate bundles changes hold, by
// reference: journal rows hold the references (balancer.Secret marshals to
// one), the secrets table the values.
func changeSecrets(changes []balancer.Change) map[string]string {
	var out map[string]string
	add := func(s balancer.Secret) {
		if s == "" || s.IsRef() {
			return
		}
		if out == nil {
			out = make(map[string]string)
		}
		out[s.Ref()] = s.Reveal()
	}
	for _, c := range changes {
		switch c := c.(type) {
		case balancer.SetDynamicCookieKey:
			add(c.Key)
		case balancer.CommitSSLCert:
			add(c.Cert.PEM)
		}
	}
	return out
}

// openKeys puts the keys and certificate bundles back into changes read
// from the journal.
func openKeys(changes []balancer.Change, find func(string) (string, bool)) error {
	for i, c := range changes {
		switch k := c.(type) {
		case balancer.SetDynamicCookieKey:
			if err := k.Key.Resolve(find); err != nil {
				return err
			}
			changes[i] = k
		case balancer.CommitSSLCert:
			if err := k.Cert.PEM.Resolve(find); err != nil {
				return fmt.Errorf("certificate %s: %w", k.Cert.Path, err)
			}
			changes[i] = k
		}
	}
	return nil
}

// insertSecrets stores keys by reference.
func insertSecrets(ctx context.Context, tx *sql.Tx, secrets map[string]string) error {
	for ref, key := range secrets {
		if _, err := tx.ExecContext(ctx, "INSERT INTO secrets (ref, value) VALUES (?, ?) ON CONFLICT (ref) DO NOTHING", ref, key); err != nil {
			return fmt.Errorf("write secret: %w", err)
		}
	}
	return nil
}

// checkpoint stores the state as a document covering the whole journal.
func (s *Store) checkpoint(ctx context.Context, tx *sql.Tx) error {
	st, found, _, err := loadJournal(ctx, tx, s.now())
	if err != nil || !found {
		return err
	}
	var last int64
	if err := tx.QueryRowContext(ctx, "SELECT COALESCE(MAX(id), 0) FROM journal").Scan(&last); err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	file, err := newestDocumentFile(ctx, tx)
	if err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	if _, err := tx.ExecContext(ctx, "DELETE FROM state_documents WHERE journal_id = ?", last); err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	if err := insertDocumentFrom(ctx, tx, last, s.now(), st, file); err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	s.sinceDocument.Store(0)
	return nil
}

// insertJournal appends a journal row and returns its version (its id). On
// PostgreSQL it notifies journalChannel with the version; the notification
// goes out when tx commits.
func (s *Store) insertJournal(ctx context.Context, tx *sql.Tx, e AuditEntry, changes []byte) (int64, error) {
	var id int64
	err := tx.QueryRowContext(ctx, `INSERT INTO journal (time_ns, actor, channel, source, command, result,
		backend, server, state_before, state_after, detail, changes) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		RETURNING id`,
		e.Time.UnixNano(), e.Actor, e.Channel, e.Source, e.Command, e.Result,
		e.Backend, e.Server, e.Before, e.After, e.Detail, string(changes)).Scan(&id)
	if err != nil {
		return 0, fmt.Errorf("write journal row: %w", err)
	}
	if s.engine == postgresEngine {
		if _, err := tx.ExecContext(ctx, "SELECT pg_notify(?, ?)", journalChannel, strconv.FormatInt(id, 10)); err != nil {
			return 0, fmt.Errorf("notify journal row %d: %w", id, err)
		}
	}
	return id, nil
}

// insertDocument stores st as the state once journal row id is applied;
// its keys go to the secrets table, the document names them.
func insertDocument(ctx context.Context, tx *sql.Tx, id int64, t time.Time, st balancer.State) error {
	doc, err := balancer.EncodeState(st)
	if err != nil {
		return err
	}
	if err := insertSecrets(ctx, tx, st.Secrets()); err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, "INSERT INTO state_documents (journal_id, time_ns, document) VALUES (?, ?, ?)",
		id, t.UnixNano(), string(doc))
	if err != nil {
		return fmt.Errorf("write state document: %w", err)
	}
	return nil
}

// checkState reports an error if st cannot be loaded back as it is: two
// backends or two servers of a backend with one name, an unknown cookie or
// admin mode, or runtime settings under a key that is not "backend/server"
// for one of its backends. Servers need not be configured ones:
// server-template slots have runtime settings only.
func checkState(st balancer.State) error {
	backends := make(map[string]bool, len(st.Config.Backends))
	for _, b := range st.Config.Backends {
		if backends[b.Name] {
			return fmt.Errorf("two backends named %q", b.Name)
		}
		backends[b.Name] = true
		if b.Cookie != nil && (b.Cookie.Mode < balancer.CookiePassive || b.Cookie.Mode > balancer.CookiePrefix) {
			return fmt.Errorf("backend %q: unknown cookie mode %d", b.Name, b.Cookie.Mode)
		}
		servers := make(map[string]bool, len(b.Servers))
		for _, sv := range b.Servers {
			if servers[sv.Name] {
				return fmt.Errorf("backend %q: two servers named %q", b.Name, sv.Name)
			}
			servers[sv.Name] = true
		}
	}
	for k, rt := range st.Servers {
		b, s, ok := strings.Cut(k, "/")
		if !ok || s == "" || !backends[b] {
			return fmt.Errorf("runtime settings for %q, which names no server of a configured backend", k)
		}
		if rt.Admin < balancer.Ready || rt.Admin > balancer.Maint {
			return fmt.Errorf("server %q: unknown admin mode %d", k, rt.Admin)
		}
	}
	return nil
}

func summarizeState(st balancer.State) string {
	n := 0
	for _, b := range st.Config.Backends {
		n += len(b.Servers)
	}
	return fmt.Sprintf("state replaced: %d frontends, %d backends, %d servers, %d resolvers",
		len(st.Config.Frontends), len(st.Config.Backends), n, len(st.Config.Resolvers))
}

// insertDocumentFrom stores st like insertDocument, with the configuration
// file it came from; a zero file carries the newest document's forward, so
// the last import is known whatever checkpoints followed it.
func insertDocumentFrom(ctx context.Context, tx *sql.Tx, id int64, t time.Time, st balancer.State, file balancer.ConfigFile) error {
	if file == (balancer.ConfigFile{}) {
		var err error
		if file, err = newestDocumentFile(ctx, tx); err != nil {
			return err
		}
	}
	if err := insertDocument(ctx, tx, id, t, st); err != nil {
		return err
	}
	_, err := tx.ExecContext(ctx, "UPDATE state_documents SET source_file = ?, source_digest = ? WHERE journal_id = ?", file.Path, file.Digest, id)
	if err != nil {
		return fmt.Errorf("write state document: %w", err)
	}
	return nil
}

// newestDocumentFile returns the configuration file of the newest state
// document, zero when there is none or it came from no file.
func newestDocumentFile(ctx context.Context, q querier) (balancer.ConfigFile, error) {
	var f balancer.ConfigFile
	err := q.QueryRowContext(ctx, "SELECT source_file, source_digest FROM state_documents ORDER BY journal_id DESC LIMIT 1").Scan(&f.Path, &f.Digest)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return f, fmt.Errorf("read state document source: %w", err)
	}
	return f, nil
}

// LastImport returns the configuration file of the last import or reload
// whose state the database holds, zero when there was none.
func (s *Store) LastImport(ctx context.Context) (balancer.ConfigFile, error) {
	f, err := newestDocumentFile(ctx, s.rdb)
	if err != nil || f != (balancer.ConfigFile{}) {
		return f, err
	}
	return legacyLastImport(ctx, s.rdb)
}
