package store

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/trustelem/zxcvbn"
	"golang.org/x/crypto/argon2"
	"golang.org/x/text/secure/precis"
)

// Console roles, from least to most privileged: a viewer watches, an
// operator changes server states, weights and keys, an admin also manages
// users and configuration.
const (
	RoleViewer   = "viewer"
	RoleOperator = "operator"
	RoleAdmin    = "admin"
)

// Password limits: length in bytes, and the least zxcvbn score (0 to 4;
// 3 is "safely unguessable", about 10^8 guesses) of the password's first
// strengthPrefix bytes (zxcvbn's time grows fast with length; a longer
// password whose start is weak is still refused).
const (
	MinPasswordLen   = 8
	MaxPasswordLen   = 1024
	MinPasswordScore = 3
	strengthPrefix   = 64
)

// argon2id parameters for new password hashes (OWASP's minimum: 19 MiB,
// two passes, one lane). Stored hashes carry their own parameters, so these
// can be raised without invalidating existing passwords.
const (
	argonMemory  = 19 * 1024 // KiB
	argonTime    = 2
	argonThreads = 1
	argonKeyLen  = 32
	argonSaltLen = 16
)

// User is a console user. The password hash never leaves the store.
type User struct {
	ID        int64
	Name      string
	Role      string
	CreatedAt time.Time
}

// ValidRole reports whether role is viewer, operator or admin.
func ValidRole(role string) bool {
	return role == RoleViewer || role == RoleOperator || role == RoleAdmin
}

// CanonicalUserName returns the form a user name is stored and compared
// in: the PRECIS UsernameCaseMapped profile (RFC 8265: width mapping, lower
// case, NFC), which must leave only ASCII letters, digits and ".-_@+", 1 to
// 64 of them. Names that would need another script are refused rather than
// mapped, so "аdmin" with a Cyrillic "а" can never pass for "admin"; "Admin"
// and the full-width "ａｄｍｉｎ" are "admin". It returns ErrInvalidName.
func CanonicalUserName(name string) (string, error) {
	if len(name) > 256 {
		return "", ErrInvalidName
	}
	c, err := precis.UsernameCaseMapped.String(name)
	if err != nil || c == "" || len(c) > 64 {
		return "", ErrInvalidName
	}
	for i := 0; i < len(c); i++ {
		b := c[i]
		if !('a' <= b && b <= 'z' || '0' <= b && b <= '9' || strings.IndexByte(".-_@+", b) >= 0) {
			return "", ErrInvalidName
		}
	}
	return c, nil
}

// validPassword refuses passwords out of the length limits and, through
// zxcvbn, common, guessable ones; the user name and product names count as
// known words.
func validPassword(name, pw string) error {
	if len(pw) < MinPasswordLen || len(pw) > MaxPasswordLen {
		return fmt.Errorf("%w: want %d to %d bytes", ErrWeakPassword, MinPasswordLen, MaxPasswordLen)
	}
	head := pw
	if len(head) > strengthPrefix {
		head = strings.ToValidUTF8(head[:strengthPrefix], "")
	}
	if r := zxcvbn.PasswordStrength(head, []string{name, "tether", "haproxy", "console", "admin"}); r.Score < MinPasswordScore {
		return fmt.Errorf("%w: too easy to guess (strength %d of 4, want %d); use a longer passphrase of unrelated words", ErrWeakPassword, r.Score, MinPasswordScore)
	}
	return nil
}

// resolveName returns the stored name of the user a management command
// names: the exact stored name when there is one, else the canonical form.
func resolveName(ctx context.Context, q interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}, name string) (string, error) {
	var n int
	if err := q.QueryRowContext(ctx, "SELECT COUNT(*) FROM users WHERE name = ?", name).Scan(&n); err != nil {
		return "", err
	}
	if n > 0 {
		return name, nil
	}
	c, err := CanonicalUserName(name)
	if err != nil {
		return "", ErrNotFound
	}
	return c, nil
}

// CreateUser adds a console user under the canonical form of name (see
// CanonicalUserName). It returns ErrInvalidName,
// ErrWeakPassword, ErrInvalidRole or ErrExists when it cannot.
func (s *Store) CreateUser(ctx context.Context, name, password, role string) (User, error) {
	canon, err := CanonicalUserName(name)
	if err != nil {
		return User{}, fmt.Errorf("create user %q: %w", name, err)
	}
	name = canon
	if !ValidRole(role) {
		return User{}, fmt.Errorf("create user %q: %w", name, ErrInvalidRole)
	}
	if err := validPassword(name, password); err != nil {
		return User{}, fmt.Errorf("create user %q: %w", name, err)
	}
	hash, err := hashPassword(password)
	if err != nil {
		return User{}, fmt.Errorf("create user %q: %w", name, err)
	}
	u := User{Name: name, Role: role, CreatedAt: s.now()}
	err = s.write(ctx, func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, "SELECT COUNT(*) FROM users WHERE name = ?", name).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return ErrExists
		}
		return tx.QueryRowContext(ctx,
			"INSERT INTO users (name, role, password_hash, created_ns) VALUES (?, ?, ?, ?) RETURNING id",
			name, role, hash, u.CreatedAt.UnixNano()).Scan(&u.ID)
	})
	if err != nil {
		return User{}, fmt.Errorf("create user %q: %w", name, err)
	}
	u.CreatedAt = time.Unix(0, u.CreatedAt.UnixNano())
	return u, nil
}

// Authenticate checks a user name and password and returns the user, or
// ErrBadCredentials. The name is compared in its canonical form. It takes
// about as long for an unknown or invalid name as for a wrong password.
func (s *Store) Authenticate(ctx context.Context, name, password string) (User, error) {
	var u User
	var hash string
	var created int64
	err := sql.ErrNoRows
	if canon, cerr := CanonicalUserName(name); cerr == nil {
		name = canon
		err = s.rdb.QueryRowContext(ctx,
			"SELECT id, name, role, password_hash, created_ns FROM users WHERE name = ?", name).
			Scan(&u.ID, &u.Name, &u.Role, &hash, &created)
	}
	if errors.Is(err, sql.ErrNoRows) {
		// Spend the time a real check takes.
		checkPassword(s.dummy(), password)
		return User{}, ErrBadCredentials
	}
	if err != nil {
		return User{}, fmt.Errorf("authenticate %q: %w", name, err)
	}
	ok, err := checkPassword(hash, password)
	if err != nil {
		return User{}, fmt.Errorf("authenticate %q: %w", name, err)
	}
	if !ok {
		return User{}, ErrBadCredentials
	}
	u.CreatedAt = time.Unix(0, created)
	return u, nil
}

// dummy returns a hash to check passwords of unknown users against.
func (s *Store) dummy() string {
	s.dummyOnce.Do(func() {
		pw := make([]byte, 16)
		rand.Read(pw)
		h, err := hashPassword(base64.RawStdEncoding.EncodeToString(pw))
		if err != nil {
			s.log.Error("make dummy password hash", "err", err)
		}
		s.dummyHash = h
	})
	return s.dummyHash
}

// GetUser returns the named user (by stored or canonical name), or
// ErrNotFound.
func (s *Store) GetUser(ctx context.Context, name string) (User, error) {
	var u User
	var created int64
	stored, err := resolveName(ctx, s.rdb, name)
	if err == nil {
		err = s.rdb.QueryRowContext(ctx, "SELECT id, name, role, created_ns FROM users WHERE name = ?", stored).
			Scan(&u.ID, &u.Name, &u.Role, &created)
	}
	if errors.Is(err, sql.ErrNoRows) || errors.Is(err, ErrNotFound) {
		return User{}, fmt.Errorf("get user %q: %w", name, ErrNotFound)
	}
	if err != nil {
		return User{}, fmt.Errorf("get user %q: %w", name, err)
	}
	u.CreatedAt = time.Unix(0, created)
	return u, nil
}

// ListUsers returns every user, by name.
func (s *Store) ListUsers(ctx context.Context) ([]User, error) {
	var out []User
	err := eachRow(ctx, s.rdb, "SELECT id, name, role, created_ns FROM users ORDER BY name", func(r *sql.Rows) error {
		var u User
		var created int64
		if err := r.Scan(&u.ID, &u.Name, &u.Role, &created); err != nil {
			return err
		}
		u.CreatedAt = time.Unix(0, created)
		out = append(out, u)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	return out, nil
}

// CountUsers returns the number of users; 0 means the console has not been
// set up yet.
func (s *Store) CountUsers(ctx context.Context) (int, error) {
	var n int
	if err := s.rdb.QueryRowContext(ctx, "SELECT COUNT(*) FROM users").Scan(&n); err != nil {
		return 0, fmt.Errorf("count users: %w", err)
	}
	return n, nil
}

// SetUserRole changes a user's role and, when the role is a different
// one, ends all of that user's sessions. It returns ErrInvalidRole,
// ErrNotFound, or ErrLastAdmin when it would leave no admin.
func (s *Store) SetUserRole(ctx context.Context, name, role string) error {
	if !ValidRole(role) {
		return fmt.Errorf("set role of user %q: %w", name, ErrInvalidRole)
	}
	err := s.write(ctx, func(tx *sql.Tx) error {
		name, err := resolveName(ctx, tx, name)
		if err != nil {
			return err
		}
		if err := checkNotLastAdmin(ctx, tx, name, role != RoleAdmin); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, "UPDATE users SET role = ? WHERE name = ? AND role <> ?", role, name, role)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			return err
		}
		_, err = tx.ExecContext(ctx, "DELETE FROM sessions WHERE user_id = (SELECT id FROM users WHERE name = ?)", name)
		return err
	})
	if err != nil {
		return fmt.Errorf("set role of user %q: %w", name, err)
	}
	return nil
}

// checkNotLastAdmin returns ErrNotFound if the user does not exist, and
// ErrLastAdmin if removing is set and the user is the only admin.
func checkNotLastAdmin(ctx context.Context, tx *sql.Tx, name string, removing bool) error {
	var role string
	err := tx.QueryRowContext(ctx, "SELECT role FROM users WHERE name = ?", name).Scan(&role)
	if errors.Is(err, sql.ErrNoRows) {
		return ErrNotFound
	}
	if err != nil {
		return err
	}
	if !removing || role != RoleAdmin {
		return nil
	}
	var admins int
	if err := tx.QueryRowContext(ctx, "SELECT COUNT(*) FROM users WHERE role = ?", RoleAdmin).Scan(&admins); err != nil {
		return err
	}
	if admins <= 1 {
		return ErrLastAdmin
	}
	return nil
}

// SetUserPassword changes a user's password and ends all of that user's
// sessions. It returns ErrWeakPassword or ErrNotFound when it cannot.
func (s *Store) SetUserPassword(ctx context.Context, name, password string) error {
	if err := validPassword(name, password); err != nil {
		return fmt.Errorf("set password of user %q: %w", name, err)
	}
	hash, err := hashPassword(password)
	if err != nil {
		return fmt.Errorf("set password of user %q: %w", name, err)
	}
	err = s.write(ctx, func(tx *sql.Tx) error {
		name, err := resolveName(ctx, tx, name)
		if err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, "UPDATE users SET password_hash = ? WHERE name = ?", hash, name)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return ErrNotFound
		}
		_, err = tx.ExecContext(ctx,
			"DELETE FROM sessions WHERE user_id = (SELECT id FROM users WHERE name = ?)", name)
		return err
	})
	if err != nil {
		return fmt.Errorf("set password of user %q: %w", name, err)
	}
	return nil
}

// DeleteUser deletes a user and their sessions. It returns ErrNotFound, or
// ErrLastAdmin for the only admin.
func (s *Store) DeleteUser(ctx context.Context, name string) error {
	err := s.write(ctx, func(tx *sql.Tx) error {
		name, err := resolveName(ctx, tx, name)
		if err != nil {
			return err
		}
		if err := checkNotLastAdmin(ctx, tx, name, true); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, "DELETE FROM users WHERE name = ?", name)
		return err
	})
	if err != nil {
		return fmt.Errorf("delete user %q: %w", name, err)
	}
	return nil
}

// hashPassword returns the argon2id hash of pw in PHC string format.
func hashPassword(pw string) (string, error) {
	salt := make([]byte, argonSaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("make salt: %w", err)
	}
	key := argon2.IDKey([]byte(pw), salt, argonTime, argonMemory, argonThreads, argonKeyLen)
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, argonMemory, argonTime, argonThreads,
		base64.RawStdEncoding.EncodeToString(salt), base64.RawStdEncoding.EncodeToString(key)), nil
}

// checkPassword reports whether pw matches a hash made by hashPassword.
func checkPassword(encoded, pw string) (bool, error) {
	parts := strings.Split(encoded, "$")
	if len(parts) != 6 || parts[1] != "argon2id" {
		return false, errors.New("unknown password hash format")
	}
	var version int
	if _, err := fmt.Sscanf(parts[2], "v=%d", &version); err != nil || version != argon2.Version {
		return false, fmt.Errorf("unsupported argon2 version %q", parts[2])
	}
	var m, t uint32
	var p uint8
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &m, &t, &p); err != nil {
		return false, fmt.Errorf("bad argon2 parameters %q: %w", parts[3], err)
	}
	if m == 0 || m > 4<<20 || t == 0 || t > 100 || p == 0 {
		return false, fmt.Errorf("argon2 parameters out of range %q", parts[3])
	}
	salt, err := base64.RawStdEncoding.DecodeString(parts[4])
	if err != nil {
		return false, fmt.Errorf("bad salt: %w", err)
	}
	want, err := base64.RawStdEncoding.DecodeString(parts[5])
	if err != nil || len(want) == 0 {
		return false, errors.New("bad hash")
	}
	got := argon2.IDKey([]byte(pw), salt, t, m, p, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1, nil
}
