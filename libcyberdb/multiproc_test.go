package libcyberdb

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"testing"
	"time"
)

// helperEnv, when set, makes the test binary run helperMain instead of
// the tests: the multi-process test re-executes itself this way, so that
// each worker is a real OS process with its own Client.
const helperEnv = "LIBCYBERDB_TEST_HELPER"

// helperMain is one worker process: G goroutines sharing one Client, each
// incrementing shared counters N times.
func helperMain() int {
	g, _ := strconv.Atoi(os.Getenv("HELPER_GOROUTINES"))
	n, _ := strconv.Atoi(os.Getenv("HELPER_INCRS"))
	worker := os.Getenv("HELPER_WORKER")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := Open(ctx, "") // $CYBERDB_ADDR
	if err != nil {
		fmt.Fprintln(os.Stderr, "helper:", err)
		return 1
	}
	defer c.Close()
	counters := NewDict[string, int](c, "counters")
	log := NewList[string](c, "log")
	var wg sync.WaitGroup
	errs := make(chan error, g)
	for i := 0; i < g; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < n; j++ {
				if _, err := counters.Incr(ctx, "total", 1); err != nil {
					errs <- err
					return
				}
				if _, err := counters.Incr(ctx, "worker-"+worker, 1); err != nil {
					errs <- err
					return
				}
				if j%10 == 0 {
					if _, err := log.Append(ctx, worker); err != nil {
						errs <- err
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		fmt.Fprintln(os.Stderr, "helper:", err)
		return 1
	}
	if s := c.Stats(); s.Open > DefaultPoolSize {
		fmt.Fprintf(os.Stderr, "helper: %d connections open, pool size %d\n", s.Open, DefaultPoolSize)
		return 1
	}
	return 0
}

func TestMultiProcess(t *testing.T) {
	if testing.Short() {
		t.Skip("starts several processes")
	}
	d, c := start(t)
	ctx := context.Background()
	must(t, c.CreateDict(ctx, "counters", nil))
	must(t, c.CreateList(ctx, "log", nil))
	const procs, goroutines, incrs = 4, 25, 40
	var wg sync.WaitGroup
	outs := make([][]byte, procs)
	errs := make([]error, procs)
	for p := 0; p < procs; p++ {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(),
			helperEnv+"=1",
			"GORACE=atexit_sleep_ms=0",
			AddrEnv+"="+d.Socket,
			"HELPER_GOROUTINES="+strconv.Itoa(goroutines),
			"HELPER_INCRS="+strconv.Itoa(incrs),
			"HELPER_WORKER="+strconv.Itoa(p),
		)
		wg.Add(1)
		go func() {
			defer wg.Done()
			outs[p], errs[p] = cmd.CombinedOutput()
		}()
	}
	wg.Wait()
	for p := range errs {
		if errs[p] != nil {
			t.Fatalf("worker %d: %v\n%s", p, errs[p], outs[p])
		}
	}
	counters := NewDict[string, int](c, "counters")
	if v, err := counters.Get(ctx, "total"); err != nil || v != procs*goroutines*incrs {
		t.Fatalf("total = %d, %v; want %d", v, err, procs*goroutines*incrs)
	}
	for p := 0; p < procs; p++ {
		if v, err := counters.Get(ctx, "worker-"+strconv.Itoa(p)); err != nil || v != goroutines*incrs {
			t.Fatalf("worker-%d = %d, %v; want %d", p, v, err, goroutines*incrs)
		}
	}
	log := NewList[string](c, "log")
	if n, err := log.Len(ctx); err != nil || n != procs*goroutines*(incrs/10) {
		t.Fatalf("log has %d entries, %v; want %d", n, err, procs*goroutines*(incrs/10))
	}
	for p := 0; p < procs; p++ {
		if n, err := log.Count(ctx, strconv.Itoa(p)); err != nil || n != goroutines*(incrs/10) {
			t.Fatalf("log has %d entries of worker %d, %v", n, p, err)
		}
	}
}
