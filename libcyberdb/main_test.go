package libcyberdb

import (
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/cyberdb/cyberdb/internal/daemontest"
)

// TestMain starts one daemon for the runnable examples (an Example cannot
// start one itself) and points $CYBERDB_ADDR at it. Tests start their own
// daemons. When the binary is re-executed as a helper process (see
// multiproc_test.go), it runs the helper instead.
func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) != "" {
		os.Exit(helperMain())
	}
	d, stop, err := daemontest.StartMain()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Setenv(AddrEnv, d.Socket)
	code := m.Run()
	if err := stop(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		code = 1
	}
	daemontest.Cleanup()
	os.Exit(code)
}

// start runs a fresh daemon and opens a Client on it, closed at cleanup.
func start(t testing.TB, opts ...Option) (*daemontest.Daemon, *Client) {
	t.Helper()
	d := daemontest.Start(t)
	return d, open(t, d.Socket, opts...)
}

func open(t testing.TB, addr string, opts ...Option) *Client {
	t.Helper()
	return daemontest.Open(t, Open, addr, opts...)
}

var must = daemontest.Must

// noLeaks fails the test if goroutines started during it are still
// running when it ends: it records the goroutines at the start and, at
// cleanup (registered first, so it runs last), waits briefly for the
// count to come back, then reports the extra stacks.
func noLeaks(t *testing.T) {
	t.Helper()
	before := goroutines()
	t.Cleanup(func() {
		var extra []string
		for i := 0; i < 200; i++ {
			extra = extra[:0]
			for id, st := range goroutines() {
				if _, ok := before[id]; !ok && !strings.Contains(st, "testing.") {
					extra = append(extra, st)
				}
			}
			if len(extra) == 0 {
				return
			}
			// Goroutines that have returned may not have exited yet.
			time.Sleep(5 * time.Millisecond)
		}
		t.Errorf("%d goroutine(s) leaked:\n%s", len(extra), strings.Join(extra, "\n\n"))
	})
}

// goroutines maps goroutine ids to stacks.
func goroutines() map[string]string {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	out := map[string]string{}
	for _, g := range strings.Split(string(buf), "\n\n") {
		head, _, _ := strings.Cut(g, "[")
		out[strings.TrimSpace(head)] = g
	}
	return out
}
