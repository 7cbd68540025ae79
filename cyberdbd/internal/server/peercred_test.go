package server

import (
	"net"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"testing"
)

// TestPeerCredentials reads this process's own credentials from the far
// end of a Unix socket connection.
func TestPeerCredentials(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("SO_PEERCRED is Linux's")
	}
	dir, err := os.MkdirTemp("", "pc")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	l, err := net.Listen("unix", filepath.Join(dir, "s"))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	c, err := net.Dial("unix", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	cred, err := PeerCredentials(s)
	if err != nil {
		t.Fatal(err)
	}
	if int(cred.PID) != os.Getpid() || int(cred.UID) != os.Geteuid() || int(cred.GID) != os.Getegid() {
		t.Fatalf("cred %+v, want pid %d uid %d gid %d", cred, os.Getpid(), os.Geteuid(), os.Getegid())
	}
	groups, _ := os.Getgroups()
	if cred.Groups != nil { // nil where the kernel lacks SO_PEERGROUPS
		for _, g := range groups {
			if !slices.Contains(cred.Groups, uint32(g)) {
				t.Fatalf("groups %v lack %d (os.Getgroups: %v)", cred.Groups, g, groups)
			}
		}
	}
	if _, err := PeerCredentials(&net.TCPConn{}); err == nil {
		t.Fatal("credentials of a TCP connection")
	}
}

func TestAllowsPeer(t *testing.T) {
	cfg := Config{AllowUIDs: []uint32{1000}, AllowGIDs: []uint32{50}}
	for _, tc := range []struct {
		cred PeerCred
		want bool
	}{
		{PeerCred{UID: 1000, GID: 1000}, true},
		{PeerCred{UID: 1001, GID: 50}, true},
		{PeerCred{UID: 1001, GID: 1001, Groups: []uint32{7, 50}}, true},
		{PeerCred{UID: 1001, GID: 1001, Groups: []uint32{7}}, false},
		{PeerCred{UID: 0, GID: 0}, false},
	} {
		if got := cfg.allowsPeer(tc.cred); got != tc.want {
			t.Errorf("allowsPeer(%+v) = %v, want %v", tc.cred, got, tc.want)
		}
	}
}
