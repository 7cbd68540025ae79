package libcyberdb

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestExpiryAPI(t *testing.T) {
	_, c := start(t)
	ctx := context.Background()
	must(t, c.CreateDict(ctx, "s", nil))
	d := NewDict[string, string](c, "s")

	must(t, d.Set(ctx, "k", "v", TTL(time.Hour)))
	if left, ok, err := d.TTL(ctx, "k"); err != nil || !ok || left <= 59*time.Minute || left > time.Hour {
		t.Fatalf("TTL = %v, %v, %v", left, ok, err)
	}
	at := time.Now().Add(2 * time.Hour).Truncate(time.Millisecond)
	must(t, d.Set(ctx, "k", "w", ExpireAt(at)))
	if dl, ok, err := d.Deadline(ctx, "k"); err != nil || !ok || !dl.Equal(at) {
		t.Fatalf("Deadline = %v, %v, %v; want %v", dl, ok, err, at)
	}
	must(t, d.Set(ctx, "k", "x", KeepTTL()))
	if dl, _, _ := d.Deadline(ctx, "k"); !dl.Equal(at) {
		t.Fatalf("KeepTTL lost the deadline: %v", dl)
	}
	must(t, d.Set(ctx, "k", "y"))
	if _, ok, err := d.TTL(ctx, "k"); err != nil || ok {
		t.Fatalf("a plain Set kept a deadline: %v, %v", ok, err)
	}
	if _, _, err := d.TTL(ctx, "missing"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("TTL of a missing key: %v", err)
	}
	if ok, err := d.Expire(ctx, "k", time.Minute); err != nil || !ok {
		t.Fatalf("Expire = %v, %v", ok, err)
	}
	if ok, err := d.Expire(ctx, "missing", time.Minute); err != nil || ok {
		t.Fatalf("Expire(missing) = %v, %v", ok, err)
	}
	if ok, err := d.Persist(ctx, "k"); err != nil || !ok {
		t.Fatalf("Persist = %v, %v", ok, err)
	}
	if v, err := d.GetEx(ctx, "k", 30*time.Second); err != nil || v != "y" {
		t.Fatalf("GetEx = %v, %v", v, err)
	}
	if left, ok, _ := d.TTL(ctx, "k"); !ok || left > 30*time.Second || left < 29*time.Second {
		t.Fatalf("after GetEx: %v %v", left, ok)
	}
	if ok, err := d.SetIfAbsent(ctx, "k", "z", TTL(time.Second)); err != nil || ok {
		t.Fatalf("SetIfAbsent on a present key = %v, %v", ok, err)
	}
	if ok, err := d.SetIfAbsent(ctx, "n", "z", TTL(50*time.Millisecond)); err != nil || !ok {
		t.Fatalf("SetIfAbsent = %v, %v", ok, err)
	}
	if ok, err := d.DeleteIfEqual(ctx, "k", "other"); err != nil || ok {
		t.Fatalf("DeleteIfEqual(other) = %v, %v", ok, err)
	}
	if ok, err := d.DeleteIfEqual(ctx, "k", "y"); err != nil || !ok {
		t.Fatalf("DeleteIfEqual = %v, %v", ok, err)
	}
	time.Sleep(60 * time.Millisecond)
	if ok, err := d.Has(ctx, "n"); err != nil || ok {
		t.Fatalf("Has(expired) = %v, %v", ok, err)
	}
	if err := d.Set(ctx, "k", "v", TTL(-time.Second)); !errors.Is(err, ErrBadRequest) {
		t.Fatalf("a negative TTL: %v", err)
	}

	// Table options and table deadlines.
	must(t, c.CreateDict(ctx, "sessions", nil, DefaultTTL(10*time.Minute), IfNotExists()))
	sess := NewDict[string, int](c, "sessions")
	if _, err := sess.Incr(ctx, "hits", 1); err != nil {
		t.Fatal(err)
	}
	if left, ok, _ := sess.TTL(ctx, "hits"); !ok || left > 10*time.Minute || left < 9*time.Minute {
		t.Fatalf("the default TTL: %v %v", left, ok)
	}
	must(t, c.CreateDict(ctx, "cache", nil, MaxLen(2)))
	cache := NewDict[int, int](c, "cache")
	for i := range 5 {
		must(t, cache.Set(ctx, i, i))
	}
	if n, _ := cache.Len(ctx); n != 2 {
		t.Fatalf("a MaxLen(2) cache holds %d", n)
	}
	if err := c.CreateList(ctx, "l", nil, DefaultTTL(time.Second)); !errors.Is(err, ErrBadRequest) {
		t.Fatalf("DefaultTTL on a list: %v", err)
	}
	must(t, c.CreateList(ctx, "work", []int{1}))
	if _, ok, err := c.TableTTL(ctx, "work"); err != nil || ok {
		t.Fatalf("TableTTL = %v, %v", ok, err)
	}
	must(t, c.ExpireTable(ctx, "work", time.Hour))
	if left, ok, err := c.TableTTL(ctx, "work"); err != nil || !ok || left < 59*time.Minute {
		t.Fatalf("TableTTL = %v, %v, %v", left, ok, err)
	}
	must(t, c.PersistTable(ctx, "work"))
	must(t, c.ExpireTableAt(ctx, "work", time.Now().Add(-time.Second)))
	if ok, _ := c.Exists(ctx, "work"); ok {
		t.Fatal("a table past its deadline exists")
	}
	info, err := c.Info(ctx)
	if err != nil || info["expired"] == nil || info["evicted"] == nil {
		t.Fatalf("info lacks expired/evicted: %v %v", info, err)
	}
}

func TestLock(t *testing.T) {
	_, c := start(t)
	ctx := context.Background()
	must(t, c.CreateDict(ctx, "locks", nil))
	a := NewLock(c, "locks", "job", 80*time.Millisecond)
	b := NewLock(c, "locks", "job", 80*time.Millisecond)
	if ok, err := a.TryAcquire(ctx); err != nil || !ok {
		t.Fatalf("a.TryAcquire = %v, %v", ok, err)
	}
	if ok, err := b.TryAcquire(ctx); err != nil || ok {
		t.Fatalf("b took a held lock: %v, %v", ok, err)
	}
	if ok, err := a.Renew(ctx); err != nil || !ok {
		t.Fatalf("a.Renew = %v, %v", ok, err)
	}
	short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	err := b.Acquire(short)
	cancel()
	if !errors.Is(err, ErrLockHeld) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("b.Acquire while held: %v", err)
	}
	// a stalls past its lease: b gets the lock, and a's Release leaves it.
	if err := b.Acquire(ctx); err != nil {
		t.Fatal(err)
	}
	if ok, err := a.Release(ctx); err != nil || ok {
		t.Fatalf("a released b's lock: %v, %v", ok, err)
	}
	if ok, err := a.Renew(ctx); err != nil || ok {
		t.Fatalf("a renewed b's lock: %v, %v", ok, err)
	}
	if ok, err := b.Release(ctx); err != nil || !ok {
		t.Fatalf("b.Release = %v, %v", ok, err)
	}
	if ok, err := a.TryAcquire(ctx); err != nil || !ok {
		t.Fatalf("a.TryAcquire after release = %v, %v", ok, err)
	}
}
