package systemd

import (
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
)

// statusInterval is how often the STATUS= line is refreshed.
const statusInterval = 5 * time.Second

// Notifier tells systemd what the daemon is doing (sd_notify(3)): READY=1
// once it serves, a one-line STATUS=, RELOADING=1 around a reload,
// STOPPING=1 on shutdown, and WATCHDOG=1 pings when the unit sets
// WatchdogSec=. Outside systemd (no $NOTIFY_SOCKET) it does nothing.
//
// Each watchdog ping is earned: it is sent only when the health check
// given to Ready has just made a round trip through every event loop, the
// store's locks and the log's writer, each within a time limit. A daemon
// stuck in any of them stops pinging, says why in the log and in STATUS=,
// and systemd restarts it (with SIGABRT, which makes the Go runtime print
// every goroutine's stack to the journal).
//
// Progress, Ready and Stopping are called by one goroutine, the daemon's
// start and stop; Reloading and Reloaded by one other, its reloads.
type Notifier struct {
	log      *slog.Logger
	status   func() string                   // the STATUS= line; set by Ready, before loop starts
	check    func(limit time.Duration) error // the health check; nil: none; set by Ready
	watchdog time.Duration                   // WatchdogSec=, 0 when off

	mu     sync.Mutex // guards failed and last; held for no call
	failed bool       // a notification failed (logged once)
	last   string     // last STATUS= sent

	// Of the goroutine that calls Ready and Stopping.
	stop     chan struct{}
	loopDone chan struct{}
	// startDone ends the pings of start-up (starting), which has its own
	// limit (TimeoutStartSec=).
	startDone chan struct{}
	startWG   sync.WaitGroup
}

// NewNotifier returns a Notifier. Under a watchdog it starts pinging at
// once, so that loading the data does not trip it.
func NewNotifier(log *slog.Logger) *Notifier {
	n := &Notifier{log: log}
	if os.Getenv("NOTIFY_SOCKET") == "" {
		return n
	}
	wd, err := daemon.SdWatchdogEnabled(true)
	if err != nil {
		log.Warn("ignoring systemd's watchdog settings", "err", err)
	}
	n.watchdog = wd
	if wd > 0 {
		n.startDone = make(chan struct{})
		n.startWG.Add(1)
		go n.starting()
	}
	return n
}

// starting pings the watchdog until ready or stopping.
func (n *Notifier) starting() {
	defer n.startWG.Done()
	t := time.NewTicker(n.watchdog / 2)
	defer t.Stop()
	for {
		select {
		case <-n.startDone:
			return
		case <-t.C:
			n.send(daemon.SdNotifyWatchdog)
		}
	}
}

// started ends the start-up pings.
func (n *Notifier) started() {
	if n.startDone != nil {
		close(n.startDone)
		n.startWG.Wait()
		n.startDone = nil
	}
}

// enabled says whether systemd listens.
func (n *Notifier) enabled() bool { return os.Getenv("NOTIFY_SOCKET") != "" }

// send sends one notification. A failure is logged once: it does not stop
// the daemon (systemd will time out the start or the watchdog and say so).
func (n *Notifier) send(state string) {
	if !n.enabled() {
		return
	}
	if _, err := daemon.SdNotify(false, state); err != nil {
		n.mu.Lock()
		first := !n.failed
		n.failed = true
		n.mu.Unlock()
		if first {
			n.log.Warn("cannot notify systemd", "notify_socket", os.Getenv("NOTIFY_SOCKET"), "err", err)
		}
	}
}

// statusLine returns "STATUS=..." with a fresh summary, and remembers it.
func (n *Notifier) statusLine() string {
	s := oneLine(n.status())
	n.mu.Lock()
	n.last = s
	n.mu.Unlock()
	return "STATUS=" + s
}

// Progress reports start-up work that may take a while (loading data) in
// STATUS=, and extends systemd's start time-out (TimeoutStartSec=) to at
// least extend from now when extend > 0 (EXTEND_TIMEOUT_USEC=).
func (n *Notifier) Progress(status string, extend time.Duration) {
	msg := "STATUS=" + oneLine(status)
	if extend > 0 {
		msg = join(msg, fmt.Sprintf("EXTEND_TIMEOUT_USEC=%d", extend.Microseconds()))
	}
	n.send(msg)
}

// Ready says the daemon serves (READY=1) and starts the status and
// watchdog loop; status returns the one-line summary, and check is the
// health check each watchdog ping depends on. Called once, when the data
// is loaded and requests are answered.
func (n *Notifier) Ready(status func() string, check func(limit time.Duration) error) {
	n.status = status
	n.check = check
	n.started()
	if !n.enabled() {
		return
	}
	n.send(daemon.SdNotifyReady + "\n" + n.statusLine())
	n.stop = make(chan struct{})
	n.loopDone = make(chan struct{})
	go n.loop()
}

// loop refreshes STATUS= and pings the watchdog until stopping.
func (n *Notifier) loop() {
	defer close(n.loopDone)
	every := statusInterval
	if n.watchdog > 0 {
		// Half the timeout, as sd_watchdog_enabled(3) recommends.
		every = min(every, n.watchdog/2)
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-n.stop:
			return
		case <-t.C:
		}
		var unhealthy error
		if n.check != nil {
			unhealthy = n.check(n.checkLimit())
		}
		status := oneLine(n.status())
		if unhealthy != nil {
			n.log.Error("health check failed: the watchdog is not pinged (systemd restarts the daemon after WatchdogSec=)", "err", unhealthy)
			status = oneLine("health check failed: " + unhealthy.Error())
		}
		n.mu.Lock()
		changed := status != n.last
		n.last = status
		n.mu.Unlock()
		msg := ""
		if changed {
			msg = "STATUS=" + status
		}
		if n.watchdog > 0 && unhealthy == nil {
			msg = join(daemon.SdNotifyWatchdog, msg)
		}
		if msg != "" {
			n.send(msg)
		}
	}
}

// checkLimit is how long each part of the health check may take: half the
// watchdog's time-out, so that a part stuck past it misses two pings in a
// row, and systemd acts, while a slow moment (a long sort holding a
// table's lock, a slow fsync) does not.
func (n *Notifier) checkLimit() time.Duration {
	if n.watchdog > 0 {
		return n.watchdog / 2
	}
	return 10 * time.Second
}

// Reloading says a reload started: RELOADING=1 with the monotonic time,
// as systemd.service(5) asks of Type=notify-reload services.
func (n *Notifier) Reloading() {
	// SdNotifyMonotonicUsec is "MONOTONIC_USEC=N\n" (CLOCK_MONOTONIC, the
	// clock systemd compares it with), or "" where there is none.
	usec := strings.TrimSuffix(daemon.SdNotifyMonotonicUsec(), "\n")
	n.send(join(daemon.SdNotifyReloading, usec, "STATUS=reloading configuration"))
}

// Reloaded says the reload is over, successful or not (the daemon serves
// either way); a failure shows in STATUS= until the next refresh.
func (n *Notifier) Reloaded(err error) {
	status := n.statusLine()
	if err != nil {
		status = "STATUS=" + oneLine(fmt.Sprintf("reload failed (still serving with the previous settings): %v", err))
	}
	n.send(join(daemon.SdNotifyReady, status))
}

// Stopping says the daemon is shutting down and stops the loop.
func (n *Notifier) Stopping() {
	n.started()
	if n.stop != nil {
		close(n.stop)
		<-n.loopDone
		n.stop = nil
	}
	n.send(join(daemon.SdNotifyStopping, "STATUS=stopping: finishing requests in flight"))
}

// oneLine keeps a STATUS= value on one line: a newline would end it.
func oneLine(s string) string { return strings.ReplaceAll(s, "\n", " ") }

// join joins notification assignments, one per line, skipping empty ones.
func join(parts ...string) string {
	out := ""
	for _, p := range parts {
		if p == "" {
			continue
		}
		if out != "" {
			out += "\n"
		}
		out += p
	}
	return out
}
