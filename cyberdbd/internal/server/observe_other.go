//go:build !linux

package server

import "time"

func (s *Server) findLoopConn(*conn) (*ioLoop, *loopConn) { return nil, nil }

func (*ioLoop) clients(time.Time, *ioLoop) []clientInfo { return nil }
func (s *Server) currentLoop(*conn) *ioLoop             { return nil }
func (*ioLoop) kill(uint64) bool                        { return false }

// loopConn is Linux-only.
type loopConn struct{}

func (*monitorSub) writeLoop([]byte) (alive, overflow bool) { return false, false }
