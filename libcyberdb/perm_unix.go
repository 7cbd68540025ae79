//go:build unix

package libcyberdb

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"
)

// socketMayBeAt reports whether the daemon's socket may be at path: it
// exists, or a directory on the way does not let this user look. The
// packaged daemon's directory, /run/cyberdb, is mode 0750 for group
// cyberdb: a user outside the group cannot even stat the socket, and
// taking that for "no daemon here" would send them to ./cyberdb.sock with
// a confusing error. Dialing the path instead fails with EACCES, which
// permissionHint explains.
func socketMayBeAt(path string) bool {
	_, err := os.Stat(path)
	return err == nil || errors.Is(err, fs.ErrPermission)
}

// permissionHint explains a Unix socket that this user may not connect
// to: which file or directory refuses, who may pass, and what to do. It
// returns "" for other errors.
func permissionHint(d dialer, err error) string {
	if d.remote != nil || d.network != "unix" || !errors.Is(err, fs.ErrPermission) {
		return ""
	}
	f, ok := gatherPermFacts(d.address)
	if !ok {
		return ""
	}
	return f.advice()
}

// permFacts are what permissionHint says, gathered from the system.
type permFacts struct {
	blocked    string      // the directory or socket that refuses
	mode       fs.FileMode // its permission bits
	owner      string      // its owner's name (or uid)
	group      string      // its group's name (or gid)
	user       string      // who we are
	inGroup    bool        // this process has the group
	listedInIt bool        // the user is a member in /etc/group (or the like)
}

func gatherPermFacts(path string) (permFacts, bool) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return permFacts{}, false
	}
	// The first directory on the way that we may not search, else the
	// socket itself, which we may not write.
	blocked := abs
	var dirs []string
	for dir := filepath.Dir(abs); ; dir = filepath.Dir(dir) {
		dirs = append(dirs, dir)
		if dir == filepath.Dir(dir) {
			break
		}
	}
	for i := len(dirs) - 1; i >= 0; i-- {
		if errors.Is(syscall.Access(dirs[i], 1 /* X_OK */), syscall.EACCES) {
			blocked = dirs[i]
			break
		}
	}
	var st syscall.Stat_t
	if syscall.Stat(blocked, &st) != nil {
		return permFacts{}, false
	}
	f := permFacts{blocked: blocked, mode: fs.FileMode(st.Mode) & fs.ModePerm,
		owner: strconv.Itoa(int(st.Uid)), group: strconv.Itoa(int(st.Gid)), user: strconv.Itoa(os.Getuid())}
	if u, err := user.LookupId(f.owner); err == nil {
		f.owner = u.Username
	}
	if g, err := user.LookupGroupId(f.group); err == nil {
		f.group = g.Name
	}
	gid := strconv.Itoa(int(st.Gid))
	if groups, err := os.Getgroups(); err == nil {
		f.inGroup = os.Getgid() == int(st.Gid) || slices.Contains(groups, int(st.Gid))
	}
	if u, err := user.Current(); err == nil {
		f.user = u.Username
		if ids, err := u.GroupIds(); err == nil {
			f.listedInIt = slices.Contains(ids, gid)
		}
	}
	return f, true
}

// advice says what refuses and what to do, as the end of an error message.
func (f permFacts) advice() string {
	what := fmt.Sprintf(" (%s is mode %#o, owner %s, group %s", f.blocked, uint32(f.mode), f.owner, f.group)
	switch {
	case f.inGroup:
		return what + fmt.Sprintf("; user %s is in group %s, so the mode must let the group in: check --socket-mode and the directory's mode)", f.user, f.group)
	case f.listedInIt:
		return what + fmt.Sprintf("; user %s was added to group %s after this session started: log in again, or run 'newgrp %s')", f.user, f.group, f.group)
	}
	return what + fmt.Sprintf("; user %s is not in group %s: add it with 'sudo usermod -aG %s %s', then log in again)", f.user, f.group, f.group, f.user)
}
