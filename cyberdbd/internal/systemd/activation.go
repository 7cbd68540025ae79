package systemd

import (
	"fmt"
	"maps"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/coreos/go-systemd/v22/activation"
)

// The FileDescriptorName= of the sockets cyberdbd takes from systemd.
const (
	FDNameUnix = "unix" // cyberdbd.socket: served like --socket
	FDNameTCP  = "tcp"  // cyberdbd-tcp.socket: for the TCP listener
	// cyberdbd-metrics.socket: the Prometheus endpoint (plain HTTP).
	FDNameMetrics = "metrics"
)

// Sockets are the listening sockets systemd passed.
type Sockets struct {
	// Unix are systemd's sockets named "unix" (or unnamed Unix sockets,
	// as systemd-socket-activate passes without --fdname).
	Unix []net.Listener
	// TCP are systemd's sockets named "tcp" (or unnamed TCP sockets).
	TCP []net.Listener
	// Metrics are systemd's sockets named "metrics": the Prometheus
	// endpoint (--metrics), so that the service needs no network.
	Metrics []net.Listener
	// Activated says systemd passed sockets ($LISTEN_FDS). They belong
	// to systemd, which keeps them open while cyberdbd restarts, so their
	// files are never unlinked.
	Activated bool
}

// Listeners returns the sockets systemd passed, sorted by
// FileDescriptorName=; none when it passed none. Call it once: it
// consumes $LISTEN_FDS. A socket of another name, or one that does not
// listen, is an error that says how to fix the unit (go-systemd drops
// them silently).
func Listeners() (*Sockets, error) {
	ls := &Sockets{}
	passed := 0
	if os.Getenv("LISTEN_PID") == strconv.Itoa(os.Getpid()) {
		passed, _ = strconv.Atoi(os.Getenv("LISTEN_FDS"))
	}
	// Also unsets $LISTEN_PID, $LISTEN_FDS and $LISTEN_FDNAMES.
	byName, err := activation.ListenersWithNames()
	if err != nil {
		return nil, fmt.Errorf("socket activation: %w", err)
	}
	if passed <= 0 {
		return ls, nil
	}
	ls.Activated = true
	got := 0
	for _, name := range slices.Sorted(maps.Keys(byName)) {
		for _, l := range byName[name] {
			got++
			network := l.Addr().Network()
			switch {
			case name == FDNameUnix && network == "unix":
				ls.Unix = append(ls.Unix, l)
			case name == FDNameTCP && network == "tcp":
				ls.TCP = append(ls.TCP, l)
			case name == FDNameMetrics:
				ls.Metrics = append(ls.Metrics, l)
			case strings.HasPrefix(name, "LISTEN_FD_") && network == "unix":
				ls.Unix = append(ls.Unix, l)
			case strings.HasPrefix(name, "LISTEN_FD_") && network == "tcp":
				ls.TCP = append(ls.TCP, l)
			default:
				l.Close()
				ls.Close()
				return nil, fmt.Errorf("socket activation: systemd passed a %s socket named %q (%s); cyberdbd takes FileDescriptorName=%s "+
					"for its Unix socket, FileDescriptorName=%s for TCP and FileDescriptorName=%s for metrics: fix the .socket unit", network, name, l.Addr(), FDNameUnix, FDNameTCP, FDNameMetrics)
			}
		}
	}
	if got < passed {
		ls.Close()
		return nil, fmt.Errorf("socket activation: systemd passed %d sockets but only %d are listening stream sockets; "+
			"cyberdbd's .socket units need ListenStream= (and no Accept=yes)", passed, got)
	}
	for _, l := range ls.Unix {
		if ul, ok := l.(*net.UnixListener); ok {
			// The socket file is systemd's: it must outlive this process so
			// that clients connecting during a restart wait in its backlog.
			ul.SetUnlinkOnClose(false)
		}
	}
	return ls, nil
}

// Close closes every socket (for errors before they are served).
func (ls *Sockets) Close() {
	for _, l := range slices.Concat(ls.Unix, ls.TCP, ls.Metrics) {
		l.Close()
	}
}
