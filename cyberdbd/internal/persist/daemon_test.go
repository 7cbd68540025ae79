package persist_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cyberdb/cyberdb/internal/daemontest"
	"github.com/cyberdb/cyberdb/libcyberdb"
)

// TestMain removes the binaries the tests built when they end.
func TestMain(m *testing.M) { daemontest.Main(m) }

// These tests run the real daemon (daemontest builds it) with its data in
// its temp dir, and crash it with SIGKILL.

func open(t testing.TB, d *daemontest.Daemon) *libcyberdb.Client {
	t.Helper()
	return daemontest.Open(t, libcyberdb.Open, d.Socket)
}

var must = daemontest.Must

// state reads every table as JSON-ish text.
func state(t testing.TB, c *libcyberdb.Client) string {
	t.Helper()
	ctx := context.Background()
	tables, err := c.Tables(ctx)
	must(t, err)
	var b strings.Builder
	for _, ti := range tables {
		if ti.Kind == "dict" {
			items, err := libcyberdb.NewDict[any, any](c, ti.Name).Items(ctx)
			must(t, err)
			fmt.Fprintf(&b, "%s=%v\n", ti.Name, items)
		} else {
			vs, err := libcyberdb.NewList[any](c, ti.Name).Values(ctx)
			must(t, err)
			fmt.Fprintf(&b, "%s=%v\n", ti.Name, vs)
		}
	}
	return b.String()
}

// TestRestartRoundTrip writes with every kind of op through the client,
// then checks the state after a clean restart and after SIGKILL.
func TestRestartRoundTrip(t *testing.T) {
	for _, fsync := range []string{"always", "everysec", "no"} {
		t.Run(fsync, func(t *testing.T) {
			d := daemontest.Start(t, "--fsync="+fsync)
			c := open(t, d)
			ctx := context.Background()
			must(t, c.CreateDict(ctx, "d", map[string]any{"a": 1, "b": "x"}))
			must(t, c.CreateList(ctx, "l", []any{3, 1, 2}))
			dd := libcyberdb.NewDict[string, any](c, "d")
			ll := libcyberdb.NewList[any](c, "l")
			must(t, dd.Set(ctx, "c", []any{1.5, nil}))
			_, err := libcyberdb.NewDict[string, int](c, "d").Incr(ctx, "n", 7)
			must(t, err)
			must(t, dd.Delete(ctx, "a"))
			_, err = ll.Append(ctx, 9, 0)
			must(t, err)
			must(t, ll.Sort(ctx))
			must(t, ll.Insert(ctx, 0, "first"))
			b := c.Batch()
			dd.In(b).Set("batch", true)
			ll.In(b).Append("batch")
			b.CreateDict("nb", nil)
			must(t, b.Exec(ctx))
			must(t, c.CreateDict(ctx, "gone", nil))
			must(t, c.Drop(ctx, "gone"))
			want := state(t, c)
			c.Close()

			d.Stop(t)
			d.Restart(t)
			c = open(t, d)
			if got := state(t, c); got != want {
				t.Fatalf("after a clean restart:\n%s\nwant\n%s", got, want)
			}
			ll = libcyberdb.NewList[any](c, "l")
			_, err = ll.Append(ctx, "after")
			must(t, err)
			want = state(t, c)
			c.Close()
			d.Kill(t)
			d.Restart(t)
			c = open(t, d)
			defer c.Close()
			if got := state(t, c); got != want {
				t.Fatalf("after SIGKILL:\n%s\nwant\n%s", got, want)
			}
		})
	}
}

// TestSaveCLI checks that "cyberdb save" works end to end and that the
// snapshot is where the README says.
func TestSaveCLI(t *testing.T) {
	d := daemontest.Start(t, "--appendonly=false")
	cli := daemontest.BuildTool(t, "./libcyberdb/cmd/cyberdb")
	run := func(args ...string) string {
		out, err := exec.Command(cli, append([]string{"-s", d.Socket}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("cyberdb %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	run("create", "dict", "centre")
	run("set", "centre", "content", "Hello CyberDB!")
	run("save")
	snap := filepath.Join(d.Dir, "cyberdb-data", "snapshot.cdb")
	if _, err := os.Stat(snap); err != nil {
		t.Fatal(err)
	}
	// Snapshots only: what was saved survives SIGKILL.
	d.Kill(t)
	d.Restart(t)
	if got := run("get", "centre", "content"); !strings.Contains(got, "Hello CyberDB!") {
		t.Fatalf("after restart: %s", got)
	}
	info := run("info")
	for _, k := range []string{`"last_snapshot_time"`, `"aof_enabled":false`, `"last_fsync_error":""`, `"data_dir"`} {
		if !strings.Contains(info, k) {
			t.Errorf("info lacks %s: %s", k, info)
		}
	}
}

func TestSecondDaemonRefused(t *testing.T) {
	d := daemontest.Start(t)
	dataDir := filepath.Join(d.Dir, "cyberdb-data")
	out, err := exec.Command(daemontest.Binary(t), "--socket="+filepath.Join(d.Dir, "other.sock"), "--data-dir="+dataDir).CombinedOutput()
	want := fmt.Sprintf("data dir %s is locked by pid %d: another cyberdbd is running", dataDir, d.Cmd.Process.Pid)
	if err == nil || !strings.Contains(string(out), want) {
		t.Fatalf("second daemon: %v\n%s\nwant %q", err, out, want)
	}
}

// TestDamagedStartRefused: a damaged log stops the daemon with a message
// naming the file, the offset and --recover; --recover starts it.
func TestDamagedStartRefused(t *testing.T) {
	d := daemontest.Start(t, "--fsync=always")
	c := open(t, d)
	ctx := context.Background()
	must(t, c.CreateList(ctx, "l", nil))
	l := libcyberdb.NewList[int](c, "l")
	for i := range 20 {
		_, err := l.Append(ctx, i)
		must(t, err)
	}
	c.Close()
	d.Kill(t)
	dataDir := filepath.Join(d.Dir, "cyberdb-data")
	seg := filepath.Join(dataDir, "appendonly-0000000001.log")
	b, err := os.ReadFile(seg)
	must(t, err)
	b[len(b)/2] ^= 0xff
	must(t, os.WriteFile(seg, b, 0o600))
	cmd := exec.Command(daemontest.Binary(t), "--socket="+filepath.Join(d.Dir, "x.sock"), "--data-dir="+dataDir)
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || !strings.Contains(string(out), seg) || !strings.Contains(string(out), "byte offset") || !strings.Contains(string(out), "--recover") {
		t.Fatalf("damaged log: %v\n%s", err, out)
	}
	d.Args = append(d.Args, "--recover")
	d.Restart(t)
	if !strings.Contains(d.Output(), "bytes_dropped") {
		t.Fatalf("--recover does not report what it dropped:\n%s", d.Output())
	}
	c = open(t, d)
	defer c.Close()
	n, err := libcyberdb.NewList[int](c, "l").Values(ctx)
	must(t, err)
	for i, v := range n {
		if v != i {
			t.Fatalf("recovered list %v is not a prefix of 0..19", n)
		}
	}
}

// TestFailpointCrash kills the daemon (SIGKILL, from inside: a binary
// built with the failpoints tag) at each failpoint of a save, of the log's
// fsync and of the MANIFEST's, and checks that the restart has every
// acknowledged write.
func TestFailpointCrash(t *testing.T) {
	for _, fp := range []string{"log-fsync:30", "log-create:2", "manifest-fsync:3", "snapshot-fsync", "snapshot-rename", "snapshot-dirsync", "log-remove"} {
		t.Run(fp, func(t *testing.T) {
			t.Setenv("CYBERDB_FAILPOINT", fp)
			d := daemontest.StartBinary(t, daemontest.FailpointBinary(t), "--fsync=always", "--snapshot-interval=0")
			os.Unsetenv("CYBERDB_FAILPOINT") // the restart runs without it
			c := open(t, d)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			must(t, c.CreateList(ctx, "l", nil))
			l := libcyberdb.NewList[int](c, "l")
			acked := 0
			for i := 1; i <= 40; i++ {
				if _, err := l.Append(ctx, i); err != nil {
					break
				}
				acked = i
			}
			if acked == 40 {
				// The crash comes in here. Two snapshots: the first keeps
				// the log for the empty state (the fallback of a damaged
				// snapshot), the second removes it (log-remove).
				for range 2 {
					sctx, scancel := context.WithTimeout(ctx, time.Second)
					_ = c.Save(sctx)
					scancel()
				}
			}
			c.Close()
			exited, err := d.Wait(10 * time.Second)
			var ee *exec.ExitError
			if !exited || !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
				t.Fatalf("the daemon did not die at %s: exited=%v err=%v\n%s", fp, exited, err, d.Output())
			}
			d.Restart(t)
			c = open(t, d)
			defer c.Close()
			vs, err := libcyberdb.NewList[int](c, "l").Values(context.Background())
			must(t, err)
			if len(vs) < acked {
				t.Fatalf("after a crash at %s: %d elements, %d were acknowledged", fp, len(vs), acked)
			}
			for i, v := range vs {
				if v != i+1 {
					t.Fatalf("after a crash at %s: %v", fp, vs)
				}
			}
			// And the data dir is healthy: a save and a clean restart work.
			must(t, c.Save(context.Background()))
		})
	}
}

// TestFailpointsOnlyInTestBuilds: CYBERDB_FAILPOINT kills a binary built
// with the failpoints tag, and a release build ignores it, so that an
// environment variable cannot kill a production daemon.
func TestFailpointsOnlyInTestBuilds(t *testing.T) {
	for _, tc := range []struct {
		name string
		bin  string
		dies bool
	}{
		{"failpoints", daemontest.FailpointBinary(t), true},
		{"release", daemontest.Binary(t), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("CYBERDB_FAILPOINT", "log-fsync") // the first fsync of the log
			d := daemontest.StartBinary(t, tc.bin, "--fsync=always")
			c := open(t, d)
			defer c.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			err := c.CreateList(ctx, "l", nil)
			wait := 5 * time.Second // for the death
			if err == nil {
				wait = 0 // it would have died before replying
			}
			if exited, _ := d.Wait(wait); exited != tc.dies || (err == nil) == tc.dies {
				t.Fatalf("CYBERDB_FAILPOINT=log-fsync: daemon exited %v, create: %v; want it to die: %v\n%s", exited, err, tc.dies, d.Output())
			}
		})
	}
}

// TestCrashTorture: many clients append increasing numbers to their own
// lists while the daemon is killed with SIGKILL at random moments (and
// snapshots run meanwhile). After each restart, each list must be exactly
// 1..k (nothing invented, nothing out of order) with k at least the last
// acknowledged append, under every --fsync policy: a reply is sent only
// once its write is handed to the OS, which keeps it when only the
// process dies (the README's promise). More rounds with
// CYBERDB_TORTURE_ROUNDS (3 by default, 1 with -short).
func TestCrashTorture(t *testing.T) {
	rounds := 3
	if s := os.Getenv("CYBERDB_TORTURE_ROUNDS"); s != "" {
		n, err := strconv.Atoi(s)
		must(t, err)
		rounds = n
	}
	if testing.Short() {
		rounds = 1
	}
	const workers = 16
	for _, fsync := range []string{"always", "everysec", "no"} {
		t.Run(fsync, func(t *testing.T) {
			d := daemontest.Start(t, "--fsync="+fsync, "--snapshot-interval=1s")
			have := make([]int, workers) // elements known present
			for round := 0; round < rounds; round++ {
				c := open(t, d)
				ctx, cancel := context.WithCancel(context.Background())
				for w := range workers {
					if err := c.CreateList(ctx, "w"+strconv.Itoa(w), nil); err != nil && !errors.Is(err, libcyberdb.ErrTableExists) {
						t.Fatal(err)
					}
				}
				acks := make([][]int, workers) // acknowledged appends
				sent := make([]int, workers)
				appends := daemontest.Hammer(workers, func(w, i int) bool {
					v := have[w] + 1 + i
					sent[w] = v
					if _, err := libcyberdb.NewList[int](c, "w"+strconv.Itoa(w)).Append(ctx, v); err != nil {
						return false
					}
					acks[w] = append(acks[w], v)
					return true
				})
				saves := daemontest.Hammer(1, func(_, _ int) bool { // snapshots during the writes, too
					time.Sleep(100 * time.Millisecond)
					return c.Save(ctx) == nil
				})
				time.Sleep(time.Duration(200+rand.IntN(600)) * time.Millisecond)
				d.Kill(t)
				cancel()
				appends()
				saves()
				c.Close()
				d.Restart(t)
				c = open(t, d)
				total := 0
				for w := range workers {
					vs, err := libcyberdb.NewList[int](c, "w"+strconv.Itoa(w)).Values(context.Background())
					must(t, err)
					for i, v := range vs {
						if v != i+1 {
							t.Fatalf("round %d, worker %d: list is not 1..k: ...%v", round, w, vs[max(0, i-3):min(len(vs), i+3)])
						}
					}
					if len(vs) > max(sent[w], have[w]) {
						t.Fatalf("round %d, worker %d: %d elements but only %d were sent", round, w, len(vs), sent[w])
					}
					need := have[w]
					if n := len(acks[w]); n > 0 {
						need = max(need, acks[w][n-1])
					}
					if len(vs) < need {
						t.Errorf("round %d, worker %d (--fsync %s): %d elements, but %d were acknowledged: %d acknowledged appends lost",
							round, w, fsync, len(vs), need, need-len(vs))
					}
					total += len(acks[w])
					have[w] = len(vs)
				}
				c.Close()
				if t.Failed() {
					t.FailNow()
				}
				t.Logf("round %d: %d appends acknowledged before the kill, none lost", round, total)
			}
		})
	}
}
