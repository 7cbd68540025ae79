package store

import (
	"math"
	"sync/atomic"
	"time"

	"github.com/cyberdb/cyberdb/cyberdbd/internal/clock"
	"github.com/cyberdb/cyberdb/libcyberdb/wire"
)

// Expiry: deadlines of dict entries and of whole tables.
//
// A deadline is an absolute time, unix milliseconds; an entry or table
// whose deadline is at or before the store's clock reading is gone. It is
// gone for every op at once, swept or not: reads skip it (they never
// change anything), and a write that meets it removes it first. Every
// removal of something expired is journaled, as a dremove record (entries)
// or a drop (tables), by the one store that decided it: replaying the
// journal never reads a clock (Replay runs with noClock, under which
// nothing is expired), so it gives the same tables whenever it runs, and a
// replica fed the journal would expire exactly what its leader did. What
// expired while the daemon was down is expired at start, by the same rule,
// before any client sees it, and the sweeper removes it.
//
// An op that computes a deadline from the clock (a TTL "from now", a
// table's default TTL) is journaled inside a timed record [unix-ms, [op,
// arg...]] holding the clock reading it used, so that its replay computes
// the same deadline.
//
// Memory: a deadline costs 8 bytes an entry (dict.dl), in dicts that have
// had one; the sweeper keeps no index beyond each dict's least deadline
// (minDL): it passes over dl, in steps of bounded work under the table's
// lock, when minDL is due (sweep.go).

// Clock is where the store reads the time. Tests give a ManualClock.
type Clock interface{ Now() time.Time }

type systemClock struct{}

func (systemClock) Now() time.Time { return clock.Now() } // one clock read, not two: every op reads it

// ManualClock is a Clock that moves only when told to: expiry is tested
// at, just before and just after a deadline without sleeping.
type ManualClock struct{ ms atomic.Int64 }

// NewManualClock returns a ManualClock reading t.
func NewManualClock(t time.Time) *ManualClock {
	c := &ManualClock{}
	c.Set(t)
	return c
}

// Now returns the time set, to the millisecond.
func (c *ManualClock) Now() time.Time { return time.UnixMilli(c.ms.Load()) }

// Set sets the clock to t.
func (c *ManualClock) Set(t time.Time) { c.ms.Store(t.UnixMilli()) }

// Add moves the clock by d (which may be negative).
func (c *ManualClock) Add(d time.Duration) { c.ms.Add(d.Milliseconds()) }

// noClock is the clock reading of replay: no deadline is at or before it.
const noClock = math.MinInt64

// Bounds of deadlines and TTLs, in milliseconds: beyond them a value is a
// mistake (seconds given as milliseconds the other way round are not), and
// within them no sum overflows.
const (
	maxTTL      = 1 << 46 // about 2230 years
	maxDeadline = 1 << 47 // about the year 6429
)

// expiredAt reports whether deadline dl (0: none) has passed at now.
func expiredAt(dl, now int64) bool { return dl != 0 && dl <= now }

// deadline returns the deadline of the entry at pos, 0 for none.
func (d *dict) deadline(pos int) int64 {
	if d.dl == nil {
		return 0
	}
	return d.dl[pos]
}

// expired reports whether the entry at pos has passed its deadline at now.
func (d *dict) expired(pos int, now int64) bool {
	return d.dl != nil && expiredAt(d.dl[pos], now)
}

// setDeadline sets the deadline of the entry at pos (0: none).
func (d *dict) setDeadline(pos int, dl int64) {
	if d.dl == nil {
		if dl == 0 {
			return
		}
		d.dl = make([]int64, len(d.entries), cap(d.entries))
	}
	old := d.dl[pos]
	switch {
	case old == 0 && dl != 0:
		d.ttls++
	case old != 0 && dl == 0:
		d.ttls--
	}
	d.dl[pos] = dl
	if dl != 0 {
		if d.minDL == 0 || dl < d.minDL {
			d.minDL = dl
		}
		if d.sweepSeq != 0 && (d.passMin == 0 || dl < d.passMin) {
			d.passMin = dl
		}
	}
	if d.ttls == 0 {
		d.minDL = 0
	}
}

// liveAt counts the entries not expired at now: d.live unless a deadline
// may have passed (minDL due and not swept yet), then by a pass over dl.
func (d *dict) liveAt(now int64) int {
	if d.ttls == 0 || d.minDL == 0 || d.minDL > now {
		return d.live
	}
	n := d.live
	for pos := range d.entries {
		if !d.entries[pos].dead() && expiredAt(d.dl[pos], now) {
			n--
		}
	}
	return n
}

// due reports whether some deadline of d may have passed at now.
func (d *dict) due(now int64) bool { return d.ttls > 0 && d.minDL != 0 && d.minDL <= now }

// dictOptions are a dict table's options, set by create_dict.
type dictOptions struct {
	defTTL int64 // ms: the TTL of an entry whose write names none; 0: none
	maxLen int   // a cache table's most entries; 0: no bound
	evict  bool  // a cache table: loses its least recently used entries over maxLen or --max-memory
}

// Options of a request's "when" map: which keys an op accepts.
type whenKeys uint8

const (
	wTTL whenKeys = 1 << iota
	wAt
	wPersist
	wKeepTTL
	wNX
	wXX
)

// when is a parsed "when" (or write options) map.
type when struct {
	given   bool  // ttl or at was given
	at      int64 // the deadline, when given
	timed   bool  // at was computed from the clock (ttl)
	persist bool
	keepTTL bool
	nx, xx  bool
}

var whenNames = [...]struct {
	bit  whenKeys
	name string
}{{wTTL, "ttl"}, {wAt, "at"}, {wPersist, "persist"}, {wKeepTTL, "keepttl"}, {wNX, "nx"}, {wXX, "xx"}}

func (k whenKeys) names() string {
	s := ""
	for _, n := range whenNames {
		if k&n.bit != 0 {
			if s != "" {
				s += ", "
			}
			s += `"` + n.name + `"`
		}
	}
	return s
}

// parseWhen reads argument i, a map with text keys among allowed. With
// ttl the deadline is the call's clock base plus ttl; minTTL is the least
// ttl allowed (dexpire allows 0 and less: gone at once).
func (c *call) parseWhen(i int, allowed whenKeys, minTTL int64) (w when, err error) {
	a := c.args
	raw := a.Items[i]
	bad := func(format string, args ...any) (when, error) {
		return when{}, errBadRequest("%s: argument %d: "+format, append([]any{a.Op, i + 1}, args...)...)
	}
	if len(raw) == 0 || raw[0]>>5 != 5 {
		return bad("must be a map with some of the keys %s, got %s", allowed.names(), wire.TypeName(raw))
	}
	var seen whenKeys
	pairs := func(fn func(k, v wire.Raw) error) error {
		if ok, err := quickPairs(raw, fn); ok {
			return err
		}
		return wire.Pairs(raw, fn)
	}
	err = pairs(func(k, v wire.Raw) error {
		name, err := wire.Args{Items: []wire.Raw{k}}.Text(0) // any encoding of text
		ok := err == nil
		var bit whenKeys
		for _, n := range whenNames {
			if ok && n.name == name {
				bit = n.bit
			}
		}
		if bit == 0 || allowed&bit == 0 {
			_, err := bad("unknown key %s (%s takes %s)", wire.Diagnose(k), a.Op, allowed.names())
			return err
		}
		seen |= bit
		item := wire.Args{Op: a.Op, Items: []wire.Raw{v}}
		switch bit {
		case wTTL, wAt:
			n, err := item.Int(0)
			if err != nil {
				_, err := bad("%q must be an integer number of milliseconds", name)
				return err
			}
			if bit == wTTL {
				if n < minTTL || n > maxTTL || n < -maxTTL {
					_, err := bad(`"ttl" must be %d to %d milliseconds, got %d`, max(minTTL, -maxTTL), int64(maxTTL), n)
					return err
				}
				if c.base == 0 {
					_, err := bad(`"ttl" in a journal record outside a timed record: the log is damaged`)
					return err
				}
				w.at, w.timed = c.base+n, true
				c.t.fxTimed++
			} else {
				if n < 1 || n > maxDeadline {
					_, err := bad(`"at" must be a deadline in unix milliseconds, 1 to %d, got %d`, int64(maxDeadline), n)
					return err
				}
				w.at = n
			}
			w.at = max(w.at, 1) // 0 means no deadline
			w.given = true
		default:
			b, err := item.Bool(0)
			if err != nil || !b {
				_, err := bad("%q must be true (leave it out for false)", name)
				return err
			}
			switch bit {
			case wPersist:
				w.persist = true
			case wKeepTTL:
				w.keepTTL = true
			case wNX:
				w.nx = true
			case wXX:
				w.xx = true
			}
		}
		return nil
	})
	if err != nil {
		return when{}, err
	}
	if n := popcount(seen & (wTTL | wAt | wPersist | wKeepTTL)); n > 1 {
		return bad(`give only one of %s`, (seen & (wTTL | wAt | wPersist | wKeepTTL)).names())
	}
	if w.nx && w.xx {
		return bad(`"nx" and "xx" exclude each other`)
	}
	if (a.Op == wire.OpDExpire || a.Op == wire.OpDGetEx || a.Op == wire.OpExpire) && !w.given && !w.persist {
		// dexpire, dgetex, expire: the map is the deadline; it cannot be empty.
		return bad(`give one of %s`, (allowed & (wTTL | wAt | wPersist)).names())
	}
	if w.timed && c.base != 0 {
		// The record of the op: this argument with the deadline instead.
		b := wire.AppendMapHeader(c.t.fxAt[:0], 1+popcount(seen&(wNX|wXX)))
		b = wire.AppendInt(wire.AppendText(b, "at"), w.at)
		if w.nx {
			b = wire.AppendBool(wire.AppendText(b, "nx"), true)
		}
		if w.xx {
			b = wire.AppendBool(wire.AppendText(b, "xx"), true)
		}
		c.t.fxAt, c.t.fxAtArg = b, i
	}
	return w, nil
}

// quickPairs calls fn for each pair of raw when it is the common small
// map: definite length, at most 6 pairs, short definite text keys, each
// once, and integers or booleans as values; it reports false, having
// called fn for no pair, for anything else, which wire.Pairs then reads.
// err is fn's first error.
// (wire.Pairs checks a map for repeated keys in canonical form, which
// costs a map and a canonical copy of each key: a profile of dset with a
// TTL showed it.)
func quickPairs(raw []byte, fn func(k, v wire.Raw) error) (ok bool, err error) {
	major, n, off, ok := wire.ReadHead(raw)
	if !ok || major != 5 || n > 6 || raw[0]&0x1f == 31 {
		return false, nil
	}
	type pair struct{ k, v wire.Raw }
	var ps [6]pair
	for i := range int(n) {
		km, kl, kh, ok := wire.ReadHead(raw[off:])
		if !ok || km != 3 || raw[off]&0x1f == 31 || kl > 16 || off+kh+int(kl) > len(raw) {
			return false, nil
		}
		k := raw[off : off+kh+int(kl)]
		for _, p := range ps[:i] {
			if string(p.k) == string(k) {
				return false, nil // repeated: the general path says so
			}
		}
		off += kh + int(kl)
		if off >= len(raw) {
			return false, nil
		}
		var vl int
		switch b := raw[off]; {
		case b == 0xf4 || b == 0xf5:
			vl = 1
		case b>>5 <= 1:
			_, _, h, ok := wire.ReadHead(raw[off:])
			if !ok {
				return false, nil
			}
			vl = h
		default:
			return false, nil
		}
		ps[i] = pair{k, raw[off : off+vl]}
		off += vl
	}
	if off != len(raw) {
		return false, nil
	}
	for _, p := range ps[:n] {
		if err := fn(p.k, p.v); err != nil {
			return true, err
		}
	}
	return true, nil
}

func popcount(k whenKeys) int {
	n := 0
	for ; k != 0; k &= k - 1 {
		n++
	}
	return n
}

// newDeadline is the deadline a write that stores a whole value gives its
// entry: the write's own, else (keepttl) the deadline the live entry at
// pos has (pos < 0: none), else the table's default TTL from the clock
// base, else none.
func (c *call) newDeadline(w when, pos int) int64 {
	d := c.t.d
	switch {
	case w.given:
		return w.at
	case w.keepTTL && pos >= 0:
		return d.deadline(pos)
	case d.defTTL > 0 && c.base != 0:
		c.t.fxTimed++
		return c.base + d.defTTL
	}
	return 0
}

// remaining renders a deadline for dttl and ttl: null for none, else the
// milliseconds left (at least 1: an entry with 0 left is gone) or, with
// absolute, the deadline itself.
func remaining(out []byte, dl, now int64, absolute bool) []byte {
	switch {
	case dl == 0:
		return wire.AppendNull(out)
	case absolute:
		return wire.AppendUint(out, uint64(dl))
	}
	return wire.AppendUint(out, uint64(max(dl-now, 1)))
}
