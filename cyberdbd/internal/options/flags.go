package options

import (
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	flag "github.com/spf13/pflag"

	"github.com/cyberdb/cyberdb/cyberdbd/internal/server"
	"github.com/cyberdb/cyberdb/internal/safefile"
)

// Parse reads a command line (without the program name): the flags, then
// the --config file for the flags not given, then the environment; and
// validates the result. --help prints the usage to help (the daemon's
// stdout, so that "cyberdbd --help | less" works) and returns
// pflag.ErrHelp; errors are returned, not printed.
func Parse(args []string, help io.Writer) (*Options, error) {
	o := Default()
	fs := o.flagSet(help)
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q (cyberdbd takes only flags)", fs.Arg(0))
	}
	if o.ShowVersion {
		return o, nil
	}
	if o.ConfigFile != "" {
		if err := applyConfigFile(fs, o.ConfigFile); err != nil {
			return nil, err
		}
	}
	o.KeepGOGC = os.Getenv("GOGC") != "" && !fs.Changed("gc-percent")
	if err := o.Validate(); err != nil {
		return nil, err
	}
	return o, nil
}

// flagSet returns cyberdbd's flags, bound to o's fields, with o's values
// as their defaults.
func (o *Options) flagSet(help io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("cyberdbd", flag.ContinueOnError)
	fs.SetOutput(help)
	fs.SortFlags = false
	fs.StringVar(&o.Socket, "socket", o.Socket, "Unix socket `PATH` to listen on; its file permissions are the access control")
	fs.Var(fileModeValue{&o.SocketMode}, "socket-mode", "file `MODE` (octal) of the socket: who may connect")
	fs.StringVar(&o.SocketGroup, "socket-group", o.SocketGroup, "`GROUP` (name or number) given the socket created at --socket, so that its members may connect (under systemd, SocketGroup= of the .socket unit)")
	fs.StringSliceVar(&o.AllowUIDs, "allow-uid", o.AllowUIDs, "admit only peers with this `USER` (name or uid), checked with SO_PEERCRED; repeatable, and either an --allow-uid or an --allow-gid may match")
	fs.StringSliceVar(&o.AllowGIDs, "allow-gid", o.AllowGIDs, "admit only peers in this `GROUP` (name or gid) as their primary or a supplementary group; repeatable")
	fs.IntVar(&o.MaxConns, "max-conns", o.MaxConns, "most simultaneous client `connections`; more are refused with an error")
	fs.DurationVar(&o.IdleTimeout, "idle-timeout", o.IdleTimeout, "close a connection silent for this `duration` (e.g. 5m); 0 never closes")
	fs.Var(&o.MaxFrame, "max-frame", "largest request frame in `bytes` (e.g. 16MiB, 65536); larger ones get an error and a close")
	fs.Var(ioLoopsValue{&o.IOLoops}, "io-loops", "event loops serving the Unix socket's connections, each a goroutine with its own epoll set (Linux); 0 gives each connection a goroutine of its own instead. auto: one per 4 CPUs, at least one")
	fs.DurationVar(&o.PartialTimeout, "partial-timeout", o.PartialTimeout,
		"close a connection that sent the start of a request frame and not the rest within this `duration`; the request is not executed")
	fs.Var(&o.MaxPartialMemory, "max-partial-memory",
		"memory in `bytes` for requests still arriving, across all connections: past it, connections sending big requests wait; when not set, at least twice --max-frame")
	// Unset (0), the budget follows --max-frame (server.New); the help
	// shows what that is with the default --max-frame.
	fs.Lookup("max-partial-memory").DefValue = Size(server.DefaultMaxPartialMemory).String()
	fs.Var(outputLimitValue{&o.OutputLimit}, "output-limit",
		"replies a connection may leave unread, as `HARD[,SOFT,DURATION]`: past HARD bytes, or past SOFT bytes for DURATION, it is closed (as Redis's client-output-buffer-limit); 0 for no limit")
	fs.Var(&o.MaxOutputMemory, "max-output-memory",
		"unread replies in `bytes` across all connections: past it, a connection over the --output-limit soft size is closed at once; 0 for no limit")
	fs.Var(&o.MaxPushBuffer, "max-push-buffer",
		"server-pushed messages (pub/sub, watch events, cache invalidations) a push connection may leave unread, in `bytes`: past it, the subscription whose message does not fit is dropped and its client told so (a \"lost\" push)")
	fs.IntVar(&o.TrackingMaxKeys, "tracking-max-keys", o.TrackingMaxKeys,
		"`keys` the read cache's tracking may register, over all connections (each key once, as Redis's tracking-table-max-keys): past it the daemon forgets random ones, each invalidated first at the clients that cached it, so a client reading millions of distinct keys cannot make it grow without bound; 0 for no cap. Live")
	fs.Var(levelValue{&o.LogLevel}, "log-level", "log `level`: debug (each connection, and each request with its table, key and duration), info, warn or error; live: cyberdb config set log-level debug")
	fs.DurationVar(&o.SlowLogThreshold, "slowlog-threshold", o.SlowLogThreshold, "keep requests that take at least this `duration` in the slow log (cyberdb slowlog); 0 turns it off. Live: cyberdb config set slowlog-threshold 5ms")
	fs.IntVar(&o.SlowLogLen, "slowlog-max-len", o.SlowLogLen, "`entries` the slow log keeps, the newest; live")
	fs.BoolVar(&o.LatencyTracking, "latency-tracking", o.LatencyTracking, "keep per-op latency histograms (cyberdb latency, info, Prometheus): a clock reading per request, a few percent of pipelined throughput (README, \"Seeing what the daemon does\"); live")
	fs.StringVar(&o.Metrics, "metrics", o.Metrics, "serve Prometheus metrics at http://`ADDR`/metrics (e.g. 127.0.0.1:9981); off by default (under systemd: cyberdbd-metrics.socket). No password: bind it to loopback or a trusted network")

	fs.StringVar(&o.TCP, "tcp", o.TCP, "also listen on TCP at `ADDR` (e.g. 0.0.0.0:9980) for clients on other hosts, with TLS and a password; off by default (under systemd: cyberdbd-tcp.socket)")
	fs.StringVar(&o.TLSCert, "tls-cert", o.TLSCert, "the TCP listener's TLS certificate, a PEM `FILE` (make one with 'cyberdbd gen-cert'); reloaded on SIGHUP")
	fs.StringVar(&o.TLSKey, "tls-key", o.TLSKey, "the private key of --tls-cert, a PEM `FILE`; reloaded on SIGHUP")
	fs.StringVar(&o.TLSClientCA, "tls-client-ca", o.TLSClientCA, "require TCP clients to present a certificate signed by a CA in this PEM `FILE` (mutual TLS), besides the password")
	fs.BoolVar(&o.TCPInsecure, "tcp-insecure", o.TCPInsecure, "serve TCP without TLS; accepted only on a loopback address (e.g. behind an SSH tunnel). The password is still required")
	fs.StringVar(&o.PasswordFile, "password-file", o.PasswordFile, "the password TCP clients must send, read from `FILE` (mode 0600: group or others may not read it); default: the systemd credential \"password\". Reloaded on SIGHUP")
	fs.Var(&allowValue{p: &o.Allow}, "allow", "admit TCP clients only from this network, a `CIDR` (10.0.0.0/8, 2001:db8::/32) or an address; repeatable. Default: loopback only (127.0.0.0/8, ::1)")
	fs.DurationVar(&o.HandshakeTimeout, "handshake-timeout", o.HandshakeTimeout, "close TCP connections that have not completed the TLS handshake and a HELLO with the password within this `duration`")
	fs.StringVar(&o.PasswordChange, "password-change", o.PasswordChange, "when a reload changes the password: `close` the TCP sessions that logged in with the old one (after answering what they sent), or keep them")
	fs.IntVar(&o.MaxTCPConns, "max-tcp-conns", o.MaxTCPConns, "most TCP `connections`, out of --max-conns: the Unix socket always keeps the rest. Default: half of --max-conns")
	fs.IntVar(&o.MaxTCPUnauth, "max-tcp-unauth-conns", o.MaxTCPUnauth, "most TCP `connections` that have not logged in yet (TLS handshake and HELLO with the password), out of --max-tcp-conns")

	fs.StringVar(&o.DataDir, "data-dir", o.DataDir, "`DIR` holding the snapshot and the append-only log, created (mode 0700) if missing and locked while the daemon runs; the default is $STATE_DIRECTORY when set (as under systemd), else ./cyberdb-data")
	fs.DurationVar(&o.SnapshotInterval, "snapshot-interval", o.SnapshotInterval, "take a snapshot this often (`duration`, e.g. 5m); 0 only on the save op and at shutdown")
	fs.BoolVar(&o.AppendOnly, "appendonly", o.AppendOnly, "log every write before replying (--appendonly=false: snapshots only, and a crash loses the writes since the last one)")
	fs.Var(fsyncValue{&o.Fsync}, "fsync", "`POLICY` for fsyncing the log: always (before each reply; concurrent writes share one fsync), everysec (in the background each second) or no (left to the OS)")
	fs.BoolVar(&o.Recover, "recover", o.Recover, "start even if a file of the data dir is damaged or missing: load the newest state that can be rebuilt exactly (the backup snapshot and its log, the log before the damage, the tables read whole), move damaged files aside and report what was dropped or set aside (README: \"When a file is damaged\")")

	fs.IntVar(&o.GCPercent, "gc-percent", o.GCPercent, "the garbage collector's `percent` (GOGC): how far the heap may grow past the live data before a collection; lower saves memory, higher saves CPU; -1 turns the collector off. $GOGC, when set, replaces the default; $GOMEMLIMIT sets a soft memory limit")
	fs.Var(maxMemoryValue{&o.MaxMemory}, "max-memory", "refuse writes that add data (error out_of_memory; reads, deletes, drops and expiry go on) while the daemon's live heap is over `SIZE` (e.g. 4GiB); cache tables (create_dict --evict lru) evict instead. auto: half of the cgroup's memory limit (systemd's MemoryMax=) when there is one, else none; 0: none")
	fs.StringVar(&o.ConfigFile, "config", o.ConfigFile, "read settings from `FILE`: lines of \"flag-name = value\"; flags on the command line win. SIGHUP re-reads it")
	fs.BoolVar(&o.CheckConfig, "check-config", false, "check the flags and the --config file, print \"config OK\" and exit 0, or print the error and exit 2 (as nginx -t); nothing is opened or served")
	fs.BoolVar(&o.ShowVersion, "version", false, "print the version and exit")
	fs.Usage = func() { fmt.Fprintf(help, usage, fs.FlagUsages()) }
	return fs
}

const usage = `cyberdbd: the cyberdb daemon. It keeps dict and list tables in memory and
serves them to local processes over a Unix socket (protocol: PROTOCOL.md).

Usage:
  cyberdbd [flags]
  cyberdbd --check-config [--config FILE] [flags]     (check the settings and exit)
  cyberdbd gen-cert --host NAME[,NAME...] --out DIR   (a TLS certificate for --tcp)

Flags:
%s
Examples:
  cyberdbd                                  # serve ./cyberdb.sock
  cyberdbd --socket /run/cyberdb/cyberdb.sock --socket-mode 0660
  cyberdbd --max-conns 500 --idle-timeout 10m --log-level debug
  cyberdbd --config /etc/cyberdb/cyberdbd.conf --allow-gid www-data
  cyberdbd --check-config --config /etc/cyberdb/cyberdbd.conf
  cyberdbd --tcp 0.0.0.0:9980 --tls-cert certs/cert.pem --tls-key certs/key.pem \
           --password-file /etc/cyberdb/password --allow 10.0.0.0/8

Signals: SIGINT or SIGTERM stop accepting, finish requests in flight and exit 0.
SIGHUP re-reads the --config file and applies what can change live (log-level,
slowlog-threshold, slowlog-max-len, latency-tracking, max-memory,
tracking-max-keys, and the TCP listener's certificate, key, client CA and
password; a changed password closes the sessions of the old one, see
--password-change). 'cyberdb config set' changes the first six at run time
too, until the next SIGHUP or restart.
Under systemd, cyberdbd takes its sockets from the .socket units (README, "Run
as a service").
`

// maxConfigFile bounds what is read of the --config file.
const maxConfigFile = 1 << 20

// notSettings are the flags a config file may not set.
var notSettings = map[string]bool{"config": true, "version": true, "check-config": true, "help": true}

// applyConfigFile sets the flags named in the config file at path, except
// those given on the command line, which win. The file holds one setting a
// line, "name = value", where name is a long flag name (without "--") and
// value is what the flag takes, optionally in double quotes; blank lines
// and lines starting with '#' are ignored. A repeatable flag may be given
// on several lines.
func applyConfigFile(fs *flag.FlagSet, path string) error {
	onCommandLine := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { onCommandLine[f.Name] = true })
	data, err := safefile.Read(path, safefile.Options{What: "--config", MaxSize: maxConfigFile})
	if err != nil {
		return err
	}
	for i, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' {
			continue
		}
		name, value, ok := strings.Cut(line, "=")
		if !ok {
			return fmt.Errorf("%s:%d: want \"setting = value\", got %q", path, i+1, line)
		}
		name = strings.TrimPrefix(strings.TrimSpace(name), "--")
		value = strings.TrimSpace(value)
		if len(value) >= 2 && value[0] == '"' && value[len(value)-1] == '"' {
			if value, err = strconv.Unquote(value); err != nil {
				return fmt.Errorf("%s:%d: %s: bad quoted value: %v", path, i+1, name, err)
			}
		}
		if fs.Lookup(name) == nil || notSettings[name] {
			return fmt.Errorf("%s:%d: unknown setting %q; the settings are cyberdbd's flag names without \"--\" (cyberdbd --help)", path, i+1, name)
		}
		if onCommandLine[name] {
			continue
		}
		if err := fs.Set(name, value); err != nil {
			return fmt.Errorf("%s:%d: %s: %v", path, i+1, name, err)
		}
	}
	return nil
}

// ErrHelp is returned by Parse for --help and -h, after the usage is printed.
var ErrHelp = flag.ErrHelp
