package persist

import (
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/cyberdb/cyberdb/cyberdbd/internal/store"
	"github.com/cyberdb/cyberdb/libcyberdb/wire"
)

// Benchmarks, in process (the store and the persist package, no socket):
//
//	go test -run XXX -bench . -benchtime 3x ./cyberdbd/internal/persist
//
// BenchmarkSnapshotPause reports what writers wait for while a snapshot of
// a 1M-entry dict is taken: freeze-us, the moment every writer waits (the
// write gate: a new log segment and marking the tables), and
// first-write-ms, what the first write to that table waits (its
// copy-on-write copy). Encoding and disk I/O happen outside both.

const benchEntries = 1_000_000

func bigStore(b *testing.B) *store.Store {
	b.Helper()
	st := store.New()
	if _, err := st.Exec(wire.OpCreateDict, args(b, wire.OpCreateDict, "big"), nil); err != nil {
		b.Fatal(err)
	}
	a := args(b, wire.OpDSet, "big", "", 0)
	for i := range benchEntries {
		a.Items[1] = wire.AppendText(a.Items[1][:0], fmt.Sprintf("key:%09d", i))
		a.Items[2] = wire.AppendUint(a.Items[2][:0], uint64(i))
		if _, err := st.Exec(wire.OpDSet, a, nil); err != nil {
			b.Fatal(err)
		}
	}
	return st
}

func BenchmarkSnapshotSave1M(b *testing.B) {
	st := bigStore(b)
	dir := b.TempDir()
	var size int64
	for b.Loop() {
		cut, _ := st.Freeze(nil)
		s, _, err := writeSnapshot(dir, cut, snapInfo{LogSegment: 1})
		if err != nil {
			b.Fatal(err)
		}
		size = s.Bytes
	}
	b.SetBytes(size)
}

func BenchmarkSnapshotLoad1M(b *testing.B) {
	st := bigStore(b)
	dir := b.TempDir()
	cut, _ := st.Freeze(nil)
	s, _, err := writeSnapshot(dir, cut, snapInfo{LogSegment: 1})
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(s.Bytes)
	for b.Loop() {
		if _, err := readSnapshot(filepath.Join(dir, snapshotName), store.New(), false); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSnapshotPause1M(b *testing.B) {
	st := bigStore(b)
	a := args(b, wire.OpDSet, "big", "new", 1)
	var freeze, first time.Duration
	for b.Loop() {
		t0 := time.Now()
		cut, _ := st.Freeze(func() error { return nil })
		t1 := time.Now()
		if _, err := st.Exec(wire.OpDSet, a, nil); err != nil { // copies the table first
			b.Fatal(err)
		}
		t2 := time.Now()
		cut.Release()
		freeze += t1.Sub(t0)
		first += t2.Sub(t1)
	}
	b.ReportMetric(float64(freeze.Microseconds())/float64(b.N), "freeze-us")
	b.ReportMetric(float64(first.Microseconds())/1000/float64(b.N), "first-write-ms")
}

// BenchmarkWrite: dset ops, each followed by the wait the server does
// before replying (DB.Wait), from 1 or 50 goroutines, under each policy.
func BenchmarkWrite(b *testing.B) {
	for _, policy := range []Fsync{FsyncAlways, FsyncEverySec, FsyncNo} {
		for _, writers := range []int{1, 50} {
			b.Run(fmt.Sprintf("fsync=%s/writers=%d", policy, writers), func(b *testing.B) {
				opts := testOptions(b.TempDir(), nil)
				opts.Fsync = policy
				db, st := mustOpen(b, opts)
				defer db.Close()
				do(b, st, wire.OpCreateDict, "t")
				b.ResetTimer()
				var wg sync.WaitGroup
				per := b.N/writers + 1
				for w := range writers {
					wg.Add(1)
					go func() {
						defer wg.Done()
						a := args(b, wire.OpDSet, "t", w, 0)
						for i := range per {
							a.Items[2] = wire.AppendUint(a.Items[2][:0], uint64(i))
							if _, err := st.Exec(wire.OpDSet, a, nil); err != nil {
								b.Error(err)
								return
							}
							if err := db.Wait(); err != nil {
								b.Error(err)
								return
							}
						}
					}()
				}
				wg.Wait()
				b.ReportMetric(float64(per*writers)/b.Elapsed().Seconds(), "writes/s")
			})
		}
	}
}

// BenchmarkWriteTTL: dset with and without a TTL through the log
// (fsync everysec, one writer): a TTL from now is logged as a timed record.
func BenchmarkWriteTTL(b *testing.B) {
	for _, ttl := range []bool{false, true} {
		b.Run(fmt.Sprintf("ttl=%v", ttl), func(b *testing.B) {
			opts := testOptions(b.TempDir(), nil)
			opts.Fsync = FsyncEverySec
			db, st := mustOpen(b, opts)
			defer db.Close()
			do(b, st, wire.OpCreateDict, "t")
			a := args(b, wire.OpDSet, "t", 0, "a value of thirty-two bytes.....")
			if ttl {
				a.Items = append(a.Items, wire.Raw{0xa1, 0x63, 't', 't', 'l', 0x1a, 0x00, 0x36, 0xee, 0x80})
			}
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				a.Items[1] = wire.AppendUint(a.Items[1][:0], uint64(i%100000))
				if _, err := st.Exec(wire.OpDSet, a, nil); err != nil {
					b.Fatal(err)
				}
				if err := db.Wait(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
