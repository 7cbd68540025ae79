package main

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/cyberdb/cyberdb/cyberdbd/internal/server"
	"github.com/cyberdb/cyberdb/libcyberdb/wire"
	flag "github.com/spf13/pflag"
)

// config is everything the flags decide.
type config struct {
	socket      string
	socketMode  os.FileMode
	maxConns    int
	idleTimeout time.Duration
	maxFrame    int
	ioLoops     int
	logLevel    slog.Level
	showVersion bool

	serviceConfig // --socket-group, --allow-uid, --allow-gid, --config: serviceflags.go
	tcpConfig     // --tcp, --tls-*, --password-file, --allow: tcpflags.go
	persistConfig // --data-dir, --snapshot-interval, --appendonly, --fsync, --recover: persistflags.go
	memConfig     // --gc-percent: memflags.go
	limitConfig   // --partial-timeout, --max-partial-memory, --output-limit, --max-output-memory: limitflags.go
}

// DefaultIOLoops is --io-loops' default: one event loop per 4 CPUs, at
// least one. The clients of a local daemon run on its machine, and a busy
// loop keeps its core: on 2 cores, two loops beside the clients raised
// pipelined throughput by about a third but doubled the p99 of unpipelined
// requests (README, "Performance"). One loop serves a few hundred
// thousand unpipelined requests a second, over a million pipelined.
func DefaultIOLoops() int { return max(1, runtime.GOMAXPROCS(0)/4) }

// DefaultSocket is where the daemon listens when run by hand.
const DefaultSocket = "./cyberdb.sock"

// parseFlags parses the command line. --help prints the usage to help (the
// daemon's stdout, so that "cyberdbd --help | less" works) and returns
// flag.ErrHelp; errors are returned, not printed.
func parseFlags(args []string, help io.Writer) (*config, error) {
	cfg := &config{}
	fs := flag.NewFlagSet("cyberdbd", flag.ContinueOnError)
	fs.SetOutput(help)
	fs.SortFlags = false
	fs.StringVar(&cfg.socket, "socket", DefaultSocket, "Unix socket `PATH` to listen on; its file permissions are the access control")
	mode := fs.String("socket-mode", "0660", "file `MODE` (octal) of the socket: who may connect")
	addAccessFlags(fs, cfg)
	fs.IntVar(&cfg.maxConns, "max-conns", server.DefaultMaxConns, "most simultaneous client `connections`; more are refused with an error")
	fs.DurationVar(&cfg.idleTimeout, "idle-timeout", 0, "close a connection silent for this `duration` (e.g. 5m); 0 never closes")
	maxFrame := byteSize(wire.DefaultMaxFrame)
	fs.Var(&maxFrame, "max-frame", "largest request frame in `bytes` (e.g. 16MiB, 65536); larger ones get an error and a close")
	fs.IntVar(&cfg.ioLoops, "io-loops", DefaultIOLoops(), "event loops serving the Unix socket's connections, each a goroutine with its own epoll set (Linux); 0 gives each connection a goroutine of its own instead. Default: one per 4 CPUs, at least one")
	addLimitFlags(fs, cfg)
	level := fs.String("log-level", "info", "log `level`: debug (each connection and request), info, warn or error")
	addTCPFlags(fs, cfg)
	addPersistFlags(fs, cfg)
	addMemFlags(fs, cfg)
	addConfigFlag(fs, cfg)
	fs.BoolVar(&cfg.showVersion, "version", false, "print the version and exit")
	fs.Usage = func() {
		fmt.Fprintf(help, `cyberdbd: the cyberdb daemon. It keeps dict and list tables in memory and
serves them to local processes over a Unix socket (protocol: PROTOCOL.md).

Usage:
  cyberdbd [flags]
  cyberdbd gen-cert --host NAME[,NAME...] --out DIR   (a TLS certificate for --tcp)

Flags:
%s
Examples:
  cyberdbd                                  # serve ./cyberdb.sock
  cyberdbd --socket /run/cyberdb/cyberdb.sock --socket-mode 0660
  cyberdbd --max-conns 500 --idle-timeout 10m --log-level debug
  cyberdbd --config /etc/cyberdb/cyberdbd.conf --allow-gid www-data
  cyberdbd --tcp 0.0.0.0:9980 --tls-cert certs/cert.pem --tls-key certs/key.pem \
           --password-file /etc/cyberdb/password --allow 10.0.0.0/8

Signals: SIGINT or SIGTERM stop accepting, finish requests in flight and exit 0.
SIGHUP re-reads the --config file and applies what can change live (log-level,
and the TCP listener's certificate, key, client CA and password; a changed
password closes the sessions of the old one, see --password-change).
Under systemd, cyberdbd takes its sockets from the .socket units (README, "Run
as a service").
`, fs.FlagUsages())
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q (cyberdbd takes only flags)", fs.Arg(0))
	}
	if err := finishServiceFlags(fs, cfg); err != nil {
		return nil, err
	}
	m, err := strconv.ParseUint(*mode, 8, 32)
	if err != nil || m > 0o777 {
		return nil, fmt.Errorf("--socket-mode %q: want an octal file mode such as 0660", *mode)
	}
	cfg.socketMode = os.FileMode(m)
	if cfg.ioLoops < 0 {
		return nil, fmt.Errorf("--io-loops %d: want a number of loops, or 0 for a goroutine per connection", cfg.ioLoops)
	}
	if cfg.maxConns <= 0 {
		return nil, fmt.Errorf("--max-conns %d: must be at least 1", cfg.maxConns)
	}
	if cfg.idleTimeout < 0 {
		return nil, fmt.Errorf("--idle-timeout %s: must not be negative", cfg.idleTimeout)
	}
	if maxFrame < 64 || maxFrame > 1<<32-1 {
		return nil, fmt.Errorf("--max-frame %s: must be between 64 bytes and 4GiB-1", maxFrame.String())
	}
	cfg.maxFrame = int(maxFrame)
	if err := finishLimitFlags(fs, cfg); err != nil {
		return nil, err
	}
	if err := finishTCPFlags(cfg); err != nil {
		return nil, err
	}
	if err := finishPersistFlags(cfg); err != nil {
		return nil, err
	}
	if err := finishMemFlags(fs, cfg); err != nil {
		return nil, err
	}
	if err := cfg.logLevel.UnmarshalText([]byte(*level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", *level)
	}
	return cfg, nil
}

// byteSize is a flag value in bytes that accepts KiB/MiB/GiB suffixes.
type byteSize int64

func (b *byteSize) String() string {
	v := int64(*b)
	for _, u := range []struct {
		s string
		n int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if v >= u.n && v%u.n == 0 {
			return strconv.FormatInt(v/u.n, 10) + u.s
		}
	}
	return strconv.FormatInt(v, 10)
}

func (b *byteSize) Set(s string) error {
	mult := int64(1)
	t := strings.TrimSpace(s)
	for _, u := range []struct {
		s string
		n int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"G", 1 << 30}, {"M", 1 << 20}, {"K", 1 << 10}, {"B", 1}} {
		if strings.HasSuffix(t, u.s) {
			mult, t = u.n, strings.TrimSuffix(t, u.s)
			break
		}
	}
	n, err := strconv.ParseInt(strings.TrimSpace(t), 10, 64)
	if err != nil || n < 0 {
		return fmt.Errorf("want a size such as 16MiB, 512KiB or 65536")
	}
	*b = byteSize(n * mult)
	return nil
}

func (b *byteSize) Type() string { return "size" }
