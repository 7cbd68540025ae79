package daemontest

import (
	"fmt"
	"sync"
	"testing"
)

// StartMain is Start for a TestMain, which has no testing.TB: it starts
// cyberdbd with the given flags and returns the daemon and a stop function
// that shuts it down (SIGTERM, as at the end of a test) and removes its
// temporary directory. Runnable examples use it, since an Example function
// cannot start a daemon itself.
//
//	func TestMain(m *testing.M) {
//		d, stop, err := daemontest.StartMain()
//		if err != nil { fmt.Fprintln(os.Stderr, err); os.Exit(1) }
//		os.Setenv("CYBERDB_ADDR", d.Socket)
//		code := m.Run()
//		stop()
//		os.Exit(code)
//	}
func StartMain(args ...string) (d *Daemon, stop func() error, err error) {
	tb := &mainTB{}
	defer func() {
		if r := recover(); r != nil {
			f, ok := r.(mainFatal)
			if !ok {
				panic(r)
			}
			tb.runCleanups()
			d, stop, err = nil, nil, fmt.Errorf("daemontest: %s", string(f))
		}
	}()
	d = Start(tb, args...)
	return d, func() error {
		tb.runCleanups()
		if msg := tb.errors(); msg != "" {
			return fmt.Errorf("daemontest: %s", msg)
		}
		return nil
	}, nil
}

// mainFatal is the panic value of mainTB's Fatal, recovered by StartMain.
type mainFatal string

// mainTB is the part of testing.TB that Start and Stop use. The embedded
// interface is nil: a method not overridden here panics, which would be a
// bug in this package.
type mainTB struct {
	testing.TB
	mu       sync.Mutex // guards cleanups and errs
	cleanups []func()
	errs     string
}

func (*mainTB) Helper()                           {}
func (*mainTB) Fatal(args ...any)                 { panic(mainFatal(fmt.Sprint(args...))) }
func (*mainTB) Fatalf(format string, args ...any) { panic(mainFatal(fmt.Sprintf(format, args...))) }
func (*mainTB) Logf(string, ...any)               {}
func (*mainTB) Log(...any)                        {}

func (t *mainTB) Errorf(format string, args ...any) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.errs += fmt.Sprintf(format, args...) + "\n"
}

func (t *mainTB) Error(args ...any) { t.Errorf("%s", fmt.Sprint(args...)) }

func (t *mainTB) Cleanup(f func()) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.cleanups = append(t.cleanups, f)
}

// runCleanups runs the cleanups last-registered first, as testing does.
func (t *mainTB) runCleanups() {
	t.mu.Lock()
	fs := t.cleanups
	t.cleanups = nil
	t.mu.Unlock()
	for i := len(fs) - 1; i >= 0; i-- {
		fs[i]()
	}
}

func (t *mainTB) errors() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.errs
}
