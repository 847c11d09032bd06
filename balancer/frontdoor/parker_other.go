//go:build !linux

package frontdoor

import (
	"log/slog"
	"time"
)

// parker is not available here: an idle connection keeps its goroutine.
type parker struct{}

func newParker(*slog.Logger) *parker { return nil }

func (p *parker) park(*h1conn, time.Time) bool { return false }

func (p *parker) take(*h1conn) bool { return false }

func (p *parker) stop() {}
