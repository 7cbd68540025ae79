package libcyberdb

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cyberdb/cyberdb/libcyberdb/wire"
)

// Seeing what the daemon does, and administering it (PROTOCOL.md 6.9).
// On a TCP listener these ops need the password, as every op does; on
// the Unix socket, whoever may open the socket may use them.

// SlowEntry is one request of the daemon's slow log.
type SlowEntry struct {
	ID       uint64        // increases with each entry since the daemon started
	Time     time.Time     // when the request ended
	Duration time.Duration // how long it ran
	Op       string        // the protocol op, e.g. "lsort"
	Table    string        // the table it named, if any
	Args     []string      // its arguments, short (HELLO's never shown)
	Conn     uint64        // the connection's id (Clients, KillClient)
	Client   string        // "pid 1234 uid 1000" on the Unix socket, the address on TCP
}

type slowEntryWire struct {
	ID       uint64   `cbor:"id"`
	Time     int64    `cbor:"time_us"`
	Duration int64    `cbor:"duration_us"`
	Op       string   `cbor:"op"`
	Table    string   `cbor:"table"`
	Args     []string `cbor:"args"`
	Conn     uint64   `cbor:"conn"`
	Client   string   `cbor:"client"`
}

// SlowLog returns the n newest entries of the slow log, newest first
// (n < 0: all it keeps). The daemon logs requests that take at least
// --slowlog-threshold (default 10ms; SetConfig changes it live).
func (t tableOps) SlowLog(ctx context.Context, n int) ([]SlowEntry, error) {
	var raw []slowEntryWire
	err := run(ctx, t.x, wire.OpSlowLog, "", &raw, func(cl *call) { cl.text("get").int(n) })
	out := make([]SlowEntry, len(raw))
	for i, e := range raw {
		out[i] = SlowEntry{ID: e.ID, Time: time.UnixMicro(e.Time), Duration: time.Duration(e.Duration) * time.Microsecond,
			Op: e.Op, Table: e.Table, Args: e.Args, Conn: e.Conn, Client: e.Client}
	}
	return out, err
}

// SlowLogLen returns the number of entries in the slow log.
func (t tableOps) SlowLogLen(ctx context.Context) (int, error) {
	var n int
	err := run(ctx, t.x, wire.OpSlowLog, "", &n, func(cl *call) { cl.text("len") })
	return n, err
}

// ResetSlowLog empties the slow log.
func (t tableOps) ResetSlowLog(ctx context.Context) error {
	return run(ctx, t.x, wire.OpSlowLog, "", nil, func(cl *call) { cl.text("reset") })
}

// OpLatency summarises one op's latency histogram in the daemon: the
// percentiles are the upper bounds of their buckets (at most 19% high).
type OpLatency struct {
	Count                     uint64
	P50, P99, P999, Max, Mean time.Duration
}

type opLatencyWire struct {
	Count uint64 `cbor:"count"`
	P50   int64  `cbor:"p50_us"`
	P99   int64  `cbor:"p99_us"`
	P999  int64  `cbor:"p999_us"`
	Max   int64  `cbor:"max_us"`
	Mean  int64  `cbor:"mean_us"`
}

// Latency returns the latency of each op the daemon has executed since it
// started (or since the last reset), by op name; reset starts the
// histograms again after reading them.
func (t tableOps) Latency(ctx context.Context, reset bool) (map[string]OpLatency, error) {
	var raw map[string]opLatencyWire
	err := run(ctx, t.x, wire.OpLatency, "", &raw, func(cl *call) {
		if reset {
			cl.bool(true)
		}
	})
	out := make(map[string]OpLatency, len(raw))
	us := func(v int64) time.Duration { return time.Duration(v) * time.Microsecond }
	for op, l := range raw {
		out[op] = OpLatency{Count: l.Count, P50: us(l.P50), P99: us(l.P99), P999: us(l.P999), Max: us(l.Max), Mean: us(l.Mean)}
	}
	return out, err
}

// ClientInfo describes one connection to the daemon.
type ClientInfo struct {
	ID       uint64 `cbor:"id"`   // for KillClient; HELLO's "conn_id"
	Name     string `cbor:"name"` // the client name sent in HELLO (WithClientName)
	PID      int32  `cbor:"pid"`  // Unix socket: the peer's pid when it connected; 0 on TCP
	UID      *int64 `cbor:"uid"`  // Unix socket: the peer's uid; nil on TCP
	Addr     string `cbor:"addr"` // "unix", or the TCP peer's address
	AgeMs    int64  `cbor:"age_ms"`
	IdleMs   int64  `cbor:"idle_ms"`
	Requests uint64 `cbor:"requests"`
	Pending  int64  `cbor:"pending_bytes"` // replies not yet taken by the client
	Push     bool   `cbor:"push"`
	Monitor  bool   `cbor:"monitor"`
}

// Age is how long the connection has been open.
func (ci ClientInfo) Age() time.Duration { return time.Duration(ci.AgeMs) * time.Millisecond }

// Idle is how long since its last request.
func (ci ClientInfo) Idle() time.Duration { return time.Duration(ci.IdleMs) * time.Millisecond }

// Clients lists the daemon's connections, by id.
func (t tableOps) Clients(ctx context.Context) ([]ClientInfo, error) {
	var out []ClientInfo
	err := run(ctx, t.x, wire.OpClients, "", &out, nil)
	return out, err
}

// KillClient closes the daemon's connection id (ClientInfo.ID) and
// reports whether it was open. The requests it had sent and not yet got
// replies to may or may not have been applied.
func (t tableOps) KillClient(ctx context.Context, id uint64) (bool, error) {
	var ok bool
	err := run(ctx, t.x, wire.OpKillClient, "", &ok, func(cl *call) { cl.uint(id) })
	return ok, err
}

// Setting is one of the daemon's settings: its flag name, its value as
// the flag takes it, and whether SetConfig can change it while the
// daemon runs.
type Setting struct {
	_     struct{} `cbor:",toarray"`
	Name  string
	Value string
	Live  bool
}

// Config returns the daemon's settings in effect, or only the one named.
func (t tableOps) Config(ctx context.Context, name string) ([]Setting, error) {
	var out []Setting
	err := run(ctx, t.x, wire.OpConfigGet, "", &out, func(cl *call) {
		if name != "" {
			cl.text(name)
		}
	})
	return out, err
}

// SetConfig changes a live setting (log-level, slowlog-threshold,
// slowlog-max-len, latency-tracking, max-memory, tracking-max-keys) as its flag would, until the daemon
// reloads its config file or restarts. Others fail with ErrBadRequest,
// saying they need a restart.
func (t tableOps) SetConfig(ctx context.Context, name, value string) error {
	return run(ctx, t.x, wire.OpConfigSet, "", nil, func(cl *call) { cl.text(name).text(value) })
}

// MonitorEvent is one request another connection completed, as the
// daemon's monitor reports it.
type MonitorEvent struct {
	Time     time.Time
	Conn     uint64 // the connection's id
	Client   string // "pid 1234 uid 1000", or the TCP address
	Op       string
	Table    string // "" when the op names none
	Key      string // a dict op's key: text as it is, other keys in CBOR diagnostic notation
	Duration time.Duration
	Error    string // the error code's name when it failed, e.g. "key_not_found"
}

type monitorWire struct {
	Push     string `cbor:"push"`
	Sub      uint64 `cbor:"sub"`
	Time     int64  `cbor:"time_us"`
	Conn     uint64 `cbor:"conn"`
	Client   string `cbor:"client"`
	Op       string `cbor:"op"`
	Table    string `cbor:"table"`
	Key      string `cbor:"key"`
	Duration int64  `cbor:"duration_us"`
	Error    string `cbor:"error"`
	Reason   string `cbor:"reason"`
}

// ErrMonitorLost is returned by Monitor when the daemon dropped the
// monitor because it did not read fast enough: monitor again.
var ErrMonitorLost = errors.New("cyberdb: the daemon dropped the monitor: it did not keep up")

// Monitor streams every request the daemon completes on other
// connections to fn, until ctx ends (then it returns nil), fn returns an
// error (returned), or the connection fails. It uses a connection of its
// own, with the push extension (PROTOCOL.md 3.1), outside the pool. fn
// runs on Monitor's goroutine: a slow fn makes the daemon drop the
// monitor (ErrMonitorLost) rather than buffer without bound.
func (c *Client) Monitor(ctx context.Context, fn func(MonitorEvent) error) error {
	p := c.p
	dctx, cancel := context.WithTimeout(ctx, p.cfg.dialTimeout)
	nc, err := p.dialer.dial(dctx)
	cancel()
	if err != nil {
		return fmt.Errorf("%w: monitor: cannot connect to %s: %w", ErrUnavailable, p.dialer.display, err)
	}
	defer nc.Close()
	stop := context.AfterFunc(ctx, func() { _ = nc.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	opts := map[string]any{"client": p.cfg.clientName + " (monitor)", "push": true}
	pw, err := p.dialer.password()
	if err != nil {
		return err
	}
	if pw != "" {
		opts["password"] = pw
	}
	req, err := wire.AppendRequest(nil, 1, wire.OpHello, wire.ProtocolVersion, opts)
	if err != nil {
		return err
	}
	if req, err = wire.AppendRequest(req, 2, wire.OpMonitor); err != nil {
		return err
	}
	if _, err := nc.Write(req); err != nil {
		return c.monitorErr(ctx, err)
	}
	br := bufio.NewReaderSize(nc, 64<<10)
	var buf []byte
	var sub uint64
	for {
		body, err := wire.ReadFrame(br, buf, -1)
		if err != nil {
			return c.monitorErr(ctx, err)
		}
		buf = body[:0]
		r, err := wire.DecodeReply(body)
		if err != nil {
			return &ProtocolError{Msg: "monitor: malformed frame " + wire.Diagnose(body)}
		}
		if r.Err != nil {
			return fmt.Errorf("cyberdb: monitor: %w", r.Err)
		}
		switch r.ID {
		case 1: // HELLO
		case 2:
			var res struct {
				Sub uint64 `cbor:"sub"`
			}
			if err := wire.Unmarshal(r.Result, &res); err != nil {
				return &ProtocolError{Msg: "monitor: malformed reply " + wire.Diagnose(r.Result)}
			}
			sub = res.Sub
		case 0:
			var m monitorWire
			if err := wire.Unmarshal(r.Result, &m); err != nil {
				continue // a push of a shape we do not know: ignored (PROTOCOL.md 3.1)
			}
			switch {
			case m.Push == "lost" && (m.Sub == sub || sub == 0):
				return fmt.Errorf("%w (%s)", ErrMonitorLost, m.Reason)
			case m.Push != "monitor":
				continue // kinds we do not know are ignored
			}
			ev := MonitorEvent{Time: time.UnixMicro(m.Time), Conn: m.Conn, Client: m.Client, Op: m.Op, Table: m.Table,
				Key: m.Key, Duration: time.Duration(m.Duration) * time.Microsecond, Error: m.Error}
			if err := fn(ev); err != nil {
				return err
			}
		}
	}
}

func (c *Client) monitorErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return nil
	}
	return fmt.Errorf("%w: monitor: %w", ErrUnavailable, err)
}
