package store_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"tether/store"
	"tether/store/storetest"
)

func TestCreateUser(t *testing.T) {
	tests := []struct {
		name, user, password, role string
		wantErr                    error
	}{
		{"ok", "alice", "correct horse", store.RoleAdmin, nil},
		{"viewer", "bob", "plum-orbit-41", store.RoleViewer, nil},
		{"operator", "carol", "plum-orbit-41", store.RoleOperator, nil},
		{"duplicate", "dup", "plum-orbit-41", store.RoleViewer, store.ErrExists},
		{"bad role", "dave", "plum-orbit-41", "root", store.ErrInvalidRole},
		{"empty role", "dave", "plum-orbit-41", "", store.ErrInvalidRole},
		{"empty name", "", "plum-orbit-41", store.RoleViewer, store.ErrInvalidName},
		{"space in name", "a b", "plum-orbit-41", store.RoleViewer, store.ErrInvalidName},
		{"control in name", "a\x00b", "plum-orbit-41", store.RoleViewer, store.ErrInvalidName},
		{"long name", strings.Repeat("n", 65), "plum-orbit-41", store.RoleViewer, store.ErrInvalidName},
		{"short password", "erin", "short", store.RoleViewer, store.ErrWeakPassword},
		{"long password", "erin", strings.Repeat("p", store.MaxPasswordLen+1), store.RoleViewer, store.ErrWeakPassword},
		{"common password", "erin", "Password1!", store.RoleViewer, store.ErrWeakPassword},
		{"keyboard walk", "erin", "qwertyuiop", store.RoleViewer, store.ErrWeakPassword},
		{"name as password", "erinhopkins", "erinhopkins1", store.RoleViewer, store.ErrWeakPassword},
		{"long but weak start", "erin", strings.Repeat("ab", 200), store.RoleViewer, store.ErrWeakPassword},
		{"cyrillic a in name", "\u0430lice2", "plum-orbit-41", store.RoleViewer, store.ErrInvalidName},
		{"greek in name", "\u03b1dmin", "plum-orbit-41", store.RoleViewer, store.ErrInvalidName},
		{"slash in name", "a/b", "plum-orbit-41", store.RoleViewer, store.ErrInvalidName},
	}
	ctx := context.Background()
	s := storetest.Open(t)
	if _, err := s.CreateUser(ctx, "dup", "plum-orbit-41", store.RoleViewer); err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u, err := s.CreateUser(ctx, tt.user, tt.password, tt.role)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("CreateUser error = %v, want %v", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			if u.ID == 0 || u.Name != tt.user || u.Role != tt.role || u.CreatedAt.IsZero() {
				t.Errorf("CreateUser = %+v", u)
			}
			got, err := s.Authenticate(ctx, tt.user, tt.password)
			if err != nil {
				t.Fatalf("Authenticate: %v", err)
			}
			if got != u {
				t.Errorf("Authenticate = %+v, want %+v", got, u)
			}
		})
	}
}

func TestAuthenticate(t *testing.T) {
	ctx := context.Background()
	s := storetest.Open(t)
	if _, err := s.CreateUser(ctx, "alice", "correct horse", store.RoleOperator); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, user, password string
		wantErr              error
	}{
		{"ok", "alice", "correct horse", nil},
		{"wrong password", "alice", "correct horsE", store.ErrBadCredentials},
		{"empty password", "alice", "", store.ErrBadCredentials},
		{"unknown user", "mallory", "correct horse", store.ErrBadCredentials},
		{"name case folded", "Alice", "correct horse", nil},
		{"full-width name mapped", "\uff41lice", "correct horse", nil},
		{"cyrillic look-alike", "\u0430lice", "correct horse", store.ErrBadCredentials},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u, err := s.Authenticate(ctx, tt.user, tt.password)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Authenticate error = %v, want %v", err, tt.wantErr)
			}
			if err == nil && (u.Name != "alice" || u.Role != store.RoleOperator) {
				t.Errorf("Authenticate = %+v", u)
			}
		})
	}
}

func TestPasswordStoredAsArgon2id(t *testing.T) {
	ctx := context.Background()
	s := storetest.Open(t)
	for _, name := range []string{"a", "b"} {
		if _, err := s.CreateUser(ctx, name, "same plum orbit 41", store.RoleViewer); err != nil {
			t.Fatal(err)
		}
	}
	rows, err := store.RawDB(s).Query("SELECT password_hash FROM users")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var hashes []string
	for rows.Next() {
		var h string
		if err := rows.Scan(&h); err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(h, "$argon2id$v=19$m=") || strings.Contains(h, "same plum orbit 41") {
			t.Errorf("password hash %q is not an argon2id PHC string", h)
		}
		hashes = append(hashes, h)
	}
	if len(hashes) != 2 || hashes[0] == hashes[1] {
		t.Errorf("hashes %q: want two different salted hashes", hashes)
	}
}

func TestUserAdministration(t *testing.T) {
	ctx := context.Background()
	s := storetest.Open(t)
	if n, err := s.CountUsers(ctx); err != nil || n != 0 {
		t.Fatalf("CountUsers on a new database = %d, %v", n, err)
	}
	for _, u := range []struct{ name, role string }{{"root", store.RoleAdmin}, {"ops", store.RoleOperator}, {"view", store.RoleViewer}} {
		if _, err := s.CreateUser(ctx, u.name, "plum-orbit-"+u.name, u.role); err != nil {
			t.Fatal(err)
		}
	}
	steps := []struct {
		name    string
		do      func() error
		wantErr error
	}{
		{"demote last admin", func() error { return s.SetUserRole(ctx, "root", store.RoleOperator) }, store.ErrLastAdmin},
		{"delete last admin", func() error { return s.DeleteUser(ctx, "root") }, store.ErrLastAdmin},
		{"invalid role", func() error { return s.SetUserRole(ctx, "ops", "superuser") }, store.ErrInvalidRole},
		{"role of unknown user", func() error { return s.SetUserRole(ctx, "ghost", store.RoleViewer) }, store.ErrNotFound},
		{"promote", func() error { return s.SetUserRole(ctx, "ops", store.RoleAdmin) }, nil},
		{"demote one of two admins", func() error { return s.SetUserRole(ctx, "root", store.RoleViewer) }, nil},
		{"delete the other now last", func() error { return s.DeleteUser(ctx, "ops") }, store.ErrLastAdmin},
		{"delete a viewer", func() error { return s.DeleteUser(ctx, "view") }, nil},
		{"delete unknown", func() error { return s.DeleteUser(ctx, "view") }, store.ErrNotFound},
		{"weak password", func() error { return s.SetUserPassword(ctx, "root", "123") }, store.ErrWeakPassword},
		{"password of unknown user", func() error { return s.SetUserPassword(ctx, "ghost", "plum-orbit-ghost") }, store.ErrNotFound},
		{"new password", func() error { return s.SetUserPassword(ctx, "root", "brand new password") }, nil},
	}
	for _, st := range steps {
		if err := st.do(); !errors.Is(err, st.wantErr) {
			t.Errorf("%s: error %v, want %v", st.name, err, st.wantErr)
		}
	}
	users, err := s.ListUsers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, u := range users {
		got = append(got, u.Name+":"+u.Role)
	}
	if want := "ops:admin root:viewer"; strings.Join(got, " ") != want {
		t.Errorf("users = %q, want %q", strings.Join(got, " "), want)
	}
	if n, err := s.CountUsers(ctx); err != nil || n != 2 {
		t.Errorf("CountUsers = %d, %v; want 2", n, err)
	}
	if _, err := s.Authenticate(ctx, "root", "password-root"); !errors.Is(err, store.ErrBadCredentials) {
		t.Errorf("old password still accepted: %v", err)
	}
	if _, err := s.Authenticate(ctx, "root", "brand new password"); err != nil {
		t.Errorf("new password refused: %v", err)
	}
	if u, err := s.GetUser(ctx, "root"); err != nil || u.Role != store.RoleViewer {
		t.Errorf("GetUser = %+v, %v", u, err)
	}
	if _, err := s.GetUser(ctx, "view"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetUser of a deleted user: %v, want ErrNotFound", err)
	}
}

// TestLastAdminRace demotes two admins at once: one must be refused.
func TestLastAdminRace(t *testing.T) {
	ctx := context.Background()
	s := storetest.Open(t)
	for _, n := range []string{"a1", "a2"} {
		if _, err := s.CreateUser(ctx, n, "plum-orbit-"+n, store.RoleAdmin); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i, n := range []string{"a1", "a2"} {
		wg.Go(func() { errs[i] = s.DeleteUser(ctx, n) })
	}
	wg.Wait()
	refused := 0
	for _, err := range errs {
		if errors.Is(err, store.ErrLastAdmin) {
			refused++
		} else if err != nil {
			t.Errorf("DeleteUser: %v", err)
		}
	}
	if refused != 1 {
		t.Errorf("%d deletions refused, want exactly 1 (errors %v)", refused, errs)
	}
}

func TestSessions(t *testing.T) {
	ctx := context.Background()
	s := storetest.Open(t)
	now := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	store.SetNow(s, func() time.Time { mu.Lock(); defer mu.Unlock(); return now })
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }

	alice, err := s.CreateUser(ctx, "alice", "plum-orbit-a", store.RoleOperator)
	if err != nil {
		t.Fatal(err)
	}
	bob, err := s.CreateUser(ctx, "bob", "plum-orbit-b", store.RoleAdmin)
	if err != nil {
		t.Fatal(err)
	}
	tokA, err := s.CreateSession(ctx, alice.ID, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	tokA2, err := s.CreateSession(ctx, alice.ID, 3*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	tokB, err := s.CreateSession(ctx, bob.ID, 2*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if len(tokA) != 43 || tokA == tokA2 {
		t.Errorf("tokens %q and %q: want two different 43-character tokens", tokA, tokA2)
	}
	if _, err := s.CreateSession(ctx, 9999, time.Hour); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("session for unknown user: %v, want ErrNotFound", err)
	}
	if _, err := s.CreateSession(ctx, alice.ID, 0); err == nil {
		t.Error("session with zero ttl accepted")
	}

	// Only hashes are stored.
	var stored int
	for _, tok := range []string{tokA, tokA2, tokB} {
		if err := store.RawDB(s).QueryRow("SELECT COUNT(*) FROM sessions WHERE token_hash = ? OR CAST(token_hash AS TEXT) = ?",
			tok, tok).Scan(&stored); err != nil {
			t.Fatal(err)
		}
		if stored != 0 {
			t.Errorf("token %q is stored in clear", tok)
		}
	}

	check := func(name, tok string, want string) {
		t.Helper()
		u, err := s.SessionUser(ctx, tok)
		if want == "" {
			if !errors.Is(err, store.ErrNotFound) {
				t.Errorf("%s: SessionUser = %+v, %v; want ErrNotFound", name, u, err)
			}
			return
		}
		if err != nil || u.Name+":"+u.Role != want {
			t.Errorf("%s: SessionUser = %+v, %v; want %s", name, u, err, want)
		}
	}
	check("fresh", tokA, "alice:operator")
	check("fresh bob", tokB, "bob:admin")
	check("unknown token", "not-a-token", "")
	check("empty token", "", "")

	if err := s.SetUserRole(ctx, "alice", store.RoleOperator); err != nil {
		t.Fatal(err)
	}
	check("setting the same role keeps sessions", tokA, "alice:operator")

	advance(time.Hour)
	check("expired at its ttl", tokA, "")
	check("other session of the same user", tokA2, "alice:operator")

	if err := s.DeleteSession(ctx, tokB); err != nil {
		t.Fatal(err)
	}
	check("logged out", tokB, "")
	if err := s.DeleteSession(ctx, tokB); err != nil {
		t.Errorf("second logout: %v", err)
	}

	n, err := s.PruneSessions(ctx)
	if err != nil || n != 1 {
		t.Errorf("PruneSessions = %d, %v; want 1 (the expired one)", n, err)
	}

	if err := s.SetUserRole(ctx, "Alice", store.RoleViewer); err != nil {
		t.Fatal(err)
	}
	check("role change ends sessions", tokA2, "")

	tokA3, err := s.CreateSession(ctx, alice.ID, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	check("new session after role change", tokA3, "alice:viewer")
	if err := s.SetUserPassword(ctx, "alice", "new password!"); err != nil {
		t.Fatal(err)
	}
	check("password change ends sessions", tokA3, "")

	tokB2, err := s.CreateSession(ctx, bob.ID, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.SetUserRole(ctx, "alice", store.RoleAdmin); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteUser(ctx, "bob"); err != nil {
		t.Fatal(err)
	}
	check("user deleted", tokB2, "")
	var left int
	if err := store.RawDB(s).QueryRow("SELECT COUNT(*) FROM sessions").Scan(&left); err != nil {
		t.Fatal(err)
	}
	if left != 0 {
		t.Errorf("%d sessions left, want 0", left)
	}
}
