// Package options is cyberdbd's configuration: one typed Options value
// with its defaults (Default), the command-line flags bound to its fields
// (pflag), the --config file of "flag-name = value" lines, the environment
// ($STATE_DIRECTORY, $GOGC), and the checks that make a value safe to run
// with (Validate). Parse does all of it for a command line; Changes tells
// a reload which settings differ, by their typed values. A Go program
// builds Options with Default and sets the fields it needs: each field
// means exactly what its flag (named in its tag) means.
package options

import (
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/netip"
	"os"
	"os/user"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/cyberdb/cyberdb/cyberdbd/internal/memlimit"
	"github.com/cyberdb/cyberdb/cyberdbd/internal/persist"
	"github.com/cyberdb/cyberdb/cyberdbd/internal/server"
	"github.com/cyberdb/cyberdb/cyberdbd/internal/store"
	"github.com/cyberdb/cyberdb/libcyberdb/wire"
)

// Options is everything the flags decide. The tag of each field that a
// flag sets names the flag; Changes compares those fields.
type Options struct {
	// The Unix socket, and who may connect to it.
	Socket      string      `flag:"socket"`
	SocketMode  os.FileMode `flag:"socket-mode"`
	SocketGroup string      `flag:"socket-group"` // a group name or number; "" leaves the group alone
	AllowUIDs   []string    `flag:"allow-uid"`    // user names or uids (SO_PEERCRED); none: anyone who can open the socket
	AllowGIDs   []string    `flag:"allow-gid"`    // group names or gids

	// Connections.
	MaxConns    int           `flag:"max-conns"`
	IdleTimeout time.Duration `flag:"idle-timeout"` // 0: never
	MaxFrame    Size          `flag:"max-frame"`
	IOLoops     int           `flag:"io-loops"` // 0: a goroutine per connection; AutoIOLoops: DefaultIOLoops()

	// What one client may make the daemon hold (server/limits.go).
	PartialTimeout   time.Duration      `flag:"partial-timeout"`
	MaxPartialMemory Size               `flag:"max-partial-memory"` // 0: the larger of 256MiB and twice MaxFrame
	OutputLimit      server.OutputLimit `flag:"output-limit"`       // zero: no limit
	MaxOutputMemory  Size               `flag:"max-output-memory"`  // 0: no limit
	MaxPushBuffer    Size               `flag:"max-push-buffer"`    // per push connection
	// TrackingMaxKeys: keys registered by read-cache tracking, over all
	// connections; past it random ones are invalidated and
	// forgotten (store.SetTrackingMaxKeys). 0: no cap.
	TrackingMaxKeys int `flag:"tracking-max-keys"`

	LogLevel slog.Level `flag:"log-level"`

	// Seeing what the daemon does (issue 17). SlowLogThreshold: requests
	// that take at least this long go to the slow log (0: none); both
	// change live (config_set, SIGHUP). Metrics: the address of the
	// Prometheus endpoint ("": none, unless systemd passes the "metrics"
	// socket).
	SlowLogThreshold time.Duration `flag:"slowlog-threshold"`
	SlowLogLen       int           `flag:"slowlog-max-len"`
	LatencyTracking  bool          `flag:"latency-tracking"`
	Metrics          string        `flag:"metrics"`

	// The TCP listener for other hosts (README, "Remote hosts").
	TCP              string         `flag:"tcp"` // "" unless given: systemd may pass the socket instead
	TLSCert          string         `flag:"tls-cert"`
	TLSKey           string         `flag:"tls-key"`
	TLSClientCA      string         `flag:"tls-client-ca"`
	TCPInsecure      bool           `flag:"tcp-insecure"`
	PasswordFile     string         `flag:"password-file"` // "": the systemd credential "password"
	Allow            []netip.Prefix `flag:"allow"`         // none: loopback only
	HandshakeTimeout time.Duration  `flag:"handshake-timeout"`
	PasswordChange   string         `flag:"password-change"`      // "close" or "keep": sessions of a replaced password
	MaxTCPConns      int            `flag:"max-tcp-conns"`        // 0: half of MaxConns
	MaxTCPUnauth     int            `flag:"max-tcp-unauth-conns"` // of MaxTCPConns, before the password

	// Persistence (cyberdbd/internal/persist).
	DataDir          string        `flag:"data-dir"`
	SnapshotInterval time.Duration `flag:"snapshot-interval"` // 0: only on the save op and at shutdown
	AppendOnly       bool          `flag:"appendonly"`
	Fsync            persist.Fsync `flag:"fsync"`
	Recover          bool          `flag:"recover"`

	// Memory. KeepGOGC is not a flag: $GOGC is set and --gc-percent is
	// not, so the runtime keeps $GOGC's setting and GCPercent is unused.
	GCPercent int `flag:"gc-percent"`
	KeepGOGC  bool
	// MaxMemory: over it, writes that add data are refused (out_of_memory)
	// and cache tables evict (cyberdbd/internal/memlimit). 0: no limit;
	// AutoMaxMemory: memlimit.Default(), a share of the cgroup's limit.
	MaxMemory Size `flag:"max-memory"`

	// The command line only: not settings of a config file.
	ConfigFile  string // --config, read by Parse
	ShowVersion bool   // --version
	CheckConfig bool   // --check-config
}

// DefaultSocket is where the daemon listens when run by hand.
const DefaultSocket = "./cyberdb.sock"

// DefaultDataDir is the data dir when neither --data-dir nor
// $STATE_DIRECTORY (set by systemd's StateDirectory=) says otherwise.
const DefaultDataDir = "./cyberdb-data"

// DefaultGCPercent is the daemon's GOGC unless --gc-percent or $GOGC says
// otherwise. Go's default, 100, lets the heap grow to twice the live data
// before collecting; for a database whose heap is almost all long-lived
// table data that doubles its memory for nothing. A collection here costs
// little and is rare: gets and sets allocate next to nothing (keys and
// values are carved from shared chunks, store/kvarena.go), so what triggers
// collections is table growth, and marking is cheap because those chunks
// hold no pointers. 50 keeps the headroom at half the live data, for a few
// percent of CPU under write-heavy load.
const DefaultGCPercent = 50

// AutoMaxMemory is the MaxMemory value "auto" (the default): a share of
// the cgroup's memory limit when it has one, else no limit (MemoryLimit).
const AutoMaxMemory = -1

// MemoryLimit is the --max-memory in effect, in bytes; 0: none.
func (o *Options) MemoryLimit() int64 {
	if o.MaxMemory == AutoMaxMemory {
		return memlimit.Default()
	}
	return int64(o.MaxMemory)
}

// MaxTrackingMaxKeys bounds --tracking-max-keys: a cap past a billion
// keys (some 100 GB of registrations) is a typo; give 0 for none.
const MaxTrackingMaxKeys = 1 << 30

// AutoIOLoops is the IOLoops value "auto": DefaultIOLoops() loops, decided
// on the machine the daemon runs on.
const AutoIOLoops = -1

// DefaultIOLoops is what --io-loops=auto (the default) runs: one event
// loop per 4 CPUs, at least one. The clients of a local daemon run on its
// machine, and a busy loop keeps its core: on 2 cores, two loops beside
// the clients raised pipelined throughput by about a third but doubled the
// p99 of unpipelined requests (README, "Performance"). One loop serves a
// few hundred thousand unpipelined requests a second, over a million
// pipelined.
func DefaultIOLoops() int { return max(1, runtime.GOMAXPROCS(0)/4) }

// Default returns the options of a daemon run with no flags. The data dir
// is $STATE_DIRECTORY's first entry when it is set (systemd passes a
// colon-separated list when a unit has several), else DefaultDataDir.
func Default() *Options {
	dataDir := DefaultDataDir
	if s := os.Getenv("STATE_DIRECTORY"); s != "" {
		if first, _, _ := strings.Cut(s, ":"); first != "" {
			dataDir = first
		}
	}
	return &Options{
		Socket:           DefaultSocket,
		SocketMode:       0o660,
		MaxConns:         server.DefaultMaxConns,
		MaxFrame:         wire.DefaultMaxFrame,
		IOLoops:          AutoIOLoops,
		PartialTimeout:   server.DefaultPartialTimeout,
		OutputLimit:      server.DefaultOutputLimit,
		MaxOutputMemory:  server.DefaultMaxOutputMemory,
		MaxPushBuffer:    server.DefaultMaxPushBuffer,
		TrackingMaxKeys:  store.DefaultTrackingMaxKeys,
		LogLevel:         slog.LevelInfo,
		SlowLogThreshold: 10 * time.Millisecond,
		SlowLogLen:       server.DefaultSlowLogLen,
		LatencyTracking:  true,
		HandshakeTimeout: server.DefaultHandshakeTimeout,
		PasswordChange:   "close",
		MaxTCPUnauth:     server.DefaultMaxTCPUnauth,
		DataDir:          dataDir,
		SnapshotInterval: 300 * time.Second,
		AppendOnly:       true,
		Fsync:            persist.FsyncEverySec,
		GCPercent:        DefaultGCPercent,
		MaxMemory:        AutoMaxMemory,
	}
}

// Validate checks o as Parse checks a command line: values in range,
// flags that go together, and user and group names that exist. Its
// errors name the flag and say what to give instead.
func (o *Options) Validate() error {
	if _, err := o.SocketGID(); err != nil {
		return err
	}
	if _, _, err := o.PeerIDs(); err != nil {
		return err
	}
	if o.SocketMode&^0o777 != 0 {
		return fmt.Errorf("--socket-mode %04o: want a file mode such as 0660", uint32(o.SocketMode))
	}
	if o.IOLoops < 0 && o.IOLoops != AutoIOLoops {
		return fmt.Errorf("--io-loops %d: want a number of loops, or 0 for a goroutine per connection", o.IOLoops)
	}
	if o.MaxConns <= 0 {
		return fmt.Errorf("--max-conns %d: must be at least 1", o.MaxConns)
	}
	if o.IdleTimeout < 0 {
		return fmt.Errorf("--idle-timeout %s: must not be negative", o.IdleTimeout)
	}
	if o.MaxFrame < 64 || o.MaxFrame > 1<<32-1 {
		return fmt.Errorf("--max-frame %s: must be between 64 bytes and 4GiB-1", o.MaxFrame)
	}
	if err := o.validateLimits(); err != nil {
		return err
	}
	if err := o.validateTCP(); err != nil {
		return err
	}
	switch o.Fsync {
	case persist.FsyncAlways, persist.FsyncEverySec, persist.FsyncNo:
	default:
		return fmt.Errorf("--fsync %d: want always, everysec or no", int(o.Fsync))
	}
	if o.SnapshotInterval < 0 {
		return fmt.Errorf("--snapshot-interval %s: must not be negative", o.SnapshotInterval)
	}
	if o.DataDir == "" {
		return fmt.Errorf("--data-dir: must not be empty")
	}
	if o.GCPercent < -1 {
		return fmt.Errorf("--gc-percent %d: want a percentage, or -1 to turn the collector off", o.GCPercent)
	}
	if o.SlowLogThreshold < 0 {
		return fmt.Errorf("--slowlog-threshold %s: must not be negative (0 turns the slow log off)", o.SlowLogThreshold)
	}
	if o.SlowLogLen < 1 || o.SlowLogLen > 1<<20 {
		return fmt.Errorf("--slowlog-max-len %d: want 1 to 1048576 entries", o.SlowLogLen)
	}
	if o.Metrics != "" {
		if _, _, err := net.SplitHostPort(o.Metrics); err != nil {
			return fmt.Errorf("--metrics %q: want HOST:PORT, e.g. 127.0.0.1:9981: %v", o.Metrics, err)
		}
	}
	if o.LogLevel != slog.LevelDebug && o.LogLevel != slog.LevelInfo && o.LogLevel != slog.LevelWarn && o.LogLevel != slog.LevelError {
		return fmt.Errorf("--log-level %v: want debug, info, warn or error", o.LogLevel)
	}
	return nil
}

// validateLimits checks the limit flags against --max-frame.
func (o *Options) validateLimits() error {
	if o.PartialTimeout <= 0 {
		return fmt.Errorf("--partial-timeout %s: must be positive", o.PartialTimeout)
	}
	if o.MaxPartialMemory < 0 {
		return fmt.Errorf("--max-partial-memory %s: must not be negative", o.MaxPartialMemory)
	}
	if o.MaxPartialMemory > 0 && o.MaxPartialMemory < o.MaxFrame+4 {
		return fmt.Errorf("--max-partial-memory %s: must hold at least one frame of --max-frame %s; raise it, or lower --max-frame",
			o.MaxPartialMemory, o.MaxFrame)
	}
	if o.MaxPushBuffer < 1<<10 || o.MaxPushBuffer > 1<<30 {
		return fmt.Errorf("--max-push-buffer %s: must be 1KiB to 1GiB", o.MaxPushBuffer)
	}
	if o.TrackingMaxKeys < 0 || o.TrackingMaxKeys > MaxTrackingMaxKeys {
		return fmt.Errorf("--tracking-max-keys %d: want 1 to %d keys, or 0 for no cap", o.TrackingMaxKeys, MaxTrackingMaxKeys)
	}
	if o.MaxOutputMemory < 0 {
		return fmt.Errorf("--max-output-memory %s: must not be negative", o.MaxOutputMemory)
	}
	if err := validOutputLimit(o.OutputLimit); err != nil {
		return fmt.Errorf("--output-limit %s: %w", outputLimitValue{&o.OutputLimit}, err)
	}
	return nil
}

// validateTCP checks the TCP flags: everything that can be checked
// without the sockets systemd may pass, before anything listens.
func (o *Options) validateTCP() error {
	if o.MaxTCPConns < 0 {
		return fmt.Errorf("--max-tcp-conns %d: must be at least 1", o.MaxTCPConns)
	}
	if o.MaxTCPConns > 0 && o.MaxTCPConns >= o.MaxConns {
		return fmt.Errorf("--max-tcp-conns %d: must be less than --max-conns %d, so that the Unix socket keeps a share of the connections",
			o.MaxTCPConns, o.MaxConns)
	}
	if o.MaxTCPUnauth <= 0 {
		return fmt.Errorf("--max-tcp-unauth-conns %d: must be at least 1", o.MaxTCPUnauth)
	}
	if o.PasswordChange != "close" && o.PasswordChange != "keep" {
		return fmt.Errorf("--password-change %q: want close (end the sessions of the old password) or keep", o.PasswordChange)
	}
	if o.HandshakeTimeout <= 0 {
		return fmt.Errorf("--handshake-timeout %s: must be more than 0", o.HandshakeTimeout)
	}
	if (o.TLSCert == "") != (o.TLSKey == "") {
		return fmt.Errorf("--tls-cert and --tls-key go together: give both (make them with 'cyberdbd gen-cert --host NAME --out DIR')")
	}
	if o.TCPInsecure && o.TLSCert != "" {
		return fmt.Errorf("--tcp-insecure turns TLS off, and --tls-cert turns it on: give one of them")
	}
	if o.TLSClientCA != "" && o.TLSCert == "" {
		return fmt.Errorf("--tls-client-ca needs TLS: give --tls-cert and --tls-key too")
	}
	if o.TCP == "" {
		return nil
	}
	host, _, err := net.SplitHostPort(o.TCP)
	if err != nil {
		return fmt.Errorf("--tcp %q: want HOST:PORT, e.g. 0.0.0.0:9980 or [::1]:9980", o.TCP)
	}
	if o.TCPInsecure {
		if !isLoopbackHost(host) {
			return fmt.Errorf("--tcp %s with --tcp-insecure: plaintext is served only on a loopback address (127.0.0.1, ::1, localhost); "+
				"for other hosts give --tls-cert and --tls-key instead (make them with 'cyberdbd gen-cert')", o.TCP)
		}
		return nil
	}
	if o.TLSCert == "" {
		return fmt.Errorf("--tcp %s needs --tls-cert and --tls-key (make them with 'cyberdbd gen-cert --host NAME --out DIR'), "+
			"or --tcp-insecure on a loopback address", o.TCP)
	}
	return nil
}

// isLoopbackHost reports whether host, from --tcp, is a loopback address.
// A listener is checked again once it is open, by its address.
func isLoopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.Unmap().IsLoopback()
}

// The values the daemon runs with where a field's zero value means a
// default that depends on other fields or on the machine.

// Loops is the number of event loops: IOLoops, with AutoIOLoops resolved.
func (o *Options) Loops() int {
	if o.IOLoops == AutoIOLoops {
		return DefaultIOLoops()
	}
	return o.IOLoops
}

// TCPLimits are the TCP connection limits: MaxTCPConns (0: half of
// MaxConns), and MaxTCPUnauth, at most that.
func (o *Options) TCPLimits() (conns, unauth int) {
	conns = o.MaxTCPConns
	if conns == 0 {
		conns = max(1, o.MaxConns/2)
	}
	return conns, min(o.MaxTCPUnauth, conns)
}

// TCPAllow is the TCP allowlist: Allow, or loopback only when empty.
func (o *Options) TCPAllow() []netip.Prefix {
	if len(o.Allow) == 0 {
		return server.LoopbackOnly
	}
	return o.Allow
}

// OutputMemory is the server's MaxOutputMemory: negative for no limit.
func (o *Options) OutputMemory() int64 {
	if o.MaxOutputMemory == 0 {
		return -1
	}
	return int64(o.MaxOutputMemory)
}

// SocketGID is SocketGroup's gid, or -1 when SocketGroup is "".
func (o *Options) SocketGID() (int, error) {
	if o.SocketGroup == "" {
		return -1, nil
	}
	gid, err := lookupID(o.SocketGroup, "group")
	if err != nil {
		return -1, fmt.Errorf("--socket-group: %w", err)
	}
	return int(gid), nil
}

// PeerIDs resolves AllowUIDs and AllowGIDs to the ids the server checks.
func (o *Options) PeerIDs() (uids, gids []uint32, err error) {
	for _, name := range o.AllowUIDs {
		uid, err := lookupID(name, "user")
		if err != nil {
			return nil, nil, fmt.Errorf("--allow-uid: %w", err)
		}
		uids = append(uids, uid)
	}
	for _, name := range o.AllowGIDs {
		gid, err := lookupID(name, "group")
		if err != nil {
			return nil, nil, fmt.Errorf("--allow-gid: %w", err)
		}
		gids = append(gids, gid)
	}
	return uids, gids, nil
}

// lookupID resolves a user or group name, or takes a number as it is.
func lookupID(s, kind string) (uint32, error) {
	s = strings.TrimSpace(s)
	id, err := strconv.ParseUint(s, 10, 32)
	if err == nil && id != math.MaxUint32 {
		return uint32(id), nil
	}
	var sid string
	if kind == "user" {
		u, lerr := user.Lookup(s)
		if lerr != nil {
			return 0, fmt.Errorf("no user %q (give a user name or a numeric uid)", s)
		}
		sid = u.Uid
	} else {
		g, lerr := user.LookupGroup(s)
		if lerr != nil {
			return 0, fmt.Errorf("no group %q (give a group name or a numeric gid)", s)
		}
		sid = g.Gid
	}
	id, err = strconv.ParseUint(sid, 10, 32)
	if err != nil {
		return 0, fmt.Errorf("%s %q has id %q, not a number", kind, s, sid)
	}
	return uint32(id), nil
}
