package store

import (
	"errors"

	"github.com/cyberdb/cyberdb/libcyberdb/wire"
)

// JournalFunc records one successful write op so that it can be replayed.
// See SetJournal.
type JournalFunc func(op wire.Op, args wire.Args) error

// SetJournal installs fn to be called after every successful write op
// (every op whose Op.IsWrite is true, including create_*, drop and batch;
// a batch is recorded once, as the whole batch op), nil to remove it.
//
// fn runs while the op still holds the locks of the tables it changed, so
// for any one table the journal order is the order the changes were
// applied, and replaying the recorded ops through Exec on an empty store
// rebuilds the same tables: every op is deterministic given the store's
// state (dict order, positions and dincr results depend on nothing else).
// A create is recorded before any op on the new table can run, and a drop
// before the name can be created again.
//
// fn is called concurrently for different tables and must be safe for
// that. args alias the request: fn must copy what it keeps. When fn
// returns an error the op is undone, so memory and journal agree, and
// Exec returns the error: a *wire.Error as is, anything else as CodeIO.
//
// Ops that fail are not recorded; a write that happened to change nothing
// (dcas returning false, dpop with a default on a missing key) is.
func (s *Store) SetJournal(fn JournalFunc) { s.SetJournalChecked(fn, nil) }

// SetJournalChecked is SetJournal for a journal whose only way to refuse a
// write is known before the write runs (a disk that already failed):
// check is called before each write op changes anything, under its locks,
// and an error refuses the op; fn is then trusted not to fail. Such a
// journal spares every write the undo record that SetJournal's contract
// needs (an op must be undone when fn fails after it ran); a batch keeps
// its own undo record whatever the journal. check nil is SetJournal.
func (s *Store) SetJournalChecked(fn JournalFunc, check func() error) {
	if fn == nil {
		s.journal.Store(nil)
		return
	}
	s.journal.Store(&journal{record: fn, check: check})
}

// journal is what SetJournal installed.
type journal struct {
	record JournalFunc
	check  func() error // nil: record may fail, and writes keep an undo record
}

// precheck runs the journal's check, if any, as a write's first step.
func (j *journal) precheck(op wire.Op) error {
	if j.check == nil {
		return nil
	}
	if err := j.check(); err != nil {
		var we *wire.Error
		if errors.As(err, &we) {
			return we
		}
		return wire.Errorf(wire.CodeIO, "%s was not applied: %v", op, err)
	}
	return nil
}

// record writes one record to the journal j (nil: none) and, once it is
// written, derives from it the watch events and cache invalidations of
// the change (emit), when held (the locked tables it changed) is not nil.
// It is the one place every applied change passes through.
func (s *Store) record(j *journal, held []*table, op wire.Op, args wire.Args) error {
	if j != nil {
		if err := j.record(op, args); err != nil {
			var we *wire.Error
			if errors.As(err, &we) {
				return we
			}
			return wire.Errorf(wire.CodeIO, "%s was not applied: it could not be written to the journal: %v", op, err)
		}
	}
	if held != nil {
		s.emit(held, op, args)
	}
	return nil
}
