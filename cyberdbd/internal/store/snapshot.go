package store

import (
	"fmt"
	"math"
	"sort"

	"github.com/cyberdb/cyberdb/libcyberdb/wire"
)

// Snapshots. The persistence layer (cyberdbd/internal/persist) needs the
// tables exactly as they were at one point of the write history (its
// "cut"), the same point at which it starts a new log segment, without
// stopping writers for longer than a cheap copy. It works in two steps:
//
//  1. [Store.Freeze] takes the write gate exclusively: every write op holds
//     it shared from before it locks its tables until after its journal
//     call, so while Freeze holds it no write is half done. Under it,
//     Freeze runs the caller's atCut (which starts the new log segment),
//     lists the tables and marks each one pending. That is O(tables) work:
//     writers of every table pause only for it.
//  2. The snapshot then takes each table's image with [Cut.Take]. A table
//     still pending is copied then (dict.clone / list.clone: the slices
//     are copied, the immutable strings shared). A writer that reaches a
//     pending table first copies it before changing it (table.capture,
//     under the lock it holds anyway), so the image is always the state at
//     the cut. Writers of a table pause at most for one copy of that table;
//     encoding and disk I/O happen outside every lock.

// Cut is the list of tables as of a cut; see Freeze.
type Cut struct {
	tables []*table
	next   int
}

// Freeze waits until no write op is running, calls atCut while none can
// start, and returns the cut: the tables as they are at that moment, to be
// collected with Take. If atCut fails, nothing is frozen and its error is
// returned. Every table of a Cut must be taken (or the Cut released with
// Release) before the next Freeze.
func (s *Store) Freeze(atCut func() error) (*Cut, error) {
	s.gate.Lock()
	defer s.gate.Unlock()
	if atCut != nil {
		if err := atCut(); err != nil {
			return nil, err
		}
	}
	c := &Cut{}
	s.mu.RLock()
	for _, t := range s.tables {
		c.tables = append(c.tables, t)
	}
	s.mu.RUnlock()
	sort.Slice(c.tables, func(i, j int) bool { return c.tables[i].name < c.tables[j].name })
	for _, t := range c.tables {
		// No writer runs (the gate), so frozen is not being set; readers
		// never touch it.
		t.frozen = nil
		t.pending.Store(true)
	}
	return c, nil
}

// Len is the number of tables in the cut.
func (c *Cut) Len() int { return len(c.tables) }

// Take returns the image of the next table of the cut, in name order, or
// nil when all have been taken. It takes that table's read lock only for
// as long as a copy takes, if no writer has copied it already.
func (c *Cut) Take() *TableImage {
	for c.next < len(c.tables) {
		t := c.tables[c.next]
		c.next++
		t.mu.RLock()
		var im *TableImage
		if t.pending.Load() {
			im = t.image()
			t.pending.Store(false) // writers hold t.mu exclusively to look at pending: none runs now
		} else {
			im, t.frozen = t.frozen, nil
		}
		t.mu.RUnlock()
		if im != nil {
			return im
		}
	}
	return nil
}

// Release forgets the tables not taken yet (after a failed snapshot).
func (c *Cut) Release() {
	for c.Take() != nil {
	}
}

// capture keeps the table's state as of the pending cut before a writer
// changes it. t.mu must be held for writing.
func (t *table) capture() {
	if t.pending.Load() {
		t.frozen = t.image()
		t.pending.Store(false)
	}
}

// image copies the table cheaply; nil for an empty slot.
func (t *table) image() *TableImage {
	switch t.kind {
	case kindDict:
		d := *t.d
		d.entries = append([]entry(nil), t.d.entries...)
		d.dl = append([]int64(nil), t.d.dl...)
		d.slots = nil    // the index is not needed to encode
		d.lru = nil      // access stamps are not kept
		d.arena.detach() // the image never appends, but never share a chunk
		return &TableImage{Name: t.name, kind: kindDict, d: &d, expires: t.expires}
	case kindList:
		return &TableImage{Name: t.name, kind: kindList, l: t.l.clone(), expires: t.expires}
	}
	return nil
}

// TableImage is a copy of one table, to encode into a snapshot or built
// from one to install into a store.
type TableImage struct {
	Name    string
	kind    kind
	d       *dict
	l       *list
	expires int64  // the table's deadline, unix ms; 0: none
	last    uint64 // seq of the last entry added (loading)
}

// TableOptions are a table's settings a snapshot keeps besides its
// content. The zero value is a table created without options.
type TableOptions struct {
	Expires int64 // the table's deadline, unix ms; 0: none
	// Dicts only (create_dict's options):
	DefaultTTL int64 // ms; 0: none
	Evict      bool  // a cache table (LRU)
	MaxLen     int   // a cache table's most entries; 0: no bound
}

// Options returns the table's options.
func (im *TableImage) Options() TableOptions {
	o := TableOptions{Expires: im.expires}
	if im.kind == kindDict {
		o.DefaultTTL, o.Evict, o.MaxLen = im.d.defTTL, im.d.evict, im.d.maxLen
	}
	return o
}

// SetOptions sets the table's options, before its entries are added.
func (im *TableImage) SetOptions(o TableOptions) error {
	if o.Expires < 0 || o.Expires > maxDeadline || o.DefaultTTL < 0 || o.DefaultTTL > maxTTL || o.MaxLen < 0 || o.MaxLen > math.MaxInt32 {
		return fmt.Errorf("table %q: options out of range: %+v", im.Name, o)
	}
	im.expires = o.Expires
	if im.kind != kindDict {
		if o.DefaultTTL != 0 || o.Evict || o.MaxLen != 0 {
			return fmt.Errorf("table %q: a list has no dict options", im.Name)
		}
		return nil
	}
	im.d.defTTL, im.d.evict, im.d.maxLen = o.DefaultTTL, o.Evict || o.MaxLen > 0, o.MaxLen
	return nil
}

// HasDeadlines says whether some live entry of the dict has a deadline.
func (im *TableImage) HasDeadlines() bool { return im.kind == kindDict && im.d.ttls > 0 }

// IsDict says whether the image is of a dict (else a list).
func (im *TableImage) IsDict() bool { return im.kind == kindDict }

// Len is the number of entries or elements.
func (im *TableImage) Len() int {
	if im.kind == kindDict {
		return im.d.live
	}
	return len(im.l.items)
}

// NextSeq is the insertion number the dict's next new key gets (dscan
// cursors are insertion numbers, so a snapshot keeps them).
func (im *TableImage) NextSeq() uint64 {
	if im.kind == kindDict {
		return im.d.nextSeq
	}
	return 0
}

// Entries calls fn for each live dict entry in insertion order with its
// key and value (canonical CBOR items), insertion number and deadline
// (unix ms, 0 for none). Entries past their deadline are included: a
// snapshot is the state at its cut, and what expired is removed when it
// is loaded, by the sweeper, as it would have been.
func (im *TableImage) Entries(fn func(key, val string, seq uint64, deadline int64) error) error {
	for i := range im.d.entries {
		e := &im.d.entries[i]
		if e.dead() {
			continue
		}
		k := keyLen(e.kv)
		if err := fn(e.kv[:k], e.kv[k:], e.seq, im.d.deadline(i)); err != nil {
			return err
		}
	}
	return nil
}

// Items calls fn for each list element in order.
func (im *TableImage) Items(fn func(v string) error) error {
	for _, v := range im.l.items {
		if err := fn(v); err != nil {
			return err
		}
	}
	return nil
}

// NewDictImage starts an image of a dict to fill with AddEntry and
// install with Install. sizeHint is the expected number of entries.
func NewDictImage(name string, nextSeq uint64, sizeHint int) *TableImage {
	d := newDict()
	d.nextSeq = nextSeq
	d.entries = make([]entry, 0, min(max(sizeHint, 0), 1<<20))
	return &TableImage{Name: name, kind: kindDict, d: d}
}

// NewListImage starts an image of a list to fill with AddItem.
func NewListImage(name string, sizeHint int) *TableImage {
	return &TableImage{Name: name, kind: kindList, l: &list{items: make([]string, 0, min(max(sizeHint, 0), 1<<20))}}
}

// AddEntry appends a dict entry with its deadline (unix ms, 0: none).
// key and val must each be one whole CBOR item, seqs must increase and
// stay below the dict's next seq, and a key may appear once: a snapshot
// that breaks these rules is refused rather than loaded into a store whose
// invariants it would break.
func (im *TableImage) AddEntry(key, val []byte, seq uint64, deadline int64) error {
	if im.kind != kindDict {
		return fmt.Errorf("table %q is not a dict", im.Name)
	}
	if len(key) == 0 || wire.ItemLen(key) != len(key) || len(val) == 0 || wire.ItemLen(val) != len(val) {
		return fmt.Errorf("table %q: an entry is not a well-formed CBOR key and value", im.Name)
	}
	if deadline < 0 || deadline > maxDeadline {
		return fmt.Errorf("table %q: entry deadline %d out of range", im.Name, deadline)
	}
	if seq <= im.last || seq >= im.d.nextSeq {
		return fmt.Errorf("table %q: entry insertion number %d out of order (previous %d, next %d)", im.Name, seq, im.last, im.d.nextSeq)
	}
	d := im.d
	if d.find(key) >= 0 {
		return fmt.Errorf("table %q: key %s appears twice", im.Name, wire.Diagnose(key))
	}
	kv := arenaJoin(&d.arena, key, val)
	pos := len(d.entries)
	d.entries = append(d.entries, entry{kv: kv, seq: seq})
	d.growParallel()
	d.indexAdd(kv[:len(key)], pos)
	d.live++
	d.bytes += int64(len(kv))
	d.setDeadline(pos, deadline)
	im.last = seq
	return nil
}

// AddItem appends a list element, which must be one whole CBOR item.
func (im *TableImage) AddItem(v []byte) error {
	if im.kind != kindList {
		return fmt.Errorf("table %q is not a list", im.Name)
	}
	if len(v) == 0 || wire.ItemLen(v) != len(v) {
		return fmt.Errorf("table %q: an element is not a well-formed CBOR item", im.Name)
	}
	im.l.items = append(im.l.items, string(v))
	im.l.bytes += int64(len(v))
	return nil
}

// Install adds the table of im to the store (loading a snapshot, before
// the store serves). The name must be valid and free.
func (s *Store) Install(im *TableImage) error {
	if im.Name == "" || len(im.Name) > MaxNameLen {
		return fmt.Errorf("table name of %d bytes: must be 1 to %d", len(im.Name), MaxNameLen)
	}
	t := &table{name: im.Name, kind: im.kind, d: im.d, l: im.l, expires: im.expires}
	if t.kind == kindDict && t.d.evict && t.d.lru == nil {
		t.d.lru = make([]uint32, len(t.d.entries)) // never used: evicted first
	}
	if t.kind != kindDict && t.kind != kindList {
		return fmt.Errorf("table %q has no kind", im.Name)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tables[im.Name] != nil {
		return fmt.Errorf("table %q appears twice", im.Name)
	}
	t.mu.Lock()
	t.publish()
	t.mu.Unlock()
	s.tables[im.Name] = t
	return nil
}
