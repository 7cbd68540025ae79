package server

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/cyberdb/cyberdb/cyberdbd/internal/clock"
	"github.com/cyberdb/cyberdb/cyberdbd/internal/latency"
	"github.com/cyberdb/cyberdb/libcyberdb/wire"
)

// What the daemon is doing (issue 17; PROTOCOL.md 6.9): per-op latency
// histograms, the slow log, the live monitor (monitor.go), the client
// list and kill_client, and the live settings (config_get, config_set).
//
// Every request passes through observe once it has run. What it costs
// there: one clock reading before and after, two atomic adds in the op's
// histogram, two in the connection's counters, one atomic load for the
// slow log's threshold and one for the monitors (nothing else while
// nobody monitors), and a check of the log level. Rendering (arguments,
// keys) happens only for a request that is slow, monitored or debug
// logged.

// DefaultSlowLogLen is the default number of entries the slow log keeps.
const DefaultSlowLogLen = 128

// observer is the server's part of it.
type observer struct {
	lat       [256]latency.Histogram // by op; ops over 255 are unknown and never run
	slowNanos atomic.Int64           // requests at least this long are logged; 0: none
	tracking  atomic.Bool            // the latency histograms are kept (SetLatencyTracking)
	timed     atomic.Bool            // tracking, a slow log or a monitor: requests are timed (retime)
	slow      slowLog

	monitors atomic.Int32 // subscribed monitors: publish runs only while > 0
	monMu    sync.Mutex   // guards mons; a leaf
	mons     map[*monitorSub]struct{}
	monIDs   atomic.Uint64
}

// connStats is what a connection shows in the clients op: set when it is
// accepted, then counted by whichever goroutine runs its requests, and
// read by any (atomics).
type connStats struct {
	since    time.Time // accepted
	who      string    // "pid 1234 uid 1000" (Unix socket), or the TCP address
	pid      int32     // 0: unknown (TCP)
	uid      int64     // -1: unknown (TCP)
	addr     string    // "unix", or the TCP peer's address
	name     atomic.Pointer[string]
	push     atomic.Bool // HELLO asked for push
	requests atomic.Uint64
	lastNano atomic.Int64 // when the last request ended, unix ns
	pending  atomic.Int64 // replies being written to a full socket (goroutine-served connections)
}

// setPeer fills in who c is: pid and uid on a Unix socket, the address on TCP.
func (c *conn) setPeer() {
	st := &c.shared.stats
	st.since = time.Now()
	st.uid = -1
	st.addr = remoteName(c.nc)
	st.who = st.addr
	if _, ok := c.nc.(*net.UnixConn); ok {
		st.addr = "unix"
		if cred, err := PeerCredentials(c.nc); err == nil {
			st.pid, st.uid = cred.PID, int64(cred.UID)
			st.who = fmt.Sprintf("pid %d uid %d", cred.PID, cred.UID)
		}
	}
}

// observe accounts for request req of c, which ran from start and failed
// with err (nil: it succeeded). Its clock reading is the start of the
// next request of the burst (conn.clk).
func (c *conn) observe(req wire.Request, start time.Time, err error) {
	now := clock.Now()
	c.clk = now
	d := now.Sub(start)
	s := c.s
	if int(req.Op) < len(s.obs.lat) && s.obs.tracking.Load() {
		s.obs.lat[req.Op].Observe(d)
	}
	st := &c.shared.stats
	st.requests.Add(1)
	if ns := now.UnixNano(); ns-st.lastNano.Load() >= int64(time.Millisecond) {
		st.lastNano.Store(ns) // idle to the millisecond: no locked store per request of a burst
	}
	if t := s.obs.slowNanos.Load(); t > 0 && int64(d) >= t {
		s.obs.slow.add(c, req, now, d)
	}
	if s.obs.monitors.Load() > 0 {
		s.publish(c, req, now, d, err)
	}
	if c.log.Enabled(context.Background(), slog.LevelDebug) {
		if err == nil {
			c.log.Debug("request", "id", req.ID, "op", req.Op.String(), "table", tableOf(req), "key", keyOf(req), "duration", d)
		} else {
			e := wire.AsError(err)
			c.log.Debug("request failed", "id", req.ID, "op", req.Op.String(), "table", tableOf(req), "key", keyOf(req), "duration", d,
				"code", e.Code.String(), "msg", e.Message)
		}
	}
}

// SetSlowLog sets the slow log's threshold (0: none) and length (0:
// DefaultSlowLogLen), live: a shorter log drops its oldest entries.
func (s *Server) SetSlowLog(threshold time.Duration, length int) {
	if threshold < 0 {
		threshold = 0
	}
	s.obs.slowNanos.Store(int64(threshold))
	s.obs.slow.resize(length)
	s.obs.retime()
}

// SetLatencyTracking turns the per-op latency histograms on or off, live
// (--latency-tracking). Off, and with no slow log and no monitor, requests
// are not timed at all: a pipelined burst reads the clock once.
func (s *Server) SetLatencyTracking(on bool) {
	s.obs.tracking.Store(on)
	s.obs.retime()
}

// retime decides whether requests are timed. A request that races a
// change is timed or not as it read the flag: at worst one request is
// missed by a slow log or monitor just turned on.
func (o *observer) retime() {
	o.timed.Store(o.tracking.Load() || o.slowNanos.Load() > 0 || o.monitors.Load() > 0)
}

// LatencySnapshot returns op's latency histogram (Prometheus).
func (s *Server) LatencySnapshot(op wire.Op) latency.Snapshot {
	if int(op) >= len(s.obs.lat) {
		return latency.Snapshot{}
	}
	return s.obs.lat[op].Snapshot()
}

// OpCount is the number of requests of op answered since start.
func (s *Server) OpCount(op wire.Op) uint64 {
	if int(op) >= len(s.opCount) {
		return 0
	}
	return s.opCount[op].Load()
}

// slowLog is a ring of the slowest requests' entries, newest last.
type slowLog struct {
	mu      sync.Mutex // guards the rest; a leaf
	entries []slowEntry
	next    int // where the next entry goes, once the ring is full
	max     int
	ids     uint64
}

// slowEntry is one slow request. Its encoding is PROTOCOL.md 6.9's.
type slowEntry struct {
	ID       uint64   `cbor:"id"`
	Time     int64    `cbor:"time_us"` // unix microseconds, when it ended
	Duration int64    `cbor:"duration_us"`
	Op       string   `cbor:"op"`
	Table    string   `cbor:"table"`
	Args     []string `cbor:"args"`
	Conn     uint64   `cbor:"conn"`
	Client   string   `cbor:"client"`
}

func (l *slowLog) resize(n int) {
	if n <= 0 {
		n = DefaultSlowLogLen
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if n == l.max {
		return
	}
	old := l.ordered()
	if len(old) > n {
		old = old[len(old)-n:]
	}
	l.entries = append(make([]slowEntry, 0, min(n, 64)), old...)
	l.next = 0
	l.max = n
}

// ordered returns the entries oldest first. Must hold l.mu.
func (l *slowLog) ordered() []slowEntry {
	if len(l.entries) < l.max || l.next == 0 {
		return slices.Clone(l.entries)
	}
	return append(slices.Clone(l.entries[l.next:]), l.entries[:l.next]...)
}

func (l *slowLog) add(c *conn, req wire.Request, end time.Time, d time.Duration) {
	e := slowEntry{
		Time:     end.UnixMicro(),
		Duration: d.Microseconds(),
		Op:       req.Op.String(),
		Table:    tableOf(req),
		Args:     renderArgs(req),
		Conn:     c.id,
		Client:   c.shared.stats.who,
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.max == 0 {
		l.max = DefaultSlowLogLen
	}
	l.ids++
	e.ID = l.ids
	if len(l.entries) < l.max {
		l.entries = append(l.entries, e)
		return
	}
	l.entries[l.next] = e
	l.next = (l.next + 1) % l.max
}

// get returns the n newest entries, newest first.
func (l *slowLog) get(n int) []slowEntry {
	l.mu.Lock()
	all := l.ordered()
	l.mu.Unlock()
	slices.Reverse(all)
	if n >= 0 && n < len(all) {
		all = all[:n]
	}
	return all
}

func (l *slowLog) len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.entries)
}

func (l *slowLog) reset() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.entries, l.next = nil, 0
}

// Rendering requests for the slow log, the monitor and the debug log:
// short, whatever the request's size, and never HELLO's arguments (a
// password may be among them).

const (
	maxRenderArgs = 8   // arguments shown; the rest are counted
	maxRenderLen  = 64  // characters of one argument
	maxRenderRaw  = 512 // an argument bigger than this is described, not rendered
)

// tableOps are the ops whose first argument is a table name.
var tableOps = [256]bool{
	wire.OpCreateDict: true, wire.OpCreateList: true, wire.OpExists: true, wire.OpDrop: true,
	wire.OpLen: true, wire.OpExpire: true, wire.OpTTL: true, wire.OpLMove: true, wire.OpLBMove: true,
	wire.OpGuard: true,
}

// keyOps are the dict ops whose second argument is a key.
var keyOps = [256]bool{
	wire.OpDGet: true, wire.OpDSet: true, wire.OpDDel: true, wire.OpDHas: true, wire.OpDPop: true,
	wire.OpDSetDefault: true, wire.OpDIncr: true, wire.OpDCAS: true, wire.OpDExpire: true,
	wire.OpDPersist: true, wire.OpDTTL: true, wire.OpDGetEx: true, wire.OpDDelIfEq: true,
}

// tableOf returns the table req names, "" if none (lbpop: its tables).
func tableOf(req wire.Request) string {
	if req.Args.Len() == 0 || int(req.Op) >= len(tableOps) {
		return ""
	}
	if req.Op == wire.OpLBPop {
		return renderValue(req.Args.Items[0])
	}
	if !tableOps[req.Op] && !req.Op.IsDict() && !req.Op.IsList() {
		return ""
	}
	if t, err := req.Args.Text(0); err == nil {
		return strings.Clone(clip(t)) // t aliases the request buffer
	}
	return ""
}

// keyOf returns the key a dict op names, "" if none: text as it is, other
// keys in CBOR diagnostic notation.
func keyOf(req wire.Request) string {
	if int(req.Op) >= len(keyOps) || !keyOps[req.Op] || req.Args.Len() < 2 {
		return ""
	}
	return renderValue(req.Args.Items[1])
}

// renderArgs renders req's arguments for the slow log.
func renderArgs(req wire.Request) []string {
	if req.Op == wire.OpHello {
		return []string{"(not shown)"}
	}
	n := req.Args.Len()
	out := make([]string, 0, min(n, maxRenderArgs+1))
	for i, a := range req.Args.Items {
		if i == maxRenderArgs {
			out = append(out, fmt.Sprintf("... (%d more arguments)", n-i))
			break
		}
		out = append(out, renderValue(a))
	}
	return out
}

// renderValue renders one argument: a text as it is, anything else in
// diagnostic notation, clipped; a big one only by its type and size.
func renderValue(raw wire.Raw) string {
	if len(raw) > maxRenderRaw {
		if major, n, _, ok := wire.ReadHead(raw); ok && (major == 4 || major == 5) {
			return fmt.Sprintf("(%s of %d items, %d bytes)", wire.TypeName(raw), n, len(raw))
		}
		return fmt.Sprintf("(%s, %d bytes)", wire.TypeName(raw), len(raw))
	}
	if len(raw) > 0 && raw[0]>>5 == 3 {
		var s string
		if wire.Unmarshal(raw, &s) == nil {
			return clip(s)
		}
	}
	return clip(wire.Diagnose(raw))
}

// clip shortens s to maxRenderLen characters.
func clip(s string) string {
	if len(s) <= maxRenderLen {
		return s
	}
	cut := maxRenderLen
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

// Client list and kill_client.

// clientInfo is one entry of the clients op (PROTOCOL.md 6.9).
type clientInfo struct {
	ID       uint64 `cbor:"id"`
	Name     string `cbor:"name"`
	PID      int32  `cbor:"pid,omitempty"`
	UID      *int64 `cbor:"uid,omitempty"`
	Addr     string `cbor:"addr"`
	AgeMs    int64  `cbor:"age_ms"`
	IdleMs   int64  `cbor:"idle_ms"`
	Requests uint64 `cbor:"requests"`
	Pending  int64  `cbor:"pending_bytes"`
	Push     bool   `cbor:"push"`
	Monitor  bool   `cbor:"monitor"`
}

func (s *Server) clientOf(c *conn, pending int64, now time.Time) clientInfo {
	st := &c.shared.stats
	ci := clientInfo{ID: c.id, PID: st.pid, Addr: st.addr, AgeMs: now.Sub(st.since).Milliseconds(),
		Requests: st.requests.Load(), Pending: pending, Push: st.push.Load()}
	if st.uid >= 0 {
		uid := st.uid
		ci.UID = &uid
	}
	if n := st.name.Load(); n != nil {
		ci.Name = *n
	}
	last := st.since
	if ns := st.lastNano.Load(); ns != 0 {
		last = time.Unix(0, ns)
	}
	ci.IdleMs = max(now.Sub(last).Milliseconds(), 0)
	s.obs.monMu.Lock()
	for m := range s.obs.mons {
		if m.c == c.shared {
			ci.Monitor = true
		}
	}
	s.obs.monMu.Unlock()
	return ci
}

// clients lists every connection that completed HELLO, by id.
func (s *Server) clients(cur *ioLoop) []clientInfo {
	now := time.Now()
	var out []clientInfo
	s.mu.Lock()
	for c := range s.conns {
		if c.shared.stats.since.IsZero() {
			continue
		}
		out = append(out, s.clientOf(c, c.shared.stats.pending.Load(), now))
	}
	loops := s.loops
	s.mu.Unlock()
	for _, l := range loops {
		out = append(out, l.clients(now, cur)...)
	}
	slices.SortFunc(out, func(a, b clientInfo) int { return int(a.ID) - int(b.ID) })
	return out
}

// kill closes connection id: it reports whether one was open. Its
// requests already read are not answered (it is closed as a client that
// hangs up is); a parked request is cancelled.
func (s *Server) kill(id uint64) bool {
	s.mu.Lock()
	for c := range s.conns {
		if c.id == id {
			s.mu.Unlock()
			s.log.Info("connection closed by kill_client", "conn", id) // not c.log: its goroutine sets it at HELLO
			_ = c.nc.Close()
			return true
		}
	}
	loops := s.loops
	s.mu.Unlock()
	for _, l := range loops {
		if l.kill(id) {
			return true
		}
	}
	return false
}

// Live settings: the daemon implements Settings (cyberdbd/internal/daemon).

// Setting is one setting of config_get: its flag name, its value as the
// flag takes it, and whether config_set can change it while the daemon
// runs.
type Setting struct {
	_     struct{} `cbor:",toarray"`
	Name  string
	Value string
	Live  bool
}

// Settings answers config_get and config_set.
type Settings interface {
	// Settings returns every setting, in the order of cyberdbd --help.
	Settings() []Setting
	// Set changes a live setting; its error says what to give instead,
	// or that the setting needs a restart.
	Set(name, value string) error
}

// execAdmin runs the observability and administration ops (90-96); ok
// false: req is none of them.
func (c *conn) execAdmin(req wire.Request, out []byte) (res []byte, err error, ok bool) {
	s := c.s
	switch req.Op {
	case wire.OpSlowLog:
		res, err = s.doSlowLog(req.Args, out)
	case wire.OpLatency:
		res, err = s.doLatency(req.Args, out)
	case wire.OpMonitor:
		res, err = c.doMonitor(req.Args, out)
	case wire.OpClients:
		if err := req.Args.Want(0, 0); err != nil {
			return out, err, true
		}
		res, err = wire.AppendMarshal(out, s.clients(s.currentLoop(c)))
	case wire.OpKillClient:
		if err := req.Args.Want(1, 1); err != nil {
			return out, err, true
		}
		id, err := req.Args.Uint(0)
		if err != nil {
			return out, err, true
		}
		if id != c.id {
			c.log.Info("kill_client", "target", id)
		}
		res = wire.AppendBool(out, s.kill(id))
	case wire.OpConfigGet:
		res, err = s.doConfigGet(req.Args, out)
	case wire.OpConfigSet:
		res, err = c.doConfigSet(req.Args, out)
	default:
		return out, nil, false
	}
	return res, err, true
}

func (s *Server) doSlowLog(args wire.Args, out []byte) ([]byte, error) {
	if err := args.Want(1, 2); err != nil {
		return out, err
	}
	sub, err := args.Text(0)
	if err != nil {
		return out, err
	}
	switch sub {
	case "get":
		n := int64(10)
		if args.Has(1) {
			if n, err = args.Int(1); err != nil {
				return out, err
			}
		}
		return wire.AppendMarshal(out, s.obs.slow.get(int(n)))
	case "len":
		if err := args.Want(1, 1); err != nil {
			return out, err
		}
		return wire.AppendUint(out, uint64(s.obs.slow.len())), nil
	case "reset":
		if err := args.Want(1, 1); err != nil {
			return out, err
		}
		s.obs.slow.reset()
		return wire.AppendNull(out), nil
	}
	return out, wire.Errorf(wire.CodeBadRequest, "slowlog: unknown subcommand %q; want get [N], len or reset", clip(sub))
}

// opLatency is one op's entry in the latency op's result.
type opLatency struct {
	Count uint64 `cbor:"count"`
	P50   int64  `cbor:"p50_us"`
	P99   int64  `cbor:"p99_us"`
	P999  int64  `cbor:"p999_us"`
	Max   int64  `cbor:"max_us"`
	Mean  int64  `cbor:"mean_us"`
}

// latencies summarises the histograms of the ops that ran.
func (s *Server) latencies() map[string]opLatency {
	m := map[string]opLatency{}
	for i := range s.obs.lat {
		snap := s.obs.lat[i].Snapshot()
		if snap.Count == 0 {
			continue
		}
		m[wire.Op(i).String()] = opLatency{
			Count: snap.Count,
			P50:   snap.Quantile(0.5).Microseconds(),
			P99:   snap.Quantile(0.99).Microseconds(),
			P999:  snap.Quantile(0.999).Microseconds(),
			Max:   snap.Max().Microseconds(),
			Mean:  (snap.Sum / time.Duration(snap.Count)).Microseconds(),
		}
	}
	return m
}

func (s *Server) doLatency(args wire.Args, out []byte) ([]byte, error) {
	if err := args.Want(0, 1); err != nil {
		return out, err
	}
	reset := false
	if args.Has(0) {
		var err error
		if reset, err = args.Bool(0); err != nil {
			return out, err
		}
	}
	out, err := wire.AppendMarshal(out, s.latencies())
	if reset { // after reading: the reply has what was reset
		for i := range s.obs.lat {
			s.obs.lat[i].Reset()
		}
	}
	return out, err
}

func (s *Server) doConfigGet(args wire.Args, out []byte) ([]byte, error) {
	if err := args.Want(0, 1); err != nil {
		return out, err
	}
	if s.cfg.Settings == nil {
		return out, wire.Errorf(wire.CodeBadRequest, "config_get: this server has no settings to show (an embedded server)")
	}
	var name string
	if args.Has(0) {
		var err error
		if name, err = args.Text(0); err != nil {
			return out, err
		}
	}
	all := s.cfg.Settings.Settings()
	if name != "" {
		all = slices.DeleteFunc(all, func(st Setting) bool { return st.Name != name })
		if len(all) == 0 {
			return out, wire.Errorf(wire.CodeBadRequest, "config_get: no setting %q; config_get with no name lists them all", clip(name))
		}
	}
	return wire.AppendMarshal(out, all)
}

func (c *conn) doConfigSet(args wire.Args, out []byte) ([]byte, error) {
	if err := args.Want(2, 2); err != nil {
		return out, err
	}
	if c.s.cfg.Settings == nil {
		return out, wire.Errorf(wire.CodeBadRequest, "config_set: this server has no live settings (an embedded server)")
	}
	name, err := args.Text(0)
	if err != nil {
		return out, err
	}
	value, err := args.Text(1)
	if err != nil {
		return out, err
	}
	if err := c.s.cfg.Settings.Set(name, value); err != nil {
		return out, wire.Errorf(wire.CodeBadRequest, "config_set %s: %v", clip(name), err)
	}
	c.log.Info("setting changed by config_set", "setting", name, "value", clip(value), "peer", c.shared.stats.who)
	return wire.AppendNull(out), nil
}

// latencyInfo is info's "latency" entry: p50/p99/p99.9 per op, in
// microseconds, as "p50/p99/p99.9" text per op.
func (s *Server) latencyInfo() map[string]string {
	m := map[string]string{}
	for name, l := range s.latencies() {
		m[name] = fmt.Sprintf("%d/%d/%d", l.P50, l.P99, l.P999)
	}
	return m
}

// errString is an error's code name for the monitor, "" for none.
func errCode(err error) string {
	if err == nil {
		return ""
	}
	return strings.ToLower(wire.AsError(err).Code.String())
}

// ConnsTotal is the number of connections accepted since start.
func (s *Server) ConnsTotal() uint64 { return s.total.Load() }
