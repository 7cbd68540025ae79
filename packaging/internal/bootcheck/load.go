package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cyberdb/cyberdb/libcyberdb"
)

// load is a client that runs throughout the checks: workers that each
// own keys of table "load" and, for each key in turn, read it, check that
// it holds the value last acknowledged for it (so a write acknowledged
// before a restart, a crash or an upgrade must still be there after it),
// then write a new value. Calls are counted by phase; a phase is what the
// checks are doing meanwhile ("restart", "kill -9", ...).
type load struct {
	client *libcyberdb.Client
	dict   *libcyberdb.Dict[string, int64]

	cur    atomic.Pointer[phase]
	stop   chan struct{}
	wg     sync.WaitGroup
	mu     sync.Mutex
	phases []*phase
}

// phase counts the calls that ended while it was current.
type phase struct {
	name string
	// crash says that connections may be lost without the daemon's
	// shutting_down frame (kill -9, the watchdog's SIGABRT): a write that
	// got ErrConnClosed may or may not have been applied, and is written
	// again (Set is idempotent), as libcyberdb's documentation says.
	//
	// libcyberdb resends a read itself, but at most twice, and a crash
	// kills every connection of the pool at once: a read can meet dead
	// connections not yet noticed three times and return ErrConnClosed
	// (about one run in four). It is read again here and counted apart,
	// so that the report shows it until the library retries on a new
	// connection as database/sql does.
	crash bool

	ok          atomic.Int64 // calls that succeeded
	maybe       atomic.Int64 // writes written again after ErrConnClosed
	readsResent atomic.Int64 // reads that returned ErrConnClosed, read again
	mu          sync.Mutex
	failures    []string // the first few
	nfailed     int
}

func (p *phase) fail(format string, args ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.nfailed++
	if len(p.failures) < 5 {
		p.failures = append(p.failures, fmt.Sprintf(format, args...))
	}
}

func (p *phase) failed() (int, []string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.nfailed, append([]string(nil), p.failures...)
}

const (
	loadWorkers     = 4
	loadKeysPerWork = 32
)

// startLoad opens a client and starts the workers in phase "start".
func startLoad(ctx context.Context) (*load, error) {
	// Dialing waits while the daemon restarts: generous, for a loaded
	// machine and for the watchdog test, where it is stopped for seconds.
	c, err := libcyberdb.Open(ctx, socketPath, libcyberdb.WithDialTimeout(30*time.Second), libcyberdb.WithClientName("bootcheck"))
	if err != nil {
		return nil, err
	}
	if err := c.CreateDict(ctx, "load", nil); err != nil && !errors.Is(err, libcyberdb.ErrTableExists) {
		c.Close()
		return nil, err
	}
	l := &load{client: c, dict: libcyberdb.NewDict[string, int64](c, "load"), stop: make(chan struct{})}
	l.setPhase("start", false)
	for w := range loadWorkers {
		l.wg.Add(1)
		go l.worker(w)
	}
	return l, nil
}

// setPhase makes a new phase current and returns it.
func (l *load) setPhase(name string, crash bool) *phase {
	p := &phase{name: name, crash: crash}
	l.mu.Lock()
	l.phases = append(l.phases, p)
	l.mu.Unlock()
	l.cur.Store(p)
	return p
}

func (l *load) worker(w int) {
	defer l.wg.Done()
	acked := make(map[string]int64) // the last value acknowledged for each key
	seq := int64(0)
	for i := 0; ; i++ {
		select {
		case <-l.stop:
			l.verify(w, acked)
			return
		default:
		}
		key := fmt.Sprintf("w%d-k%02d", w, i%loadKeysPerWork)
		want, written := acked[key]
		got, err := l.call(func(ctx context.Context) (int64, error) { return l.dict.Get(ctx, key) }, false)
		switch {
		case err != nil && !written && errors.Is(err, libcyberdb.ErrNotFound):
		case err != nil:
			l.cur.Load().fail("get %s: %v", key, err)
			time.Sleep(10 * time.Millisecond)
			continue
		case !written || got != want:
			l.cur.Load().fail("get %s = %d, want %d (written: %v): an acknowledged write was lost", key, got, want, written)
		}
		seq++
		if _, err := l.call(func(ctx context.Context) (int64, error) { return 0, l.dict.Set(ctx, key, seq) }, true); err != nil {
			l.cur.Load().fail("set %s: %v", key, err)
			time.Sleep(10 * time.Millisecond)
			continue
		}
		acked[key] = seq
		// A steady trickle, not a benchmark: the machine is shared.
		time.Sleep(2 * time.Millisecond)
	}
}

// call runs one call and counts it in the current phase. In a crash
// phase, a write that got ErrConnClosed is written again.
func (l *load) call(f func(context.Context) (int64, error), write bool) (int64, error) {
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		v, err := f(ctx)
		cancel()
		p := l.cur.Load()
		if err == nil || errors.Is(err, libcyberdb.ErrNotFound) {
			p.ok.Add(1)
			return v, err
		}
		if p.crash && errors.Is(err, libcyberdb.ErrConnClosed) {
			if write {
				p.maybe.Add(1)
			} else {
				p.readsResent.Add(1)
			}
			continue
		}
		return v, err
	}
}

// verify reads every key the worker wrote once more.
func (l *load) verify(w int, acked map[string]int64) {
	for key, want := range acked {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		got, err := l.dict.Get(ctx, key)
		cancel()
		if err != nil || got != want {
			l.cur.Load().fail("final get %s = %d, %v; want %d", key, got, err, want)
			continue
		}
		l.cur.Load().ok.Add(1)
	}
}

// waitCalls waits until n calls have succeeded in phase p: the daemon
// serves again after whatever the phase did.
func (l *load) waitCalls(p *phase, n int64, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for p.ok.Load() < n {
		if time.Now().After(deadline) {
			return fmt.Errorf("only %d successful calls in %s", p.ok.Load(), limit)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return nil
}

// stopAndVerify stops the workers, which check every key they wrote.
func (l *load) stopAndVerify() {
	l.setPhase("final check", false)
	close(l.stop)
	l.wg.Wait()
	l.client.Close()
}

// report is one line per phase.
func (l *load) report() (string, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var b strings.Builder
	ok := true
	for _, p := range l.phases {
		n, first := p.failed()
		fmt.Fprintf(&b, "%-22s %6d calls ok, %d failed", p.name, p.ok.Load(), n)
		if p.crash {
			fmt.Fprintf(&b, "; after ErrConnClosed %d writes written again, %d reads read again", p.maybe.Load(), p.readsResent.Load())
		}
		b.WriteString("\n")
		for _, f := range first {
			fmt.Fprintf(&b, "    %s\n", f)
		}
		if n > 0 {
			ok = false
		}
	}
	return b.String(), ok
}
