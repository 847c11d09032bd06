//go:build !linux

package main

import (
	"context"
	"errors"
)

func serveFloorEpoll(context.Context, string, *floorRouter) error {
	return errors.New(floorEpoll + " needs Linux")
}
