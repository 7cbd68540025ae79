package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cyberdb/cyberdb/internal/daemontest"
	"github.com/cyberdb/cyberdb/libcyberdb"
)

// TestMain removes the binaries the tests built when they end.
func TestMain(m *testing.M) { daemontest.Main(m) }

// TestWorkersKilledMidJob runs the example for real: a producer, four
// worker processes on a real cyberdbd, and workers SIGKILLed while they
// hold a job (their in-progress list is not empty), each replaced by a
// new one. At the end every job was done at least once, none is left
// anywhere, and a job done twice was done by a killed worker every time
// but at most once.
func TestWorkersKilledMidJob(t *testing.T) {
	if testing.Short() {
		t.Skip("starts several processes")
	}
	d := daemontest.Start(t)
	bin := daemontest.BuildTool(t, "./libcyberdb/examples/queue")
	const jobs, workers, kills = 300, 4, 6
	const lease = "600ms"
	run := func(args ...string) {
		t.Helper()
		if out, err := exec.Command(bin, append([]string{"-socket", d.Socket}, args...)...).CombinedOutput(); err != nil {
			t.Fatalf("queue %v: %v\n%s", args, err, out)
		}
	}
	run("-n", fmt.Sprint(jobs), "produce")

	type proc struct {
		cmd *exec.Cmd
		id  string
	}
	var live []*proc
	killed := map[string]bool{}
	startWorker := func(i int) *proc {
		id := fmt.Sprintf("worker-%d", i)
		cmd := exec.Command(bin, "-socket", d.Socket, "-lease", lease, "-work", "15ms", "-id", id, "work")
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		p := &proc{cmd, id}
		t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
		return p
	}
	next := 0
	for ; next < workers; next++ {
		live = append(live, startWorker(next))
	}

	ctx := context.Background()
	c, err := libcyberdb.Open(ctx, d.Socket)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	done := libcyberdb.NewList[string](c, "jobs.done")
	for k := range kills {
		victim := live[k%len(live)]
		inprog := libcyberdb.NewList[string](c, "jobs.inprogress."+victim.id)
		deadline := time.Now().Add(30 * time.Second)
		for {
			if n, err := inprog.Len(ctx); err == nil && n > 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("worker %s never held a job", victim.id)
			}
			time.Sleep(time.Millisecond)
		}
		_ = victim.cmd.Process.Signal(syscall.SIGKILL)
		_ = victim.cmd.Wait()
		killed[victim.id] = true
		live[k%len(live)] = startWorker(next)
		next++
		time.Sleep(50 * time.Millisecond)
	}

	// Wait until every job is done and nothing waits or is in progress.
	deadline := time.Now().Add(2 * time.Minute)
	for {
		got := map[string]bool{}
		vals, err := done.Values(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range vals {
			got[strings.Fields(v)[0]] = true
		}
		if len(got) == jobs {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("only %d of %d jobs done after 2 minutes", len(got), jobs)
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, p := range live {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		if err := p.cmd.Wait(); err != nil {
			t.Errorf("worker %s after SIGTERM: %v", p.id, err)
		}
	}
	// Recover what the last killed workers held, if they held anything.
	time.Sleep(700 * time.Millisecond) // their leases run out
	run("recover")

	vals, err := done.Values(ctx)
	if err != nil {
		t.Fatal(err)
	}
	by := map[string][]string{}
	for _, v := range vals {
		f := strings.Fields(v)
		by[f[0]] = append(by[f[0]], f[1])
	}
	twice := 0
	for i := 1; i <= jobs; i++ {
		job := fmt.Sprintf("job-%06d", i)
		ws := by[job]
		if len(ws) == 0 {
			t.Errorf("%s was never done: lost", job)
			continue
		}
		alive := 0
		for _, w := range ws {
			if !killed[w] {
				alive++
			}
		}
		if len(ws) > 1 {
			twice++
			if alive > 1 {
				t.Errorf("%s done %d times, by %v: more than once by workers that were not killed", job, len(ws), ws)
			}
		}
	}
	if len(by) != jobs {
		t.Errorf("%d distinct jobs done, want %d", len(by), jobs)
	}
	if n, err := libcyberdb.NewList[string](c, "jobs").Len(ctx); err != nil || n != 0 {
		t.Errorf("%d jobs still waiting (%v)", n, err)
	}
	tables, err := c.Tables(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, tb := range tables {
		if strings.HasPrefix(tb.Name, "jobs.inprogress.") && tb.Len > 0 {
			t.Errorf("%s still holds %d jobs", tb.Name, tb.Len)
		}
	}
	t.Logf("%d jobs, %d workers killed mid-job, %d jobs done twice (by a killed worker first)", jobs, kills, twice)
}
