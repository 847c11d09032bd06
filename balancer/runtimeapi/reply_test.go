package runtimeapi

import (
	"errors"
	"fmt"
	"testing"

	"tether/balancer"
)

// ownReply is an error that carries the reply to give for it.
type ownReply struct{}

func (ownReply) Error() string { return "refused by the committer" }
func (ownReply) Reply() string { return "Change refused: because." }

func TestErrorReply(t *testing.T) {
	tests := []struct {
		err  error
		want string
	}{
		{balancer.ErrNoSuchServer, "No such server.\n"},
		{fmt.Errorf("persist change: %w", ownReply{}), "Change refused: because.\n"},
		{errors.New("disk full"), "Failed to apply the change, check logs for details.\n"},
	}
	for _, tt := range tests {
		if got := errorReply(tt.err); got != tt.want {
			t.Errorf("errorReply(%v) = %q, want %q", tt.err, got, tt.want)
		}
	}
}
