package balancer

import (
	"context"
	"errors"
)

func errorsIs(err, target error) bool { return errors.Is(err, target) }

func contextWithCancel() (context.Context, context.CancelFunc) {
	return context.WithCancel(context.Background())
}
