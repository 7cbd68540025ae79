package main

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"
)

func TestGCPercentFlag(t *testing.T) {
	t.Setenv("GOGC", "")
	cfg, err := parseFlags(nil, io.Discard)
	if err != nil || cfg.gcPercent != DefaultGCPercent || cfg.keepGOGC {
		t.Fatalf("default: %+v %v", cfg.memConfig, err)
	}
	if cfg, err = parseFlags([]string{"--gc-percent", "200"}, io.Discard); err != nil || cfg.gcPercent != 200 {
		t.Fatalf("--gc-percent 200: %+v %v", cfg.memConfig, err)
	}
	if _, err = parseFlags([]string{"--gc-percent", "-2"}, io.Discard); err == nil || !strings.Contains(err.Error(), "--gc-percent") {
		t.Fatalf("--gc-percent -2: %v", err)
	}
	t.Setenv("GOGC", "80")
	if cfg, err = parseFlags(nil, io.Discard); err != nil || !cfg.keepGOGC {
		t.Fatalf("$GOGC set: %+v %v", cfg.memConfig, err)
	}
	if cfg, err = parseFlags([]string{"--gc-percent", "30"}, io.Discard); err != nil || cfg.keepGOGC {
		t.Fatalf("$GOGC and --gc-percent: the flag wins: %+v %v", cfg.memConfig, err)
	}
}

// trimMemory runs and stops with its context (what it frees is measured
// by bench/bench-redis.sh, not asserted here).
func TestTrimMemoryStops(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { trimMemory(ctx, slog.New(slog.DiscardHandler), time.Millisecond); close(done) }()
	time.Sleep(20 * time.Millisecond)
	cancel()
	<-done
}
