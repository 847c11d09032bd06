package connlimit

import (
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// AcceptLog reports a listener's accept errors without flooding the log:
// a warning when a burst starts, at most one a second however bursts come
// and go, each with the number of failures since the previous warning, and
// a line when accepting works again after a reported burst. It is safe for concurrent use, and a success
// outside a burst costs one atomic load.
type AcceptLog struct {
	log   *slog.Logger
	attrs []any

	failing  atomic.Bool
	mu       sync.Mutex
	total    int       // failures in this burst
	unseen   int       // failures since the last warning
	warned   time.Time // when the last warning was logged
	reported bool      // this burst was warned about
}

// NewAcceptLog returns an AcceptLog writing to log with attrs on every
// line (the listener's address, say).
func NewAcceptLog(log *slog.Logger, attrs ...any) *AcceptLog {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &AcceptLog{log: log, attrs: attrs}
}

// Failed records a failed accept.
func (a *AcceptLog) Failed(err error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.failing.Store(true)
	a.total++
	a.unseen++
	if now := time.Now(); now.Sub(a.warned) >= time.Second {
		a.log.Warn("accept failed, retrying with backoff", append(a.attrs, "error", err, "failed_accepts", a.unseen)...)
		a.warned, a.unseen, a.reported = now, 0, true
	}
}

// Succeeded records a successful accept, ending a burst.
func (a *AcceptLog) Succeeded() {
	if !a.failing.Load() {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if !a.failing.Load() {
		return
	}
	if a.reported {
		a.log.Info("accepting connections again", append(a.attrs, "failed_accepts", a.total)...)
	}
	// Failures not yet reported are counted in the next warning.
	a.failing.Store(false)
	a.total, a.reported = 0, false
}
