package store

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"time"
)

// CreateSession starts a console session for a user, valid for ttl, and
// returns its token: 32 random bytes, base64url-encoded. Only the token's
// SHA-256 is stored. Expired sessions are pruned on the way. It returns
// ErrNotFound for an unknown user.
func (s *Store) CreateSession(ctx context.Context, userID int64, ttl time.Duration) (string, error) {
	if ttl <= 0 {
		return "", fmt.Errorf("create session: ttl %v is not positive", ttl)
	}
	raw := make([]byte, 32)
	rand.Read(raw)
	token := base64.RawURLEncoding.EncodeToString(raw)
	now := s.now()
	err := s.write(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, "DELETE FROM sessions WHERE expires_ns <= ?", now.UnixNano()); err != nil {
			return fmt.Errorf("prune sessions: %w", err)
		}
		var n int
		if err := tx.QueryRowContext(ctx, "SELECT COUNT(*) FROM users WHERE id = ?", userID).Scan(&n); err != nil {
			return err
		}
		if n == 0 {
			return ErrNotFound
		}
		_, err := tx.ExecContext(ctx,
			"INSERT INTO sessions (token_hash, user_id, created_ns, expires_ns) VALUES (?, ?, ?, ?)",
			tokenHash(token), userID, now.UnixNano(), now.Add(ttl).UnixNano())
		return err
	})
	if err != nil {
		return "", fmt.Errorf("create session for user %d: %w", userID, err)
	}
	return token, nil
}

// SessionUser returns the user of a live session, or ErrNotFound for an
// unknown or expired token. The user's role is read now, so a role change
// takes effect on the next request.
func (s *Store) SessionUser(ctx context.Context, token string) (User, error) {
	var u User
	var created int64
	err := s.rdb.QueryRowContext(ctx, `SELECT u.id, u.name, u.role, u.created_ns
		FROM sessions s JOIN users u ON u.id = s.user_id
		WHERE s.token_hash = ? AND s.expires_ns > ?`, tokenHash(token), s.now().UnixNano()).
		Scan(&u.ID, &u.Name, &u.Role, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return User{}, fmt.Errorf("find session: %w", ErrNotFound)
	}
	if err != nil {
		return User{}, fmt.Errorf("find session: %w", err)
	}
	u.CreatedAt = time.Unix(0, created)
	return u, nil
}

// DeleteSession ends a session (logout). Ending an unknown session is not
// an error.
func (s *Store) DeleteSession(ctx context.Context, token string) error {
	err := s.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, "DELETE FROM sessions WHERE token_hash = ?", tokenHash(token))
		return err
	})
	if err != nil {
		return fmt.Errorf("delete session: %w", err)
	}
	return nil
}

// PruneSessions deletes expired sessions and returns how many it deleted.
func (s *Store) PruneSessions(ctx context.Context) (int64, error) {
	var n int64
	err := s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, "DELETE FROM sessions WHERE expires_ns <= ?", s.now().UnixNano())
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("prune sessions: %w", err)
	}
	return n, nil
}

func tokenHash(token string) []byte {
	h := sha256.Sum256([]byte(token))
	return h[:]
}
