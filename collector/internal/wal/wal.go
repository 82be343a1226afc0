// Package wal is the collector's write-ahead log: an export is acknowledged once its points
// are on disk here, and a drainer moves them into InfluxDB at whatever pace InfluxDB allows.
//
// Durability contract. Append returns nil only after its records are fsynced (a group commit:
// appends that arrive within Options.SyncInterval, or while an fsync runs, share one), so a
// record whose Append returned nil survives SIGKILL and power loss alike, and is delivered to
// InfluxDB at least once; a replay after a crash rewrites the same line protocol, which
// InfluxDB stores once (a point is identified by measurement, tags and time). The log is
// bounded in bytes: when a record would not fit, Append fails with ErrFull and the sender is
// asked to retry later, so nothing acknowledged is ever dropped to make room. Records leave
// the log only through Commit, which the drainer calls after InfluxDB accepted them (or after
// the lines it refused permanently were written to the dead-letter file).
//
// On-disk format and crashes. The log is a directory of segment files (%020d.wal, about
// SegmentBytes each) and a checkpoint file holding the read position. Every record is framed
// as length (uint32, little endian) + CRC-32C (over the length and the payload) + payload. A
// crash can leave the tail of the last segment torn: Open finds the first record that is short
// or fails its CRC, truncates the segment there, logs a warning and counts it (Stats.TornTails,
// Stats.TruncatedBytes); a torn tail is never a reason to refuse to start, and it never holds
// an acknowledged record, because those were fsynced before Append returned. Damage inside an
// older segment (a failing disk, not a crash) is skipped up to the segment's end, logged and
// counted in Stats.CorruptBytes.
//
// Record kinds. Every record of a segment has the segment's Kind, written in its header
// (byte 5 of the magic number): KindLineProtocol (InfluxDB line protocol, what a collector
// writing InfluxDB appends, and the only kind before forwarding existed, so segments written
// by earlier versions read as such unchanged) or KindOTLP (a serialized OTLP export request,
// what a collector forwarding to a central one appends, package forward). A log opened with
// another Kind than its last segment's starts a new segment, so one log can hold both kinds
// in order after a collector switched roles; the records' frames are the same in both. A
// version from before record kinds refuses a log whose last segment is KindOTLP ("not a
// fleetwatt wal segment"), but would read older KindOTLP segments as line protocol: downgrade
// a forwarding collector only with an empty log. A segment header damaged on disk (or of a
// kind from a newer version) in an older segment is skipped and counted in
// Stats.CorruptBytes.
package wal

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults for Options.
const (
	DefaultSegmentBytes = 64 << 20 // 64 MiB: large enough that rolling is rare, small enough to free space soon after draining
	DefaultMaxBytes     = 8 << 30  // 8 GiB
	DefaultSyncInterval = 10 * time.Millisecond
)

// Sentinel errors.
var (
	// ErrFull is returned by Append when the records would take the log past MaxBytes.
	// Nothing was written; the sender should retry later.
	ErrFull = errors.New("write-ahead log full")
	// ErrTooLarge is returned by Append for records larger than a segment.
	ErrTooLarge = errors.New("records larger than a wal segment")
	// ErrClosed is returned after Close.
	ErrClosed = errors.New("write-ahead log closed")
)

// Kind is what the records of a segment hold; see the package doc.
type Kind byte

// Record kinds.
const (
	// KindLineProtocol records are InfluxDB line protocol, ms precision, each line ending in
	// "\n" (Writer). It is the zero Kind, and the kind of every segment of earlier versions.
	KindLineProtocol Kind = 0
	// KindOTLP records are serialized OTLP ExportMetricsServiceRequests (protobuf), as a
	// regional collector accepted them, to be forwarded (package forward).
	KindOTLP Kind = 1
	// kindUnreadable marks a complete segment whose header is damaged: the reader skips it.
	kindUnreadable Kind = 0xff
)

func (k Kind) String() string {
	switch k {
	case KindLineProtocol:
		return "line-protocol"
	case KindOTLP:
		return "otlp"
	}
	return fmt.Sprintf("kind-%d", byte(k))
}

// Options configure a WAL.
type Options struct {
	// Dir holds the segments and the checkpoint; it is created if missing. One WAL per
	// directory: two processes sharing one would corrupt it.
	Dir string
	// MaxBytes bounds the segment files together (bytes); 0 means DefaultMaxBytes. It must
	// be at least twice SegmentBytes, so that a new segment can start while the oldest drains.
	MaxBytes int64
	// SegmentBytes is the size (bytes) at which a new segment starts; 0 means
	// DefaultSegmentBytes. Space is freed a whole segment at a time, once drained.
	SegmentBytes int64
	// SyncInterval batches fsyncs: the appends within the window after the first share one
	// fsync, trading up to SyncInterval of latency for fewer fsyncs. 0 means fsync as soon as
	// an append is written (appends arriving during that fsync still share the next one).
	// Negative is treated as 0.
	SyncInterval time.Duration
	// Kind is the kind of the records this process appends (KindLineProtocol, the zero
	// value, or KindOTLP). Records of the other kind already in the log are still read, each
	// with its own Kind.
	Kind Kind
}

// Position is a place in the log: a segment and a byte offset in it.
type Position struct {
	Segment uint64
	Offset  int64 // bytes from the start of the segment file
}

func (p Position) before(q Position) bool {
	return p.Segment < q.Segment || (p.Segment == q.Segment && p.Offset < q.Offset)
}

// Record is one record read from the log.
type Record struct {
	Data []byte   // the payload, owned by the caller
	End  Position // the position after the record: Commit(End) once it is stored
	Kind Kind     // what Data holds: its segment's kind
}

// Stats are the log's counters since Open, and its current size.
type Stats struct {
	Bytes           int64 // segment bytes on disk now, drained or not
	Segments        int64 // segment files on disk now
	AppendedRecords int64 // records appended
	AppendedBytes   int64 // payload bytes appended
	FullRefusals    int64 // Append calls refused with ErrFull
	Syncs           int64 // fsyncs of appended data (fewer than appends: group commit)
	TornTails       int64 // torn tails truncated by Open (a crash during a write)
	TruncatedBytes  int64 // bytes those truncations removed
	CorruptBytes    int64 // bytes skipped while reading because a record failed its CRC
	// PendingBytes are the segment bytes after the last committed position: what is still
	// to be drained (frames included, segment headers not).
	PendingBytes int64
}

const (
	// segmentMagic starts every segment: "FWWAL", the records' Kind, format version 1
	// (uint16, big endian). It is the magic number of a KindLineProtocol segment; magic
	// gives the others'.
	segmentMagic    = "FWWAL\x00\x00\x01"
	kindOffset      = 5
	headerSize      = int64(len(segmentMagic))
	frameSize       = 8 // uint32 length + uint32 CRC-32C
	checkpointMagic = "FWWALCP1"
	checkpointSize  = len(checkpointMagic) + 8 + 8 + 4
	checkpointName  = "checkpoint"
	segmentSuffix   = ".wal"
	// maxRecordBytes rejects absurd lengths read back (a corrupt length field) before they
	// are allocated.
	maxRecordBytes = 1 << 30
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

type segment struct {
	id   uint64
	size int64 // bytes written; final once the segment is not the last
	kind Kind  // of every record in it, from its header
}

// magic returns the header of a segment of kind k.
func magic(k Kind) []byte {
	m := []byte(segmentMagic)
	m[kindOffset] = byte(k)
	return m
}

// parseMagic returns the kind a segment header names; an error when it is not a header of
// this format (another file, or a future kind).
func parseMagic(m []byte) (Kind, error) {
	if len(m) != int(headerSize) {
		return 0, fmt.Errorf("not a fleetwatt wal segment (header %q)", m)
	}
	k := Kind(m[kindOffset])
	if k != KindLineProtocol && k != KindOTLP {
		return 0, fmt.Errorf("not a fleetwatt wal segment (magic %q)", m)
	}
	if string(m) != string(magic(k)) {
		return 0, fmt.Errorf("not a fleetwatt wal segment (magic %q)", m)
	}
	return k, nil
}

// syncGen is one group commit: the appends written before it was swapped out wait on done.
type syncGen struct {
	done chan struct{}
	err  error
}

func newGen() *syncGen { return &syncGen{done: make(chan struct{})} }

// WAL is a write-ahead log. Append is safe for concurrent use; Next, TryNext and Commit are
// for a single reader (the drainer).
type WAL struct {
	opts Options
	log  *slog.Logger

	mu        sync.Mutex
	segs      []segment // ascending; the last is being appended to
	active    *os.File
	total     int64      // bytes of all segments
	retired   []*os.File // rolled segments the syncer still has to fsync and close
	gen       *syncGen
	durable   Position      // everything before it is fsynced
	durableCh chan struct{} // closed (and replaced) when durable advances
	failed    error         // a failed write or fsync: the log refuses appends from then on
	closed    bool
	committed Position // the last committed (or, after Open, the checkpoint's) position
	full      bool     // an Append was refused with ErrFull since space was last freed
	buf       []byte   // frame scratch for Append, guarded by mu

	kick     chan struct{}
	stop     chan struct{}
	syncDone chan struct{}

	// Reader state, used by the single reader only.
	rpos  Position
	rfile *os.File
	rid   uint64
	rhdr  [frameSize]byte

	appendedRecords atomic.Int64
	appendedBytes   atomic.Int64
	fullRefusals    atomic.Int64
	syncs           atomic.Int64
	tornTails       atomic.Int64
	truncatedBytes  atomic.Int64
	corruptBytes    atomic.Int64
}

// Open opens or creates the log in opts.Dir, truncating a torn tail left by a crash, and
// starts its fsync goroutine; Close stops it.
func Open(opts Options, log *slog.Logger) (*WAL, error) {
	if opts.Dir == "" {
		return nil, errors.New("open wal: no directory")
	}
	if opts.SegmentBytes <= 0 {
		opts.SegmentBytes = DefaultSegmentBytes
	}
	if opts.MaxBytes <= 0 {
		opts.MaxBytes = DefaultMaxBytes
	}
	opts.SyncInterval = max(opts.SyncInterval, 0)
	if opts.MaxBytes < 2*opts.SegmentBytes {
		return nil, fmt.Errorf("open wal %s: max bytes %d must be at least twice the segment size %d", opts.Dir, opts.MaxBytes, opts.SegmentBytes)
	}
	if err := os.MkdirAll(opts.Dir, 0o750); err != nil {
		return nil, fmt.Errorf("open wal: %w", err)
	}
	w := &WAL{
		opts:      opts,
		log:       log.With("wal_dir", opts.Dir),
		gen:       newGen(),
		durableCh: make(chan struct{}),
		kick:      make(chan struct{}, 1),
		stop:      make(chan struct{}),
		syncDone:  make(chan struct{}),
	}
	if err := w.load(); err != nil {
		if w.active != nil {
			w.active.Close()
		}
		return nil, fmt.Errorf("open wal %s: %w", opts.Dir, err)
	}
	go w.syncLoop()
	return w, nil
}

// load reads the directory: segments, checkpoint, the last segment's valid end.
func (w *WAL) load() error {
	entries, err := os.ReadDir(w.opts.Dir)
	if err != nil {
		return err
	}
	var ids []uint64
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), segmentSuffix)
		if !ok || !e.Type().IsRegular() {
			continue
		}
		id, err := strconv.ParseUint(name, 10, 64)
		if err != nil {
			continue
		}
		ids = append(ids, id)
	}
	slices.Sort(ids)

	cp, ok, err := readCheckpoint(w.opts.Dir)
	if err != nil {
		// The checkpoint is written by rename, so this is damage rather than a crash.
		// Replaying from the oldest segment loses nothing and only rewrites points.
		w.log.Warn("wal checkpoint unreadable; replaying from the oldest segment", "error", err)
		ok = false
	}
	if !ok {
		cp = Position{}
		if len(ids) > 0 {
			cp = Position{Segment: ids[0], Offset: headerSize}
		}
	}
	// Segments before the checkpoint were drained; a crash may have kept them from being
	// deleted.
	for len(ids) > 0 && ids[0] < cp.Segment {
		if err := os.Remove(w.segPath(ids[0])); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		ids = ids[1:]
	}
	if len(ids) > 0 && ids[0] > cp.Segment {
		cp = Position{Segment: ids[0], Offset: headerSize}
	}
	if len(ids) == 0 {
		id := max(cp.Segment+1, 1)
		f, err := w.createSegment(id, w.opts.Kind)
		if err != nil {
			return err
		}
		w.active = f
		w.segs = []segment{{id: id, size: headerSize, kind: w.opts.Kind}}
		w.total = headerSize
		cp = Position{Segment: id, Offset: headerSize}
	} else {
		for _, id := range ids[:len(ids)-1] {
			seg, err := w.statSegment(id)
			if err != nil {
				return err
			}
			w.segs = append(w.segs, seg)
			w.total += seg.size
		}
		last := ids[len(ids)-1]
		f, seg, err := w.recoverLast(last)
		if err != nil {
			return err
		}
		w.active = f
		w.segs = append(w.segs, seg)
		w.total += seg.size
		if cp.Segment == last && cp.Offset > seg.size {
			w.log.Warn("wal checkpoint beyond the end of the log; reading from its end", "checkpoint_offset", cp.Offset, "end", seg.size)
			cp.Offset = seg.size
		}
		if seg.kind != w.opts.Kind {
			// The collector switched roles: what the last segment holds is read as its
			// kind, and this process appends to a segment of its own kind.
			w.log.Info("wal: starting a segment of another record kind", "previous_kind", seg.kind.String(), "kind", w.opts.Kind.String())
			if err := f.Close(); err != nil {
				return err
			}
			w.active = nil
			if w.active, err = w.createSegment(last+1, w.opts.Kind); err != nil {
				return err
			}
			w.segs = append(w.segs, segment{id: last + 1, size: headerSize, kind: w.opts.Kind})
			w.total += headerSize
		}
	}
	cp.Offset = max(cp.Offset, headerSize)
	last := w.segs[len(w.segs)-1]
	w.durable = Position{Segment: last.id, Offset: last.size}
	w.rpos = cp
	w.committed = cp
	return syncDir(w.opts.Dir)
}

// statSegment returns a complete segment's size and kind.
func (w *WAL) statSegment(id uint64) (segment, error) {
	f, err := os.Open(w.segPath(id))
	if err != nil {
		return segment{}, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return segment{}, err
	}
	seg := segment{id: id, size: fi.Size()}
	if fi.Size() < headerSize {
		// Only the last segment can be torn at its header; an older one so short holds
		// nothing. Its kind does not matter: the reader finds no record in it.
		return seg, nil
	}
	m := make([]byte, headerSize)
	if _, err := f.ReadAt(m, 0); err != nil {
		return segment{}, err
	}
	if seg.kind, err = parseMagic(m); err != nil {
		// Damage (or a kind from a newer version): like a corrupt record, skipped and
		// counted rather than a reason not to start.
		w.corruptBytes.Add(seg.size)
		w.log.Error("wal: unreadable segment header; skipping the segment", "segment", filepath.Base(w.segPath(id)),
			"skipped_bytes", seg.size, "error", err)
		seg.kind = kindUnreadable
	}
	return seg, nil
}

// recoverLast opens the last segment for appending after its last valid record, truncating
// whatever follows it (a write torn by a crash).
func (w *WAL) recoverLast(id uint64) (*os.File, segment, error) {
	path := w.segPath(id)
	f, err := os.OpenFile(path, os.O_RDWR, 0o600)
	if err != nil {
		return nil, segment{}, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, segment{}, err
	}
	size := fi.Size()
	end, kind, err := validEnd(f, size)
	if err != nil {
		f.Close()
		return nil, segment{}, fmt.Errorf("scan %s: %w", path, err)
	}
	if end == 0 { // the header itself is missing or torn: the segment was just created
		kind = w.opts.Kind
		if _, err := f.WriteAt(magic(kind), 0); err != nil {
			f.Close()
			return nil, segment{}, err
		}
		end = headerSize
	}
	if end < size {
		w.tornTails.Add(1)
		w.truncatedBytes.Add(size - end)
		w.log.Warn("wal: truncating a torn tail left by a crash (no acknowledged record is in it)",
			"segment", filepath.Base(path), "valid_bytes", end, "truncated_bytes", size-end)
		if err := f.Truncate(end); err != nil {
			f.Close()
			return nil, segment{}, err
		}
	}
	// What the crashed process wrote may still be only in the page cache; make it durable
	// before treating it as such.
	if err := f.Sync(); err != nil {
		f.Close()
		return nil, segment{}, err
	}
	return f, segment{id: id, size: end, kind: kind}, nil
}

// validEnd returns the offset after the last valid record of a segment of size bytes and
// the segment's kind, or 0 if even the header is incomplete. A wrong magic number is an
// error: not our file.
func validEnd(r io.ReaderAt, size int64) (int64, Kind, error) {
	if size < headerSize {
		return 0, 0, nil
	}
	m := make([]byte, headerSize)
	if _, err := r.ReadAt(m, 0); err != nil {
		return 0, 0, err
	}
	kind, err := parseMagic(m)
	if err != nil {
		return 0, 0, err
	}
	off := headerSize
	var frame [frameSize]byte
	var payload []byte
	for off+frameSize <= size {
		if _, err := r.ReadAt(frame[:], off); err != nil {
			return 0, 0, err
		}
		n := int64(binary.LittleEndian.Uint32(frame[0:4]))
		if n > maxRecordBytes || off+frameSize+n > size {
			break
		}
		payload = slices.Grow(payload[:0], int(n))[:n]
		if _, err := r.ReadAt(payload, off+frameSize); err != nil {
			return 0, 0, err
		}
		if checksum(frame[0:4], payload) != binary.LittleEndian.Uint32(frame[4:8]) {
			break
		}
		off += frameSize + n
	}
	return off, kind, nil
}

func checksum(length, payload []byte) uint32 {
	return crc32.Update(crc32.Checksum(length, castagnoli), castagnoli, payload)
}

func (w *WAL) segPath(id uint64) string {
	return filepath.Join(w.opts.Dir, fmt.Sprintf("%020d%s", id, segmentSuffix))
}

func (w *WAL) createSegment(id uint64, kind Kind) (*os.File, error) {
	f, err := os.OpenFile(w.segPath(id), os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, err
	}
	if _, err := f.WriteAt(magic(kind), 0); err != nil {
		f.Close()
		os.Remove(w.segPath(id))
		return nil, err
	}
	return f, nil
}

// Append writes records and returns once they are fsynced, with ErrFull (nothing written)
// when they would take the log past MaxBytes. The records of one call go into one segment,
// so their total must not exceed SegmentBytes. When ctx ends first it returns ctx.Err(); the
// records may still become durable and be delivered, which a retry makes harmless.
func (w *WAL) Append(ctx context.Context, records ...[]byte) error {
	var size, payload int64
	for _, r := range records {
		size += frameSize + int64(len(r))
		payload += int64(len(r))
	}
	if size == 0 {
		return nil
	}
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return ErrClosed
	}
	if w.failed != nil {
		err := w.failed
		w.mu.Unlock()
		return fmt.Errorf("wal %s failed earlier, restart the collector: %w", w.opts.Dir, err)
	}
	if size > w.opts.SegmentBytes-headerSize {
		w.mu.Unlock()
		return fmt.Errorf("append %d bytes: %w (%d bytes)", size, ErrTooLarge, w.opts.SegmentBytes)
	}
	cur := &w.segs[len(w.segs)-1]
	roll := cur.size+size > w.opts.SegmentBytes && cur.size > headerSize
	need := size
	if roll {
		need += headerSize
	}
	if w.total+need > w.opts.MaxBytes {
		w.full = true
		w.mu.Unlock()
		w.fullRefusals.Add(1)
		return ErrFull
	}
	if roll {
		if err := w.roll(); err != nil {
			w.mu.Unlock()
			return fmt.Errorf("wal %s: start a segment: %w", w.opts.Dir, err)
		}
		cur = &w.segs[len(w.segs)-1]
	}
	buf := w.buf[:0]
	for _, r := range records {
		buf = binary.LittleEndian.AppendUint32(buf, uint32(len(r)))
		buf = binary.LittleEndian.AppendUint32(buf, checksum(buf[len(buf)-4:], r))
		buf = append(buf, r...)
	}
	if cap(buf) <= 1<<20 { // keep a typical frame buffer, not a rare huge one
		w.buf = buf
	}
	if _, err := w.active.WriteAt(buf, cur.size); err != nil {
		// A partial write must not stay in front of the next record: cut it off. If even
		// that fails the file's state is unknown, and the log stops taking appends.
		if terr := w.active.Truncate(cur.size); terr != nil {
			w.failed = errors.Join(err, terr)
			w.log.Error("wal write failed and could not be undone; refusing appends until restart", "error", w.failed)
		}
		w.mu.Unlock()
		return fmt.Errorf("wal %s: write: %w", w.opts.Dir, err)
	}
	cur.size += size
	w.total += size
	w.full = false
	g := w.gen
	w.mu.Unlock()
	w.appendedRecords.Add(int64(len(records)))
	w.appendedBytes.Add(payload)

	select {
	case w.kick <- struct{}{}:
	default: // a sync is already pending; it will cover these records
	}
	select {
	case <-g.done:
		if g.err != nil {
			return fmt.Errorf("wal %s: fsync: %w", w.opts.Dir, g.err)
		}
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// roll starts a new segment; the syncer fsyncs and closes the old one. Called with mu held.
func (w *WAL) roll() error {
	id := w.segs[len(w.segs)-1].id + 1
	f, err := w.createSegment(id, w.opts.Kind)
	if err != nil {
		return err
	}
	w.retired = append(w.retired, w.active)
	w.active = f
	w.segs = append(w.segs, segment{id: id, size: headerSize, kind: w.opts.Kind})
	w.total += headerSize
	return nil
}

// syncLoop is the group commit: it fsyncs what was appended, then releases the appenders
// waiting for it. One fsync covers every append written before it started.
func (w *WAL) syncLoop() {
	defer close(w.syncDone)
	for {
		select {
		case <-w.kick:
		case <-w.stop:
			w.syncOnce()
			return
		}
		if w.opts.SyncInterval > 0 {
			t := time.NewTimer(w.opts.SyncInterval)
			select {
			case <-t.C:
			case <-w.stop:
				t.Stop()
			}
		}
		w.syncOnce()
	}
}

func (w *WAL) syncOnce() {
	w.mu.Lock()
	g := w.gen
	w.gen = newGen()
	f, retired := w.active, w.retired
	w.retired = nil
	last := w.segs[len(w.segs)-1]
	pos := Position{Segment: last.id, Offset: last.size}
	unchanged := pos == w.durable && len(retired) == 0
	w.mu.Unlock()
	if unchanged {
		close(g.done)
		return
	}
	var errs []error
	for _, r := range retired {
		errs = append(errs, r.Sync(), r.Close())
	}
	if len(retired) > 0 {
		errs = append(errs, syncDir(w.opts.Dir)) // the new segment's directory entry
	}
	errs = append(errs, f.Sync())
	err := errors.Join(errs...)
	w.syncs.Add(1)
	w.mu.Lock()
	if err != nil {
		// After a failed fsync the kernel may have dropped the dirty pages; retrying
		// would report success for data that is gone (PostgreSQL's "fsyncgate").
		if w.failed == nil {
			w.failed = err
			w.log.Error("wal fsync failed; refusing appends until restart", "error", err)
		}
	} else {
		w.durable = pos
		close(w.durableCh)
		w.durableCh = make(chan struct{})
	}
	w.mu.Unlock()
	g.err = err
	close(g.done)
}

// Next returns the next durable record, waiting for one until ctx ends or the log closes.
func (w *WAL) Next(ctx context.Context) (Record, error) {
	for {
		w.mu.Lock()
		ch, closed := w.durableCh, w.closed
		w.mu.Unlock()
		if closed {
			return Record{}, ErrClosed
		}
		rec, ok, err := w.TryNext()
		if err != nil || ok {
			return rec, err
		}
		select {
		case <-ch:
		case <-w.stop:
		case <-ctx.Done():
			return Record{}, ctx.Err()
		}
	}
}

// TryNext returns the next durable record if there is one. Records appended but not yet
// fsynced are not returned: the checkpoint must never point past data a crash can lose.
func (w *WAL) TryNext() (Record, bool, error) {
	for {
		w.mu.Lock()
		durable := w.durable
		end, rolled, next, exists := w.segmentEnd(w.rpos.Segment)
		kind := w.kindOf(w.rpos.Segment)
		w.mu.Unlock()
		if !w.rpos.before(durable) {
			return Record{}, false, nil
		}
		if !exists || w.rpos.Offset >= end {
			if !rolled && exists {
				return Record{}, false, nil
			}
			w.closeReader()
			w.rpos = Position{Segment: next, Offset: headerSize}
			continue
		}
		if kind == kindUnreadable {
			w.rpos.Offset = end // counted when Open found it
			continue
		}
		if w.rpos.Segment == durable.Segment {
			end = durable.Offset
		}
		rec, err := w.readAt(end)
		if err != nil {
			var ce corruptError
			if !errors.As(err, &ce) {
				return Record{}, false, err
			}
			w.corruptBytes.Add(end - w.rpos.Offset)
			w.log.Error("wal: corrupt record; skipping the rest of the segment", "segment", filepath.Base(w.segPath(w.rpos.Segment)),
				"offset", w.rpos.Offset, "skipped_bytes", end-w.rpos.Offset, "error", err)
			w.rpos.Offset = end
			continue
		}
		rec.Kind = kind
		return rec, true, nil
	}
}

// kindOf returns the kind of segment id's records. Called with mu held.
func (w *WAL) kindOf(id uint64) Kind {
	for _, s := range w.segs {
		if s.id == id {
			return s.kind
		}
	}
	return w.opts.Kind
}

// segmentEnd says where segment id ends, whether it is complete (a later one exists), the
// next segment's id, and whether id exists. Called with mu held.
func (w *WAL) segmentEnd(id uint64) (end int64, rolled bool, next uint64, exists bool) {
	for i, s := range w.segs {
		if s.id == id {
			if i+1 < len(w.segs) {
				return s.size, true, w.segs[i+1].id, true
			}
			return s.size, false, 0, true
		}
		if s.id > id {
			return 0, true, s.id, false
		}
	}
	return 0, false, 0, false
}

type corruptError struct{ msg string }

func (e corruptError) Error() string { return e.msg }

// readAt reads the record at the read position, which lies before end.
func (w *WAL) readAt(end int64) (Record, error) {
	if w.rfile == nil || w.rid != w.rpos.Segment {
		w.closeReader()
		f, err := os.Open(w.segPath(w.rpos.Segment))
		if err != nil {
			return Record{}, fmt.Errorf("wal: open segment for reading: %w", err)
		}
		w.rfile, w.rid = f, w.rpos.Segment
	}
	off := w.rpos.Offset
	if off+frameSize > end {
		return Record{}, corruptError{"frame past the end of the segment"}
	}
	if _, err := w.rfile.ReadAt(w.rhdr[:], off); err != nil {
		return Record{}, fmt.Errorf("wal: read %s: %w", w.rfile.Name(), err)
	}
	n := int64(binary.LittleEndian.Uint32(w.rhdr[0:4]))
	if n > maxRecordBytes || off+frameSize+n > end {
		return Record{}, corruptError{fmt.Sprintf("record length %d past the end of the segment", n)}
	}
	data := make([]byte, n)
	if _, err := w.rfile.ReadAt(data, off+frameSize); err != nil {
		return Record{}, fmt.Errorf("wal: read %s: %w", w.rfile.Name(), err)
	}
	if checksum(w.rhdr[0:4], data) != binary.LittleEndian.Uint32(w.rhdr[4:8]) {
		return Record{}, corruptError{"checksum mismatch"}
	}
	w.rpos.Offset = off + frameSize + n
	return Record{Data: data, End: w.rpos}, nil
}

func (w *WAL) closeReader() {
	if w.rfile != nil {
		w.rfile.Close()
		w.rfile = nil
	}
}

// Commit records that everything before pos is stored downstream: it persists pos as the
// checkpoint (fsynced) and deletes the segments wholly before it. After a restart reading
// resumes at the last committed position.
func (w *WAL) Commit(pos Position) error {
	w.mu.Lock()
	// A position at the very end of a complete segment is the start of the next one, so
	// that the drained segment can go.
	if end, rolled, next, exists := w.segmentEnd(pos.Segment); exists && rolled && pos.Offset >= end {
		pos = Position{Segment: next, Offset: headerSize}
	}
	w.mu.Unlock()
	if err := writeCheckpoint(w.opts.Dir, pos); err != nil {
		return fmt.Errorf("wal %s: write checkpoint: %w", w.opts.Dir, err)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.committed.before(pos) {
		w.committed = pos
	}
	var errs []error
	for len(w.segs) > 1 && w.segs[0].id < pos.Segment {
		if err := os.Remove(w.segPath(w.segs[0].id)); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
			break
		}
		w.total -= w.segs[0].size
		w.segs = w.segs[1:]
		w.full = false // the next append may fit again
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("wal %s: delete drained segment: %w", w.opts.Dir, err)
	}
	return nil
}

// Close fsyncs what was appended, releases the appenders waiting for it, and closes the
// files. Appends after Close fail with ErrClosed.
func (w *WAL) Close() error {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return nil
	}
	w.closed = true
	w.mu.Unlock()
	close(w.stop)
	<-w.syncDone
	w.mu.Lock()
	defer w.mu.Unlock()
	w.closeReader()
	err := w.active.Close()
	for _, r := range w.retired {
		err = errors.Join(err, r.Close())
	}
	w.retired = nil
	if err != nil {
		return fmt.Errorf("close wal %s: %w", w.opts.Dir, err)
	}
	return nil
}

// Dir is the log's directory.
func (w *WAL) Dir() string { return w.opts.Dir }

// Ready returns nil while the log takes appends: ErrClosed after Close, the error that made
// it stop after a failed write or fsync, and ErrFull from an append refused for want of room
// until draining frees a segment. A collector that acknowledges exports once they are in the
// log is ready exactly then, whatever its downstream does.
func (w *WAL) Ready() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	switch {
	case w.closed:
		return ErrClosed
	case w.failed != nil:
		return fmt.Errorf("wal %s failed, restart the collector: %w", w.opts.Dir, w.failed)
	case w.full:
		return fmt.Errorf("wal %s: %w (%d of %d bytes); waiting for the drainer", w.opts.Dir, ErrFull, w.total, w.opts.MaxBytes)
	}
	return nil
}

// PendingBytes returns the bytes of records of kind k not yet committed (frames included).
func (w *WAL) PendingBytes(k Kind) int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.pending(func(s segment) bool { return s.kind == k })
}

// pending sums the uncommitted bytes of the segments keep selects. Called with mu held.
func (w *WAL) pending(keep func(segment) bool) int64 {
	var n int64
	for _, s := range w.segs {
		switch {
		case !keep(s) || s.id < w.committed.Segment:
		case s.id == w.committed.Segment:
			n += max(s.size-max(w.committed.Offset, headerSize), 0)
		default:
			n += max(s.size-headerSize, 0)
		}
	}
	return n
}

// Stats returns the counters.
func (w *WAL) Stats() Stats {
	w.mu.Lock()
	bytes, segs := w.total, int64(len(w.segs))
	pending := w.pending(func(segment) bool { return true })
	w.mu.Unlock()
	return Stats{
		PendingBytes:    pending,
		Bytes:           bytes,
		Segments:        segs,
		AppendedRecords: w.appendedRecords.Load(),
		AppendedBytes:   w.appendedBytes.Load(),
		FullRefusals:    w.fullRefusals.Load(),
		Syncs:           w.syncs.Load(),
		TornTails:       w.tornTails.Load(),
		TruncatedBytes:  w.truncatedBytes.Load(),
		CorruptBytes:    w.corruptBytes.Load(),
	}
}

// readCheckpoint returns the persisted read position; ok is false when there is none.
func readCheckpoint(dir string) (Position, bool, error) {
	b, err := os.ReadFile(filepath.Join(dir, checkpointName))
	if errors.Is(err, os.ErrNotExist) {
		return Position{}, false, nil
	}
	if err != nil {
		return Position{}, false, err
	}
	if len(b) != checkpointSize || string(b[:8]) != checkpointMagic ||
		crc32.Checksum(b[:checkpointSize-4], castagnoli) != binary.LittleEndian.Uint32(b[checkpointSize-4:]) {
		return Position{}, false, errors.New("checkpoint corrupt")
	}
	return Position{
		Segment: binary.LittleEndian.Uint64(b[8:16]),
		Offset:  int64(binary.LittleEndian.Uint64(b[16:24])),
	}, true, nil
}

// writeCheckpoint replaces the checkpoint atomically: a temporary file, fsynced, renamed
// over the old one, and the directory fsynced, so a crash leaves the old or the new one.
func writeCheckpoint(dir string, pos Position) error {
	b := make([]byte, 0, checkpointSize)
	b = append(b, checkpointMagic...)
	b = binary.LittleEndian.AppendUint64(b, pos.Segment)
	b = binary.LittleEndian.AppendUint64(b, uint64(pos.Offset))
	b = binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
	tmp := filepath.Join(dir, checkpointName+".tmp")
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, filepath.Join(dir, checkpointName)); err != nil {
		return err
	}
	return syncDir(dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
