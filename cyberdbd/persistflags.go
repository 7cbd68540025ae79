package main

import (
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/cyberdb/cyberdb/cyberdbd/internal/persist"
	flag "github.com/spf13/pflag"
)

// persistConfig is what the persistence flags decide. It is embedded in
// config.
type persistConfig struct {
	dataDir          string
	snapshotInterval time.Duration
	appendOnly       bool
	fsyncName        string
	fsync            persist.Fsync
	recover          bool
}

// DefaultDataDir is the data dir when neither --data-dir nor
// $STATE_DIRECTORY (set by systemd's StateDirectory=) says otherwise.
const DefaultDataDir = "./cyberdb-data"

// defaultDataDir is $STATE_DIRECTORY's first entry (systemd passes a
// colon-separated list when a unit has several), else DefaultDataDir.
func defaultDataDir() string {
	if s := os.Getenv("STATE_DIRECTORY"); s != "" {
		if first, _, _ := strings.Cut(s, ":"); first != "" {
			return first
		}
	}
	return DefaultDataDir
}

// addPersistFlags registers --data-dir, --snapshot-interval, --appendonly,
// --fsync and --recover.
func addPersistFlags(fs *flag.FlagSet, cfg *config) {
	fs.StringVar(&cfg.dataDir, "data-dir", defaultDataDir(), "`DIR` holding the snapshot and the append-only log, created (mode 0700) if missing and locked while the daemon runs; the default is $STATE_DIRECTORY when set (as under systemd), else ./cyberdb-data")
	fs.DurationVar(&cfg.snapshotInterval, "snapshot-interval", 300*time.Second, "take a snapshot this often (`duration`, e.g. 5m); 0 only on the save op and at shutdown")
	fs.BoolVar(&cfg.appendOnly, "appendonly", true, "log every write before replying (--appendonly=false: snapshots only, and a crash loses the writes since the last one)")
	fs.StringVar(&cfg.fsyncName, "fsync", "everysec", "`POLICY` for fsyncing the log: always (before each reply; concurrent writes share one fsync), everysec (in the background each second) or no (left to the OS)")
	fs.BoolVar(&cfg.recover, "recover", false, "start even if a file of the data dir is damaged or missing: load the newest state that can be rebuilt exactly (the backup snapshot and its log, the log before the damage, the tables read whole), move damaged files aside and report what was dropped or set aside (README: \"When a file is damaged\")")
}

// finishPersistFlags checks the persistence flags.
func finishPersistFlags(cfg *config) error {
	f, err := persist.ParseFsync(cfg.fsyncName)
	if err != nil {
		return fmt.Errorf("--fsync %q: %v", cfg.fsyncName, err)
	}
	cfg.fsync = f
	if cfg.snapshotInterval < 0 {
		return fmt.Errorf("--snapshot-interval %s: must not be negative", cfg.snapshotInterval)
	}
	if cfg.dataDir == "" {
		return fmt.Errorf("--data-dir: must not be empty")
	}
	return nil
}
