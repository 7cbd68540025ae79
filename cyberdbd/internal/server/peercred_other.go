//go:build !linux

package server

func peerCred(int) (PeerCred, error) { return PeerCred{}, ErrNoPeerCred }
