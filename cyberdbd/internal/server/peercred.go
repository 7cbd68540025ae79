package server

import (
	"errors"
	"fmt"
	"net"
	"slices"

	"github.com/cyberdb/cyberdb/libcyberdb/wire"
)

// PeerCred is what the kernel says about the process at the other end of a
// Unix socket, as it was when that process connected (SO_PEERCRED).
type PeerCred struct {
	PID int32
	UID uint32
	GID uint32 // the effective group
	// Groups are the supplementary groups (SO_PEERGROUPS, Linux 4.13 and
	// later); nil where the kernel cannot tell.
	Groups []uint32
}

// ErrNoPeerCred is returned by PeerCredentials where the platform cannot
// tell who is at the other end of a Unix socket.
var ErrNoPeerCred = errors.New("peer credentials are not available on this platform")

// PeerCredentials returns the credentials of the peer of a Unix-socket
// connection.
func PeerCredentials(nc net.Conn) (PeerCred, error) {
	uc, ok := nc.(*net.UnixConn)
	if !ok {
		return PeerCred{}, fmt.Errorf("peer credentials: %T is not a Unix socket connection", nc)
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return PeerCred{}, err
	}
	var cred PeerCred
	var credErr error
	if err := raw.Control(func(fd uintptr) { cred, credErr = peerCred(int(fd)) }); err != nil {
		return PeerCred{}, err
	}
	return cred, credErr
}

// allowsPeer reports whether the allowlists admit cred: its uid is in
// AllowUIDs, or its effective or any supplementary group is in AllowGIDs.
func (cfg *Config) allowsPeer(cred PeerCred) bool {
	if slices.Contains(cfg.AllowUIDs, cred.UID) || slices.Contains(cfg.AllowGIDs, cred.GID) {
		return true
	}
	for _, g := range cred.Groups {
		if slices.Contains(cfg.AllowGIDs, g) {
			return true
		}
	}
	return false
}

// admitPeer applies Config.AllowUIDs and Config.AllowGIDs to a new
// connection. It does nothing without allowlists, and nothing to
// connections that are not on a Unix socket (TCP peers authenticate
// otherwise). A refused peer gets a forbidden error frame and is closed,
// and the refusal is logged with its uid, gid and pid.
func (s *Server) admitPeer(nc net.Conn, id uint64) bool {
	if len(s.cfg.AllowUIDs) == 0 && len(s.cfg.AllowGIDs) == 0 {
		return true
	}
	if _, ok := nc.(*net.UnixConn); !ok {
		return true
	}
	cred, err := PeerCredentials(nc)
	if err != nil {
		// Fail closed: an allowlist that cannot be checked admits nobody.
		warn(&s.warns.peerRefused, s.log, "connection refused: cannot read peer credentials", "conn", id, "err", err)
		go refuse(nc, wire.Errorf(wire.CodeForbidden, "the server cannot check who you are (--allow-uid, --allow-gid): %v", err))
		return false
	}
	if s.cfg.allowsPeer(cred) {
		return true
	}
	warn(&s.warns.peerRefused, s.log, "connection refused: peer not in --allow-uid/--allow-gid", "conn", id,
		"uid", cred.UID, "gid", cred.GID, "pid", cred.PID)
	go refuse(nc, wire.Errorf(wire.CodeForbidden,
		"uid %d (gid %d) may not connect to this server (--allow-uid, --allow-gid); ask its administrator to allow your user or group",
		cred.UID, cred.GID))
	return false
}
