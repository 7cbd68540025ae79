package main

import (
	"io"
	"strings"
	"testing"
	"time"

	"github.com/cyberdb/cyberdb/cyberdbd/internal/persist"
)

func TestPersistFlags(t *testing.T) {
	t.Setenv("STATE_DIRECTORY", "")
	cfg, err := parseFlags(nil, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.dataDir != DefaultDataDir || cfg.fsync != persist.FsyncEverySec || !cfg.appendOnly || cfg.snapshotInterval != 300*time.Second || cfg.recover {
		t.Fatalf("defaults: %+v", cfg.persistConfig)
	}
	t.Setenv("STATE_DIRECTORY", "/var/lib/cyberdb:/var/lib/other")
	if cfg, err = parseFlags(nil, io.Discard); err != nil || cfg.dataDir != "/var/lib/cyberdb" {
		t.Fatalf("$STATE_DIRECTORY: %v %q", err, cfg.dataDir)
	}
	cfg, err = parseFlags([]string{"--data-dir=/d", "--fsync=always", "--appendonly=false", "--snapshot-interval=0", "--recover"}, io.Discard)
	if err != nil || cfg.dataDir != "/d" || cfg.fsync != persist.FsyncAlways || cfg.appendOnly || cfg.snapshotInterval != 0 || !cfg.recover {
		t.Fatalf("flags: %v %+v", err, cfg)
	}
	for _, bad := range [][]string{{"--fsync=sometimes"}, {"--snapshot-interval=-1s"}, {"--data-dir="}} {
		if _, err := parseFlags(bad, io.Discard); err == nil || !strings.Contains(err.Error(), strings.SplitN(bad[0], "=", 2)[0]) {
			t.Errorf("%v: %v", bad, err)
		}
	}
}
