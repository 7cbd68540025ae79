package daemontest

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestHammer: every goroutine works until stop, with its own g and
// increasing i; one whose work returns false ends alone; stop waits and
// may be called twice.
func TestHammer(t *testing.T) {
	var calls [4]atomic.Int64
	var quitter atomic.Int64
	stop := Hammer(4, func(g, i int) bool {
		if int64(i) != calls[g].Load() {
			t.Errorf("goroutine %d: call %d got i=%d", g, calls[g].Load(), i)
		}
		calls[g].Add(1)
		if g == 3 && i == 9 {
			quitter.Store(1)
			return false
		}
		time.Sleep(time.Millisecond)
		return true
	})
	for deadline := time.Now().Add(10 * time.Second); calls[0].Load() < 20; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the hammer does not run")
		}
	}
	stop()
	n := calls[0].Load()
	time.Sleep(20 * time.Millisecond)
	if calls[0].Load() != n {
		t.Error("work called after stop returned")
	}
	if calls[3].Load() != 10 || quitter.Load() != 1 {
		t.Errorf("the goroutine whose work returned false made %d calls, want 10", calls[3].Load())
	}
	stop()
}

// TestStaleBinDirs: the binaries of a process that has ended are removed
// by the next build's sweep; those of a live one are kept.
func TestStaleBinDirs(t *testing.T) {
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Skip("no true(1):", err)
	}
	dead := filepath.Join(os.TempDir(), binDirPrefix+strconv.Itoa(cmd.Process.Pid)+"-test")
	live := filepath.Join(os.TempDir(), binDirPrefix+strconv.Itoa(os.Getpid())+"-test")
	for _, dir := range []string{dead, live} {
		if err := os.MkdirAll(filepath.Join(dir, "0"), 0o700); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(dir) })
	}
	removeStaleBinDirs()
	if _, err := os.Stat(dead); !os.IsNotExist(err) {
		t.Errorf("the binaries of an ended process are still there: %v", err)
	}
	if _, err := os.Stat(live); err != nil {
		t.Errorf("the binaries of this process were removed: %v", err)
	}
}

// TestBuffer: concurrent writes all land.
func TestBuffer(t *testing.T) {
	var b Buffer
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 100 {
				_, _ = b.Write([]byte("x"))
			}
		}()
	}
	wg.Wait()
	if n := len(b.String()); n != 400 {
		t.Fatalf("%d bytes, want 400", n)
	}
}
