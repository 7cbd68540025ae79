package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/cyberdb/cyberdb/cyberdbd/internal/options"
	"github.com/cyberdb/cyberdb/cyberdbd/internal/persist"
	"github.com/cyberdb/cyberdb/cyberdbd/internal/store"
)

// dataDir is the daemon's persistence (cyberdbd/internal/persist). New
// opens it after the sockets, so that a daemon refused because another
// one serves the socket never touches the data dir, and clients that
// connect while the data loads wait in the listen backlog; and before
// serving, so that nothing is answered before the data is loaded.
//
// db is set by open before anything is served and cleared by close after
// the server has stopped: the server's hooks below read it without a
// lock.
type dataDir struct {
	db *persist.DB
}

// open locks the data dir and loads it into st.
func (d *dataDir) open(o *options.Options, st *store.Store, log *slog.Logger, n Notifier) error {
	n.Progress("loading data from "+o.DataDir, 0)
	start := time.Now()
	db, err := persist.Open(st, persist.Options{
		Dir:              o.DataDir,
		AppendOnly:       o.AppendOnly,
		Fsync:            o.Fsync,
		SnapshotInterval: o.SnapshotInterval,
		Recover:          o.Recover,
		Logger:           log,
	})
	if err != nil {
		return err
	}
	d.db = db
	stats := st.Stats()
	fsync := o.Fsync.String()
	if !o.AppendOnly {
		fsync = "none (snapshots only)"
	}
	log.Info("data loaded", "data_dir", o.DataDir, "tables", stats.Tables, "entries", stats.Entries,
		"appendonly", o.AppendOnly, "fsync", fsync, "snapshot_interval", o.SnapshotInterval, "took", time.Since(start).Round(time.Millisecond))
	return nil
}

// close takes the shutdown snapshot and unlocks the data dir, once the
// server executes no more requests. Only the first call does anything.
func (d *dataDir) close(log *slog.Logger) {
	if d.db == nil {
		return
	}
	db := d.db
	d.db = nil
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

// probe is the data dir's part of the health check: the log's writer.
func (d *dataDir) probe(ctx context.Context) error {
	if d.db == nil {
		return nil
	}
	return d.db.Probe(ctx)
}
