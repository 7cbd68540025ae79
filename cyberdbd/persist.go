package main

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/cyberdb/cyberdb/cyberdbd/internal/persist"
	"github.com/cyberdb/cyberdb/cyberdbd/internal/store"
)

// dataDir is the daemon's persistence (cyberdbd/internal/persist). run
// opens it after the listeners, so that a daemon refused because another
// one serves the socket never touches the data dir, and clients that
// connect while the data loads wait in the listen backlog; and before
// serving, so that nothing is answered before the data is loaded.
type dataDir struct {
	db *persist.DB
}

// open locks the data dir and loads it into st.
func (d *dataDir) open(cfg *config, st *store.Store, log *slog.Logger, sd *notifier) error {
	sd.progress("loading data from "+cfg.dataDir, 0)
	start := time.Now()
	db, err := persist.Open(st, persist.Options{
		Dir:              cfg.dataDir,
		AppendOnly:       cfg.appendOnly,
		Fsync:            cfg.fsync,
		SnapshotInterval: cfg.snapshotInterval,
		Recover:          cfg.recover,
		Logger:           log,
	})
	if err != nil {
		return err
	}
	d.db = db
	stats := st.Stats()
	fsync := cfg.fsync.String()
	if !cfg.appendOnly {
		fsync = "none (snapshots only)"
	}
	log.Info("data loaded", "data_dir", cfg.dataDir, "tables", stats.Tables, "entries", stats.Entries,
		"appendonly", cfg.appendOnly, "fsync", fsync, "snapshot_interval", cfg.snapshotInterval, "took", time.Since(start).Round(time.Millisecond))
	return nil
}

// close takes the shutdown snapshot and unlocks the data dir, once the
// server executes no more requests.
func (d *dataDir) close(log *slog.Logger) {
	if d.db == nil {
		return
	}
	db := d.db
	d.db = nil // close once: run calls it before its last log line, and defers it for error paths
	if err := db.Close(); err != nil {
		log.Error("the snapshot at shutdown failed; the log still holds every write", "err", err)
	}
}

// The server's hooks (server.Config); no-ops until open succeeds.

func (d *dataDir) durable() error {
	if d.db == nil {
		return nil
	}
	return d.db.Wait()
}

func (d *dataDir) save() error {
	if d.db == nil {
		return fmt.Errorf("no data dir is open")
	}
	return d.db.Save()
}

func (d *dataDir) info(m map[string]any) {
	if d.db != nil {
		d.db.Info(m)
	}
}
