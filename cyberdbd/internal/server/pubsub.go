package server

import (
	"sync"

	"github.com/cyberdb/cyberdb/libcyberdb/wire"
)

// Publish and subscribe (PROTOCOL.md 6.7): channels independent of tables,
// fire and forget. A message goes to the subscriptions live when it is
// published, each through its connection's bounded push queue; none is
// kept for later subscribers, and a subscription whose queue is full is
// dropped with a "lost" push rather than make the publisher wait.

// subKey names one subscription of one connection.
type subKey struct {
	q  *pushQueue
	id uint64
}

// pubsub is the server's registry of channel and pattern subscriptions.
type pubsub struct {
	mu       sync.RWMutex // guards channels and patterns; taken before a pushQueue's mu
	channels map[string]map[subKey]struct{}
	patterns map[string]map[subKey]struct{}
	scratch  sync.Pool // message frames being built
}

func (p *pubsub) add(q *pushQueue, id uint64, sb *subscription) {
	p.mu.Lock()
	defer p.mu.Unlock()
	m := &p.channels
	if sb.kind == subPatterns {
		m = &p.patterns
	}
	if *m == nil {
		*m = make(map[string]map[subKey]struct{})
	}
	for _, n := range sb.names {
		set := (*m)[n]
		if set == nil {
			set = make(map[subKey]struct{})
			(*m)[n] = set
		}
		set[subKey{q, id}] = struct{}{}
	}
}

func (p *pubsub) remove(q *pushQueue, id uint64, sb *subscription) {
	p.mu.Lock()
	defer p.mu.Unlock()
	m := p.channels
	if sb.kind == subPatterns {
		m = p.patterns
	}
	for _, n := range sb.names {
		if set := m[n]; set != nil {
			delete(set, subKey{q, id})
			if len(set) == 0 {
				delete(m, n)
			}
		}
	}
}

// publish queues msg (its CBOR) on every subscription of channel ch and
// returns how many took it.
func (p *pubsub) publish(ch string, msg []byte) int {
	bp, _ := p.scratch.Get().(*[]byte)
	if bp == nil {
		bp = new([]byte)
	}
	n := 0
	var lost []subKey
	p.mu.RLock()
	for k := range p.channels[ch] {
		*bp = appendMessage((*bp)[:0], k.id, ch, "", msg)
		if queued, ok := k.q.push(k.id, *bp); queued {
			n++
		} else if !ok {
			lost = append(lost, k)
		}
	}
	for pat, set := range p.patterns {
		if !globMatch(pat, ch) {
			continue
		}
		for k := range set {
			*bp = appendMessage((*bp)[:0], k.id, ch, pat, msg)
			if queued, ok := k.q.push(k.id, *bp); queued {
				n++
			} else if !ok {
				lost = append(lost, k)
			}
		}
	}
	p.mu.RUnlock()
	if cap(*bp) <= 64<<10 {
		p.scratch.Put(bp)
	}
	for _, k := range lost {
		p.dropLost(k) // Push dropped it from its connection already
	}
	return n
}

// dropLost takes a subscription that overflowed out of every channel and
// pattern (its connection forgot it in Push).
func (p *pubsub) dropLost(k subKey) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, m := range []map[string]map[subKey]struct{}{p.channels, p.patterns} {
		for n, set := range m {
			if _, ok := set[k]; ok {
				delete(set, k)
				if len(set) == 0 {
					delete(m, n)
				}
			}
		}
	}
}

// appendMessage appends the push {"push": "message", "sub", "channel",
// "pattern"?, "data"}.
func appendMessage(b []byte, sub uint64, ch, pat string, msg []byte) []byte {
	b, start := wire.BeginReply(b, 0)
	n := 4
	if pat != "" {
		n = 5
	}
	b = wire.AppendMapHeader(b, n)
	b = wire.AppendText(b, "push")
	b = wire.AppendText(b, "message")
	b = wire.AppendText(b, "sub")
	b = wire.AppendUint(b, sub)
	b = wire.AppendText(b, "channel")
	b = wire.AppendText(b, ch)
	if pat != "" {
		b = wire.AppendText(b, "pattern")
		b = wire.AppendText(b, pat)
	}
	b = wire.AppendText(b, "data")
	b = append(b, msg...)
	return wire.EndFrame(b, start)
}

// globMatch reports whether s matches the Redis glob pattern pat: * any
// run of bytes, ? one byte, [abc] [^a] [a-z] a class, \x the byte x.
func globMatch(pat, s string) bool {
	for len(pat) > 0 {
		switch pat[0] {
		case '*':
			for len(pat) > 0 && pat[0] == '*' {
				pat = pat[1:]
			}
			if pat == "" {
				return true
			}
			for i := 0; i <= len(s); i++ {
				if globMatch(pat, s[i:]) {
					return true
				}
			}
			return false
		case '?':
			if s == "" {
				return false
			}
			pat, s = pat[1:], s[1:]
		case '[':
			if s == "" {
				return false
			}
			end := 1
			neg := end < len(pat) && pat[end] == '^'
			if neg {
				end++
			}
			match := false
			for end < len(pat) && pat[end] != ']' {
				if pat[end] == '\\' && end+1 < len(pat) {
					end++
					match = match || pat[end] == s[0]
					end++
					continue
				}
				if end+2 < len(pat) && pat[end+1] == '-' && pat[end+2] != ']' {
					lo, hi := pat[end], pat[end+2]
					if lo > hi {
						lo, hi = hi, lo
					}
					match = match || (s[0] >= lo && s[0] <= hi)
					end += 3
					continue
				}
				match = match || pat[end] == s[0]
				end++
			}
			if end >= len(pat) { // no closing ]: the [ is itself
				if s[0] != '[' {
					return false
				}
				pat, s = pat[1:], s[1:]
				continue
			}
			if match == neg {
				return false
			}
			pat, s = pat[end+1:], s[1:]
		case '\\':
			if len(pat) > 1 {
				pat = pat[1:]
			}
			fallthrough
		default:
			if s == "" || pat[0] != s[0] {
				return false
			}
			pat, s = pat[1:], s[1:]
		}
	}
	return s == ""
}
