package persist

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/cyberdb/cyberdb/cyberdbd/internal/store"
	"github.com/cyberdb/cyberdb/libcyberdb/wire"
)

// Snapshot file names in the data dir.
const (
	snapshotName = "snapshot.cdb"
	backupName   = "snapshot.cdb.bak" // the previous snapshot
	tempSuffix   = ".tmp"
)

// Snapshot format (version 3): a 16-byte header, "CDBSNAP\x00" then the
// format version (u32 big-endian) and the header's CRC-32C (header.go),
// then records (record.go), each a CBOR array or map:
//
//	{"created": unix-nanos, "log_segment": N, "tables": T}   first, always
//	[1, name, "dict"|"list", count, next_seq, options?]       a table; count entries follow
//	[2, key, value, seq, key, value, seq, ...]                dict entries, in insertion order
//	[5, key, value, seq, deadline, ...]                       the same, with deadlines
//	[3, value, ...]                                           list elements, in order
//	[4, tables, entries, records]                             the trailer, last, always
//
// Keys and values are the stored canonical CBOR items as they are. seq is a
// dict entry's insertion number (dscan cursors), next_seq the number the
// next new key gets. options, only when the table has some, is a map:
// "expires" (the table's deadline), "ttl" (a dict's default TTL, ms),
// "evict" ("lru") and "max_len". A dict with some entry that has a
// deadline is written in records of type 5, deadline being unix
// milliseconds, 0 for none; deadlines are absolute, so a snapshot loaded
// later holds entries whose deadline passed meanwhile, and the store
// expires them as it starts. log_segment N is the first log segment that
// the snapshot does not cover: replay starts there. The trailer repeats
// the counts (records excludes the trailer itself); nothing may follow it.
// Version 2 had neither options nor records of type 5; version 1 differs
// from 2 only in its header: zeros where the checksum is.
const (
	snapMagic   = "CDBSNAP\x00"
	snapVersion = 3
	snapHeader  = 16

	recTable      = 1
	recEntries    = 2
	recItems      = 3
	recTrailer    = 4
	recEntriesTTL = 5

	// A record of entries or elements holds at most this many items, and
	// is closed early once it passes chunkBytes.
	chunkItems = 4096
	chunkBytes = 1 << 20
)

// ErrFutureVersion is returned (wrapped) for a snapshot or log segment
// written by a newer cyberdbd in a format this one cannot read.
var ErrFutureVersion = errors.New("written in a newer format")

type snapInfo struct {
	Created    int64  `cbor:"created"`
	LogSegment uint64 `cbor:"log_segment"`
	Tables     uint64 `cbor:"tables"`
}

// snapStats describes a written or loaded snapshot.
type snapStats struct {
	Tables, Entries int64
	Bytes           int64
}

// writeSnapshot encodes every table of cut into path+".tmp", fsyncs it,
// keeps the current snapshot as the backup, renames the new one into
// place and fsyncs the directory. replaced says whether there was a
// snapshot.cdb, now the backup. cut is consumed even on failure.
func writeSnapshot(dir string, cut *store.Cut, info snapInfo) (st snapStats, replaced bool, err error) {
	defer cut.Release()
	path := filepath.Join(dir, snapshotName)
	tmp := path + tempSuffix
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return st, false, err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	bw := bufio.NewWriterSize(f, 1<<20)
	var hdr [snapHeader]byte
	putHeader(hdr[:], snapMagic, snapVersion)
	bw.Write(hdr[:])
	st.Bytes = snapHeader

	var rec []byte
	records := int64(0)
	emit := func() error {
		records++
		st.Bytes += int64(len(rec))
		_, err := bw.Write(rec)
		rec = rec[:0]
		return err
	}
	info.Tables = uint64(cut.Len())
	var start int
	rec, start = beginRecord(rec)
	if rec, err = wire.AppendMarshal(rec, info); err != nil {
		return st, false, err
	}
	rec = endRecord(rec, start)
	if err := emit(); err != nil {
		return st, false, err
	}
	for im := cut.Take(); im != nil; im = cut.Take() {
		st.Tables++
		st.Entries += int64(im.Len())
		kind := "list"
		if im.IsDict() {
			kind = "dict"
		}
		opts := tableOptions(im.Options())
		rec, start = beginRecord(rec)
		rec = wire.AppendArrayHeader(rec, 5+min(len(opts), 1))
		rec = wire.AppendUint(rec, recTable)
		rec = wire.AppendText(rec, im.Name)
		rec = wire.AppendText(rec, kind)
		rec = wire.AppendUint(rec, uint64(im.Len()))
		rec = wire.AppendUint(rec, im.NextSeq())
		if len(opts) > 0 {
			if rec, err = wire.AppendMarshal(rec, opts); err != nil {
				return st, false, err
			}
		}
		rec = endRecord(rec, start)
		if err := emit(); err != nil {
			return st, false, err
		}
		// Chunks: items are gathered in body, then framed.
		var body []byte
		n := 0
		per := 1
		tag := uint64(recItems)
		deadlines := im.HasDeadlines()
		if im.IsDict() {
			per, tag = 3, recEntries
			if deadlines {
				per, tag = 4, recEntriesTTL
			}
		}
		flush := func() error {
			if n == 0 {
				return nil
			}
			rec, start = beginRecord(rec)
			rec = wire.AppendArrayHeader(rec, 1+n*per)
			rec = wire.AppendUint(rec, tag)
			rec = append(rec, body...)
			rec = endRecord(rec, start)
			body, n = body[:0], 0
			return emit()
		}
		add := func() error {
			n++
			if n == chunkItems || len(body) >= chunkBytes {
				return flush()
			}
			return nil
		}
		if im.IsDict() {
			err = im.Entries(func(key, val string, seq uint64, deadline int64) error {
				body = append(body, key...)
				body = append(body, val...)
				body = wire.AppendUint(body, seq)
				if deadlines {
					body = wire.AppendUint(body, uint64(deadline))
				}
				return add()
			})
		} else {
			err = im.Items(func(v string) error {
				body = append(body, v...)
				return add()
			})
		}
		if err == nil {
			err = flush()
		}
		if err != nil {
			return st, false, err
		}
	}
	rec, start = beginRecord(rec)
	rec = wire.AppendArrayHeader(rec, 4)
	rec = wire.AppendUint(rec, recTrailer)
	rec = wire.AppendUint(rec, uint64(st.Tables))
	rec = wire.AppendUint(rec, uint64(st.Entries))
	rec = wire.AppendUint(rec, uint64(records))
	rec = endRecord(rec, start)
	if err := emit(); err != nil {
		return st, false, err
	}
	if err := bw.Flush(); err != nil {
		return st, false, err
	}
	failpoint("snapshot-fsync")
	if err := f.Sync(); err != nil {
		return st, false, fmt.Errorf("fsync %s: %w", tmp, err)
	}
	if err := f.Close(); err != nil {
		return st, false, err
	}
	// The current snapshot becomes the backup: a second name for the same
	// file, so that the snapshot name always points at a whole snapshot.
	bak := filepath.Join(dir, backupName)
	if _, serr := os.Stat(path); serr == nil {
		os.Remove(bak)
		if lerr := os.Link(path, bak); lerr != nil {
			if cerr := copyFile(path, bak); cerr != nil {
				return st, false, fmt.Errorf("keep the previous snapshot as %s: %w", bak, cerr)
			}
		}
		replaced = true
	}
	failpoint("snapshot-rename")
	if err := os.Rename(tmp, path); err != nil {
		return st, false, err
	}
	failpoint("snapshot-dirsync")
	return st, replaced, syncDir(dir)
}

func copyFile(from, to string) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	if err := out.Sync(); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("fsync directory %s: %w", dir, err)
	}
	return nil
}

// snapLoad is what readSnapshot read.
type snapLoad struct {
	info   snapInfo
	infoOK bool      // the info record was read
	stats  snapStats // the tables and entries loaded, and the file's size
	// With salvage: the tables damage cut short, which were not loaded,
	// and how many more the snapshot holds that were not loaded either
	// (their table record, or all after the damage; names unknown).
	cut  []string
	lost int
}

// readSnapshot loads the snapshot at path into st. On damage it returns a
// *DamageError (the first damage found). With salvage, every table that
// can be read whole is installed, and no other: a record whose checksum
// does not match is skipped (when its length fits in the file) along with
// the rest of its table, which is reported in snapLoad.cut, and reading
// resumes at the next table; a damaged header does not stop the reading
// either, since each record has its own checksum; any other damage stops
// it. Without salvage, st may hold part of the snapshot after an error,
// and must be emptied.
func readSnapshot(path string, st *store.Store, salvage bool) (res snapLoad, err error) {
	f, err := os.Open(path)
	if err != nil {
		return res, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return res, err
	}
	size := fi.Size()
	res.stats.Bytes = size
	var hdr [snapHeader]byte
	if n, _ := io.ReadFull(f, hdr[:]); n < snapHeader {
		if n == 0 {
			return res, &DamageError{File: path, Offset: 0, Reason: "the file is empty"}
		}
		return res, &DamageError{File: path, Offset: 0, Reason: fmt.Sprintf("the file is %d bytes, shorter than a snapshot's header", n)}
	}
	var headerErr error
	if _, err := checkHeader(path, hdr[:], snapMagic, snapVersion, true, "snapshot"); err != nil {
		if !salvage || errors.Is(err, ErrFutureVersion) {
			return res, err
		}
		headerErr = err // reported once the records that can be read are loaded
	}
	rr := newRecordReader(f, path, size, snapHeader)
	var (
		cur       *store.TableImage
		want      uint64 // entries the current table announced
		got       uint64
		records   uint64
		items     []wire.Raw
		tables    uint64
		entries   uint64
		installed bool
		skipped   error // salvage: the first damaged record skipped
		skipping  bool  // salvage: the rest of a damaged table
	)
	finish := func(off int64) error {
		if cur == nil {
			return nil
		}
		if got != want {
			return &DamageError{File: path, Offset: off, Reason: fmt.Sprintf("table %q announced %d entries but has %d", cur.Name, want, got)}
		}
		if err := st.Install(cur); err != nil {
			return &DamageError{File: path, Offset: off, Reason: err.Error()}
		}
		res.stats.Tables++
		res.stats.Entries += int64(cur.Len())
		cur = nil
		return nil
	}
	// drop ends the current table at damage: installed if it is whole
	// (the damage is after its last entry), else reported as cut.
	drop := func() {
		if cur != nil {
			if got == want {
				_ = finish(rr.off)
			} else {
				res.cut = append(res.cut, cur.Name)
			}
			cur = nil
		}
	}
	fail := func(e error) (snapLoad, error) {
		if salvage && !installed {
			drop()
		}
		if res.infoOK {
			res.lost = max(0, int(res.info.Tables)-int(res.stats.Tables)-len(res.cut))
		}
		if headerErr != nil {
			e = headerErr
		} else if skipped != nil {
			e = skipped
		}
		return res, e
	}
	for {
		off := rr.off
		body, err := rr.next()
		if err == io.EOF {
			return fail(&DamageError{File: path, Offset: off, Reason: "the snapshot ends without its trailer (cut short)"})
		}
		if err == errTorn {
			return fail(&DamageError{File: path, Offset: off, Reason: "the snapshot ends inside a record (cut short)"})
		}
		if err != nil {
			if salvage && res.infoOK && rr.skipDamaged() {
				if skipped == nil {
					skipped = err
				}
				drop()
				skipping = true
				continue
			}
			return fail(err)
		}
		bad := func(format string, args ...any) (snapLoad, error) {
			return fail(&DamageError{File: path, Offset: off, Reason: fmt.Sprintf(format, args...)})
		}
		if !res.infoOK {
			if body[0]>>5 != 5 || wire.Unmarshal(body, &res.info) != nil {
				return bad("the first record is not the snapshot's info map")
			}
			res.infoOK = true
			records++
			continue
		}
		items, err = wire.SplitArrayInto(body, items)
		if err != nil || len(items) == 0 {
			return bad("a record is not a CBOR array")
		}
		tag, ok := wire.ItemUint(items[0])
		if !ok {
			return bad("a record does not start with its type")
		}
		if skipping {
			if tag != recTable && tag != recTrailer {
				continue // the rest of a damaged table
			}
			skipping = false
		}
		switch tag {
		case recTable:
			if err := finish(off); err != nil {
				return fail(err)
			}
			if len(items) != 5 && len(items) != 6 {
				return bad("a table record has %d items, want 5 or 6", len(items))
			}
			name, ok1 := wire.ItemText(items[1])
			kind, ok2 := wire.ItemText(items[2])
			n, ok3 := wire.ItemUint(items[3])
			next, ok4 := wire.ItemUint(items[4])
			if !ok1 || !ok2 || !ok3 || !ok4 || (kind != "dict" && kind != "list") {
				return bad("a malformed table record")
			}
			name = strings.Clone(name) // ItemText's aliases the record
			if kind == "dict" {
				cur = store.NewDictImage(name, next, int(min(n, 1<<30)))
			} else {
				cur = store.NewListImage(name, int(min(n, 1<<30)))
			}
			if len(items) == 6 {
				var o snapOptions
				if items[5][0]>>5 != 5 || wire.Unmarshal(items[5], &o) != nil {
					return bad("table %q: malformed options", name)
				}
				if err := cur.SetOptions(store.TableOptions{Expires: o.Expires, DefaultTTL: o.TTL, Evict: o.Evict == "lru", MaxLen: o.MaxLen}); err != nil || (o.Evict != "" && o.Evict != "lru") {
					return bad("table %q: options %s", name, wire.Diagnose(items[5]))
				}
			}
			want, got = n, 0
			tables++
		case recEntries, recEntriesTTL, recItems:
			per := 1
			switch tag {
			case recEntries:
				per = 3
			case recEntriesTTL:
				per = 4
			}
			if cur == nil || cur.IsDict() != (tag != recItems) || (len(items)-1)%per != 0 {
				return bad("entries that belong to no table, or to a table of the other kind")
			}
			for i := 1; i < len(items); i += per {
				if got == want {
					return bad("table %q has more entries than the %d it announced", cur.Name, want)
				}
				if tag != recItems {
					seq, ok := wire.ItemUint(items[i+2])
					if !ok {
						return bad("a dict entry without its insertion number")
					}
					var deadline uint64
					if tag == recEntriesTTL {
						if deadline, ok = wire.ItemUint(items[i+3]); !ok || deadline > 1<<62 {
							return bad("a dict entry without its deadline")
						}
					}
					err = cur.AddEntry(items[i], items[i+1], seq, int64(deadline))
				} else {
					err = cur.AddItem(items[i])
				}
				if err != nil {
					return bad("%v", err)
				}
				got++
				entries++
			}
		case recTrailer:
			if skipped != nil {
				// Salvage after skipping: the counts cannot match.
				drop()
				installed = true
				return fail(skipped)
			}
			if cur != nil && got != want {
				return bad("table %q announced %d entries but has %d", cur.Name, want, got)
			}
			if len(items) != 4 {
				return bad("a malformed trailer")
			}
			t, _ := wire.ItemUint(items[1])
			e, _ := wire.ItemUint(items[2])
			r, _ := wire.ItemUint(items[3])
			if t != tables || e != entries || r != records || t != res.info.Tables {
				return bad("the trailer counts %d tables, %d entries and %d records; the file has %d, %d and %d", t, e, r, tables, entries, records)
			}
			if rr.off != size {
				return fail(&DamageError{File: path, Offset: rr.off, Reason: "data after the trailer"})
			}
			if err := finish(off); err != nil {
				return fail(err)
			}
			installed = true
			if headerErr != nil {
				return res, headerErr // every record intact: only the header is damaged
			}
			return res, nil
		default:
			return bad("unknown record type %d", tag)
		}
		records++
	}
}

// snapOptions is the options map of a table record (version 3).
type snapOptions struct {
	Expires int64  `cbor:"expires,omitempty"`
	TTL     int64  `cbor:"ttl,omitempty"`
	Evict   string `cbor:"evict,omitempty"`
	MaxLen  int    `cbor:"max_len,omitempty"`
}

// tableOptions is the options map of a table, empty when it has none.
func tableOptions(o store.TableOptions) map[string]any {
	m := map[string]any{}
	if o.Expires != 0 {
		m["expires"] = o.Expires
	}
	if o.DefaultTTL != 0 {
		m["ttl"] = o.DefaultTTL
	}
	if o.Evict {
		m["evict"] = "lru"
	}
	if o.MaxLen != 0 {
		m["max_len"] = o.MaxLen
	}
	return m
}

// snapshotTime is the creation time recorded in a snapshot.
func (i snapInfo) time() time.Time { return time.Unix(0, i.Created) }
