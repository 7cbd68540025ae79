package daemon

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cyberdb/cyberdb/cyberdbd/internal/options"
	"github.com/cyberdb/cyberdb/internal/daemontest"
	"github.com/cyberdb/cyberdb/libcyberdb/wire"
)

// startInProcess runs a daemon in the test process on a socket in a
// temp dir, as a Go program embedding cyberdbd does: Options, New, Start.
func startInProcess(t *testing.T, cfg Config, set func(o *options.Options)) (*Daemon, *options.Options) {
	t.Helper()
	dir := daemontest.ShortTempDir(t)
	o := options.Default()
	o.Socket = filepath.Join(dir, "c.sock")
	o.DataDir = filepath.Join(dir, "data")
	if set != nil {
		set(o)
	}
	cfg.Options = o
	d, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := d.Start(ctx); err != nil {
		d.Shutdown(context.Background())
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Shutdown(context.Background()) })
	return d, o
}

// TestInProcess: a daemon assembled from Options serves the protocol,
// tells its Notifier, and Shutdown answers, snapshots and removes the
// socket; a second Shutdown does nothing.
func TestInProcess(t *testing.T) {
	n := &recorder{}
	var logs daemontest.Buffer
	d, o := startInProcess(t, Config{Notifier: n, Logger: slog.New(slog.NewTextHandler(&logs, nil))}, nil)
	c := daemontest.DialHello(t, o.Socket)
	c.MustCall(t, nil, wire.OpCreateDict, "t", map[string]any{"a": 1})
	var got int
	c.MustCall(t, &got, wire.OpDGet, "t", "a")
	if got != 1 {
		t.Fatalf("get: %d", got)
	}
	if s := d.Status(); !strings.Contains(s, "1 table, 1 entry") {
		t.Errorf("status %q", s)
	}
	if err := d.Check(5 * time.Second); err != nil {
		t.Errorf("health check: %v", err)
	}
	c.Close()
	if err := d.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := d.Shutdown(context.Background()); err != nil {
		t.Fatalf("second Shutdown: %v", err)
	}
	if _, err := os.Stat(o.Socket); !os.IsNotExist(err) {
		t.Errorf("the socket is still there: %v", err)
	}
	if got := n.String(); got != "progress ready stopping" {
		t.Errorf("notifications: %s", got)
	}
	for _, want := range []string{`msg="data loaded"`, `msg="cyberdbd ready"`, `msg="snapshot saved" tables=1`, `msg="cyberdbd stopped"`} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("no %s in the log:\n%s", want, logs.String())
		}
	}
}

// TestReloadApplies: a reload applies the log level, logs what it
// changed, and logs the settings that need a restart, typed: a setting
// spelled otherwise but equal is no change.
func TestReloadApplies(t *testing.T) {
	var logs daemontest.Buffer
	level := new(slog.LevelVar)
	next := make(chan *options.Options, 1)
	d, o := startInProcess(t, Config{
		Logger:   slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: level})),
		LogLevel: level,
		Reparse:  func() (*options.Options, error) { return <-next, nil },
	}, nil)
	n := *o
	n.LogLevel = slog.LevelDebug
	n.MaxConns = 7
	n.MaxFrame = 16 << 20 // as it was
	next <- &n
	d.Reload()
	waitLog(t, &logs, `msg="configuration reloaded"`)
	if level.Level() != slog.LevelDebug {
		t.Errorf("log level %v after the reload", level.Level())
	}
	for _, want := range []string{
		`msg="setting changed" setting=log-level from=info to=debug`,
		`needs a restart to take effect (systemctl restart cyberdbd refuses no client)" setting=max-conns running_with=10000 new=7`,
	} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("no %s in the log:\n%s", want, logs.String())
		}
	}
	if strings.Contains(logs.String(), "setting=max-frame") {
		t.Errorf("an unchanged setting logged as changed:\n%s", logs.String())
	}
	// No Reparse: the reload fails and says why.
	d.reparse = nil
	d.Reload()
	waitLog(t, &logs, "no way to read its configuration again")
}

func waitLog(t *testing.T, logs *daemontest.Buffer, want string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(logs.String(), want); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no %s in the log within 10s:\n%s", want, logs.String())
		}
	}
}

// TestNewRefusesBadOptions: Options built in Go are validated, and New
// closes the sockets it was given when it fails.
func TestNewRefusesBadOptions(t *testing.T) {
	o := options.Default()
	o.MaxConns = 0
	if _, err := New(Config{Options: o}); err == nil || !strings.Contains(err.Error(), "--max-conns") {
		t.Fatalf("New with --max-conns 0: %v", err)
	}
}

// recorder is a Notifier that records what it hears.
type recorder struct {
	mu    sync.Mutex
	heard []string
}

func (r *recorder) add(s string) { r.mu.Lock(); r.heard = append(r.heard, s); r.mu.Unlock() }
func (r *recorder) String() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return strings.Join(r.heard, " ")
}
func (r *recorder) Progress(string, time.Duration)                       { r.add("progress") }
func (r *recorder) Ready(func() string, func(limit time.Duration) error) { r.add("ready") }
func (r *recorder) Reloading()                                           { r.add("reloading") }
func (r *recorder) Reloaded(error)                                       { r.add("reloaded") }
func (r *recorder) Stopping()                                            { r.add("stopping") }
