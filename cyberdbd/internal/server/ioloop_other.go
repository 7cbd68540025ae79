//go:build !linux

package server

import (
	"context"
	"errors"
)

// ioLoop is Linux-only (ioloop_linux.go); elsewhere every connection has
// a goroutine of its own.
type ioLoop struct{}

func newIOLoop(*Server) (*ioLoop, error) {
	return nil, errors.New("event loops need Linux's epoll")
}

func (*ioLoop) release()                        {}
func (*ioLoop) adopt(*conn) error               { return errors.New("event loops need Linux's epoll") }
func (*ioLoop) wake()                           {}
func (*ioLoop) run()                            {}
func (*ioLoop) roundTrip(context.Context) error { return nil }
func (*ioLoop) do(func())                       {}
