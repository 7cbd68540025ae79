package libcyberdb

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Defaults of the Client's options.
const (
	// DefaultPoolSize is the most shared connections a Client opens. Each
	// connection carries any number of concurrent calls (they are
	// pipelined), so a few are enough for hundreds of goroutines; the pool
	// exists to use several daemon cores, not to give each goroutine its
	// own connection. Sizing rule: processes × pool size (plus pinned
	// Conns) must stay well under the daemon's --max-conns (default
	// 10000): 32 worker processes × 4 = 128.
	DefaultPoolSize = 4

	// DefaultDialTimeout bounds opening one connection, including the
	// HELLO round trip and the retries while the daemon is (re)starting
	// or at its connection limits, when the call's context has no earlier
	// deadline.
	DefaultDialTimeout = 5 * time.Second
)

// Default socket paths, as in the daemon: systemd's, then the one used
// when the daemon is run by hand in the current directory.
const (
	SystemSocket = "/run/cyberdb/cyberdb.sock"
	LocalSocket  = "./cyberdb.sock"
)

// AddrEnv is the environment variable read when Open is given an empty address.
const AddrEnv = "CYBERDB_ADDR"

// Option configures a Client.
type Option func(*config)

type config struct {
	poolSize    int
	idleTimeout time.Duration
	maxLifetime time.Duration
	dialTimeout time.Duration
	clientName  string
	password    string
	remote      remoteConfig // TLS and password options for tcp:// (tls.go)
	serverUID   *int         // WithServerUID (serveruid.go)
	now         func() time.Time

	cacheEntries int           // WithCache (cache.go); 0: DefaultCacheEntries
	cacheBytes   int64         // 0: DefaultCacheBytes
	conn         connectConfig // WithDialer, WithOnConnect, WithTimeout, WithHealthCheck (connect.go)
	hooks        []Hook        // WithHooks (hooks.go)
}

func defaultConfig() config {
	name := "libcyberdb"
	if len(os.Args) > 0 && os.Args[0] != "" {
		name = filepath.Base(os.Args[0])
	}
	return config{
		poolSize:    DefaultPoolSize,
		dialTimeout: DefaultDialTimeout,
		clientName:  name,
		now:         time.Now,
		conn:        defaultConnectConfig(),
	}
}

// WithPoolSize sets the most shared connections (default DefaultPoolSize;
// values below 1 mean 1). Connections are opened as concurrency needs
// them: a Client used by one goroutine at a time keeps one.
func WithPoolSize(n int) Option { return func(c *config) { c.poolSize = max(n, 1) } }

// WithIdleTimeout closes connections that have carried no call for d
// (CyberDB's time_out). 0, the default, keeps them open. Closed
// connections are reopened when needed, so this only trades a reconnect
// for fewer idle sockets on the daemon.
func WithIdleTimeout(d time.Duration) Option { return func(c *config) { c.idleTimeout = max(d, 0) } }

// WithMaxLifetime retires connections older than d: they take no new
// calls and close once their calls in flight are answered. 0, the
// default, means no limit.
func WithMaxLifetime(d time.Duration) Option { return func(c *config) { c.maxLifetime = max(d, 0) } }

// WithDialTimeout bounds opening one connection, including retries while
// the daemon starts or is at its connection limits (too_many_connections)
// and the HELLO round trip (default DefaultDialTimeout). A call's context
// deadline, when earlier, wins.
//
// It bounds two more waits for a daemon that does not answer:
//   - a blocking call (List.PopWait, Move) whose context ended waits this
//     long at most for the daemon to confirm its cancel, after which its
//     connection is dropped as lost;
//   - callers that waited for a dial that failed fail with its error, so
//     that with the daemon down no call waits much more than twice this.
func WithDialTimeout(d time.Duration) Option {
	return func(c *config) {
		if d > 0 {
			c.dialTimeout = d
		}
	}
}

// WithCache bounds the Client's read cache (CachedDict): at most entries
// entries and bytes bytes of keys and values; 0 keeps the default
// (DefaultCacheEntries, DefaultCacheBytes). Past a bound, entries drawn at
// random are dropped.
func WithCache(entries int, bytes int64) Option {
	return func(c *config) { c.cacheEntries, c.cacheBytes = entries, bytes }
}

// WithClientName sets the name sent in HELLO and shown in the daemon's
// logs (default: the program's name).
func WithClientName(name string) Option { return func(c *config) { c.clientName = name } }

// withClock replaces time.Now for idle and lifetime decisions (tests).
func withClock(now func() time.Time) Option { return func(c *config) { c.now = now } }

// dialer opens a raw connection to the daemon: a Unix socket, or for
// tcp:// addresses TCP with TLS, whose HELLO carries the password (tls.go).
type dialer struct {
	network, address string // for messages and net.Dialer
	display          string // the address as the user wrote it
	remote           *remoteDialer
	serverUID        *int     // Unix sockets: the uid that must serve it (serveruid.go)
	custom           DialFunc // WithDialer (connect.go)
}

func (d dialer) dial(ctx context.Context) (net.Conn, error) {
	if d.remote != nil {
		return d.dialRemote(ctx)
	}
	return d.dialUnix(ctx)
}

// ResolveAddr returns the socket path Open uses for addr: addr itself, or
// when it is empty $CYBERDB_ADDR, or the daemon's default socket
// (/run/cyberdb/cyberdb.sock when it exists, else ./cyberdb.sock).
// Accepted forms: "unix:///abs/path", "unix:rel/path", a bare path; and
// "tcp://host:port", returned as it is with the port filled in.
func ResolveAddr(addr string) (string, error) {
	d, err := parseAddr(addr)
	if err != nil {
		return "", err
	}
	if d.remote != nil {
		return d.remote.url(d.address), nil
	}
	return d.address, nil
}

func parseAddr(addr string) (dialer, error) {
	display := addr
	if addr == "" {
		addr = os.Getenv(AddrEnv)
		display = addr
	}
	if addr == "" {
		addr = LocalSocket
		if socketMayBeAt(SystemSocket) {
			addr = SystemSocket
		}
		display = addr
	}
	switch {
	case strings.HasPrefix(addr, "unix://"):
		addr = strings.TrimPrefix(addr, "unix://")
	case strings.HasPrefix(addr, "unix:"):
		addr = strings.TrimPrefix(addr, "unix:")
	case strings.HasPrefix(addr, "tcp://"), strings.HasPrefix(addr, "tcp+insecure://"):
		return parseTCPAddr(addr, display)
	case strings.Contains(addr, "://"):
		return dialer{}, fmt.Errorf("cyberdb: address %q: unknown scheme; use unix:///path/to/cyberdb.sock, a bare path, or tcp://host:port", display)
	}
	if addr == "" {
		return dialer{}, errors.New("cyberdb: empty socket path in address " + fmt.Sprintf("%q", display))
	}
	return dialer{network: "unix", address: addr, display: display}, nil
}
