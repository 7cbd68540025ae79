package libcyberdb

import (
	"context"
	"errors"
	"os"
	"strconv"
	"strings"
	"testing"
)

// TestServerUID: WithServerUID and $CYBERDB_SERVER_UID against the real
// daemon, which runs as the tests' user. Root is always trusted (systemd
// makes the sockets of socket units), so another uid is refused only when
// the tests do not run as root. TestSocketSquatting (cyberdbd) runs a
// squatter as another user.
func TestServerUID(t *testing.T) {
	ctx := context.Background()
	addr := os.Getenv(AddrEnv)
	c, err := Open(ctx, addr, WithServerUID(os.Getuid()))
	if err != nil {
		t.Fatalf("WithServerUID(own uid): %v", err)
	}
	c.Close()
	_, err = Open(ctx, addr, WithServerUID(os.Getuid()+1))
	switch {
	case os.Getuid() == 0 && err != nil:
		t.Fatalf("a daemon run by root, WithServerUID(1): %v, want accepted", err)
	case os.Getuid() != 0 && !errors.Is(err, ErrUntrustedServer):
		t.Fatalf("a daemon of uid %d, WithServerUID(%d): %v, want ErrUntrustedServer", os.Getuid(), os.Getuid()+1, err)
	}

	t.Setenv(ServerUIDEnv, strconv.Itoa(os.Getuid()))
	c, err = Open(ctx, addr)
	if err != nil {
		t.Fatalf("$%s = own uid: %v", ServerUIDEnv, err)
	}
	c.Close()
	t.Setenv(ServerUIDEnv, "no-such-user-cyberdb")
	if _, err := Open(ctx, addr); err == nil || !strings.Contains(err.Error(), "no user") {
		t.Fatalf("$%s naming no user: %v", ServerUIDEnv, err)
	}
	t.Setenv(ServerUIDEnv, "")
	if _, err := Open(ctx, addr, WithServerUID(-1)); err == nil {
		t.Fatal("WithServerUID(-1) accepted")
	}
}
