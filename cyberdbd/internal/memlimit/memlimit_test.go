package memlimit

import (
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

type target struct{ calls []bool }

func (t *target) SetOverMemory(over bool) { t.calls = append(t.calls, over) }

func TestGuard(t *testing.T) {
	g := New(1000)
	used := int64(10)
	g.read = func() int64 { return used }
	var tg target
	g.Check(&tg)
	if g.Over() || g.Used() != 10 || len(tg.calls) != 0 {
		t.Fatalf("under the limit: over %v used %d calls %v", g.Over(), g.Used(), tg.calls)
	}
	used = 1001
	g.Check(&tg)
	used = 999
	g.Check(&tg)
	if g.Over() || len(tg.calls) != 2 || !tg.calls[0] || tg.calls[1] {
		t.Fatalf("over then under: calls %v", tg.calls)
	}
	g.SetLimit(0)
	used = 1 << 40
	g.Check(&tg)
	if g.Over() {
		t.Fatal("over after the limit was lifted")
	}
	none := New(0)
	none.read = func() int64 { return 1 << 40 }
	none.Check(&tg)
	if none.Over() {
		t.Fatal("no limit is never over")
	}
	if liveHeap() <= 0 {
		t.Fatal("the heap reads as 0 before a collection")
	}
	runtime.GC() // the figure is the last collection's
	if liveHeap() <= 0 {
		t.Fatal("the live heap reads as 0")
	}
}

func TestCgroupLimit(t *testing.T) {
	root := t.TempDir()
	self := filepath.Join(root, "self")
	svc := filepath.Join(root, "system.slice", "cyberdbd.service")
	if err := os.MkdirAll(svc, 0o755); err != nil {
		t.Fatal(err)
	}
	write := func(p, s string) {
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(self, "0::/system.slice/cyberdbd.service\n")
	write(filepath.Join(svc, "memory.max"), "max\n")
	if got := cgroupLimit(self, root); got != 0 {
		t.Fatalf("memory.max max: got %d", got)
	}
	write(filepath.Join(root, "system.slice", "memory.max"), "1073741824\n")
	if got := cgroupLimit(self, root); got != 1<<30 {
		t.Fatalf("a limit on the parent: got %d", got)
	}
	write(filepath.Join(svc, "memory.max"), "536870912\n")
	if got := cgroupLimit(self, root); got != 1<<29 {
		t.Fatalf("the nearer, lower limit: got %d", got)
	}
	write(self, "12:memory:/foo\n") // cgroup v1 only
	if got := cgroupLimit(self, root); got != 0 {
		t.Fatalf("cgroup v1: got %d", got)
	}
}
