//go:build !linux

package frontdoor

import "log/slog"

// parker is not available here: an idle connection keeps its goroutine.
type parker struct{}

func newParker(*slog.Logger) *parker { return nil }

func (p *parker) park(*h1conn) bool { return false }

func (p *parker) take(*h1conn) bool { return false }

func (p *parker) stop() {}

// detachedSocket is never made here: without a parker, no connection is
// detached.
type detachedSocket struct{}

func (c *h1conn) closeDetached() {}
