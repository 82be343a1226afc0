package export

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"

	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	collectormetrics "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	"google.golang.org/protobuf/proto"
)

// The spool is a directory with one file per batch, named by a zero-padded sequence number
// ("00000000000000000042.batch") so that a directory listing sorted by name is the replay
// order. One file per batch keeps every operation simple and crash-safe: a batch is written
// to a temporary name, fsynced, renamed into place and the directory fsynced, so a file with
// a batch name is complete or the rename never happened; delivering a batch deletes one file;
// dropping the oldest deletes one file. At 10 s intervals an outage of a day is 8,640 files,
// which any Linux filesystem lists in milliseconds.
//
// The bound counts each file's size rounded up to a 4 KiB filesystem block, which is what it
// takes on disk: a typical batch of 5 KiB occupies 8 KiB.
//
// A file is a 16-byte header and the batch as an OTLP ExportMetricsServiceRequest:
//
//	magic "FWS1" | points uint32 | payload length uint32 | CRC-32C of payload uint32 | payload
//
// (little endian). The point count lets a dropped batch be counted without decoding it.

const (
	spoolMagic  = "FWS1"
	spoolHeader = 16
	spoolSuffix = ".batch"
	spoolTemp   = ".tmp-" // prefix of files being written; left over only by a crash
	spoolBlock  = 4096    // filesystem block: the unit of a file's disk use
)

// diskSize is the disk use of a file of n bytes.
func diskSize(n int64) int64 { return (n + spoolBlock - 1) / spoolBlock * spoolBlock }

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// errCorrupt marks a spool file that cannot be a complete batch: torn, truncated or altered.
var errCorrupt = errors.New("corrupt spool file")

// Spool keeps batches on disk, oldest first, within a bound in bytes. It is safe for
// concurrent use; the Sender is its only writer.
type Spool struct {
	dir      string
	maxBytes int64
	log      *slog.Logger

	mu      sync.Mutex
	entries []spoolEntry // oldest first
	bytes   int64
	next    uint64 // sequence number of the next batch
	full    bool   // dropping the oldest batches since the spool was last empty
	stats   SpoolStats
}

type spoolEntry struct {
	seq    uint64
	size   int64 // disk use, bytes (see diskSize)
	points int
}

// SpoolStats are a Spool's counters since it was opened, and what it holds now.
type SpoolStats struct {
	// Batches and Bytes (disk use) are held now.
	Batches int
	Bytes   int64
	// Written counts batches written to disk; Dropped and DroppedPoints those deleted
	// unsent to stay within the bound; Corrupt the files found torn or altered and skipped.
	Written, Dropped, DroppedPoints, Corrupt uint64
}

// OpenSpool opens the spool in dir, creating it (mode 0700) if needed, and indexes the
// batches an earlier run left. Files that cannot be complete batches are deleted, counted
// and reported: they are never fatal. maxBytes bounds the files' disk use.
func OpenSpool(dir string, maxBytes int64, log *slog.Logger) (*Spool, error) {
	if maxBytes < spoolBlock {
		return nil, fmt.Errorf("open spool %s: bound of %d bytes is too small", dir, maxBytes)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create spool directory: %w", err)
	}
	sp := &Spool{dir: dir, maxBytes: maxBytes, log: log.With("spool", dir)}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("list spool: %w", err)
	}
	for _, e := range ents {
		name := e.Name()
		if strings.HasPrefix(name, spoolTemp) {
			// A write that a crash interrupted before its rename: never acknowledged as
			// spooled, so nothing is lost by removing it.
			_ = os.Remove(filepath.Join(dir, name))
			continue
		}
		seq, ok := parseSpoolName(name)
		if !ok || !e.Type().IsRegular() {
			continue // not ours: leave it alone
		}
		ent, err := sp.index(seq)
		if err != nil {
			sp.discard(seq, err)
			continue
		}
		sp.entries = append(sp.entries, ent)
		sp.bytes += ent.size
	}
	slices.SortFunc(sp.entries, func(a, b spoolEntry) int { return compareSeq(a.seq, b.seq) })
	if n := len(sp.entries); n > 0 {
		sp.next = sp.entries[n-1].seq + 1
		sp.log.Info("spool holds batches from an earlier run; they are sent first",
			"batches", n, "bytes", sp.bytes)
	}
	sp.mu.Lock()
	sp.makeRoom(0) // the bound may have shrunk since
	sp.mu.Unlock()
	return sp, nil
}

func compareSeq(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func spoolName(seq uint64) string { return fmt.Sprintf("%020d%s", seq, spoolSuffix) }

func parseSpoolName(name string) (uint64, bool) {
	digits, ok := strings.CutSuffix(name, spoolSuffix)
	if !ok || len(digits) != 20 {
		return 0, false
	}
	seq, err := strconv.ParseUint(digits, 10, 64)
	return seq, err == nil
}

func (sp *Spool) path(seq uint64) string { return filepath.Join(sp.dir, spoolName(seq)) }

// index reads the header of batch seq and checks that the file is as long as it says: a
// torn write shows here. The checksum is verified when the batch is read for sending.
func (sp *Spool) index(seq uint64) (spoolEntry, error) {
	f, err := os.Open(sp.path(seq))
	if err != nil {
		return spoolEntry{}, fmt.Errorf("open spooled batch: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return spoolEntry{}, fmt.Errorf("stat spooled batch: %w", err)
	}
	var h [spoolHeader]byte
	if _, err := io.ReadFull(f, h[:]); err != nil {
		return spoolEntry{}, fmt.Errorf("read header of %s: %w (%w)", f.Name(), errCorrupt, err)
	}
	points, n, _, err := parseHeader(h[:])
	if err != nil {
		return spoolEntry{}, fmt.Errorf("%s: %w", f.Name(), err)
	}
	if st.Size() != spoolHeader+int64(n) {
		return spoolEntry{}, fmt.Errorf("%s: %d bytes, header says %d: %w", f.Name(), st.Size(), spoolHeader+int64(n), errCorrupt)
	}
	return spoolEntry{seq: seq, size: diskSize(st.Size()), points: int(points)}, nil
}

func parseHeader(h []byte) (points, length, sum uint32, err error) {
	if len(h) < spoolHeader || string(h[:4]) != spoolMagic {
		return 0, 0, 0, fmt.Errorf("bad magic: %w", errCorrupt)
	}
	return binary.LittleEndian.Uint32(h[4:]), binary.LittleEndian.Uint32(h[8:]), binary.LittleEndian.Uint32(h[12:]), nil
}

// encodeBatch returns rm as a spool file's content.
func encodeBatch(rm *metricdata.ResourceMetrics) ([]byte, error) {
	req, err := toOTLP(rm)
	if err != nil {
		return nil, fmt.Errorf("encode batch: %w", err)
	}
	payload, err := proto.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("marshal batch: %w", err)
	}
	b := make([]byte, spoolHeader, spoolHeader+len(payload))
	copy(b, spoolMagic)
	binary.LittleEndian.PutUint32(b[4:], uint32(min(Points(rm), 1<<32-1))) //nolint:gosec // G115: clamped
	binary.LittleEndian.PutUint32(b[8:], uint32(len(payload)))             //nolint:gosec // G115: batches are far below 4 GiB
	binary.LittleEndian.PutUint32(b[12:], crc32.Checksum(payload, castagnoli))
	return append(b, payload...), nil
}

// decodeBatch parses a spool file's content.
func decodeBatch(b []byte) (*metricdata.ResourceMetrics, error) {
	_, n, sum, err := parseHeader(b)
	if err != nil {
		return nil, err
	}
	payload := b[spoolHeader:]
	if uint64(len(payload)) != uint64(n) {
		return nil, fmt.Errorf("payload of %d bytes, header says %d: %w", len(payload), n, errCorrupt)
	}
	if crc32.Checksum(payload, castagnoli) != sum {
		return nil, fmt.Errorf("checksum mismatch: %w", errCorrupt)
	}
	var req collectormetrics.ExportMetricsServiceRequest
	if err := proto.Unmarshal(payload, &req); err != nil {
		return nil, fmt.Errorf("unmarshal batch: %w (%w)", errCorrupt, err)
	}
	rm, err := fromOTLP(&req)
	if err != nil {
		return nil, fmt.Errorf("decode batch: %w (%w)", errCorrupt, err)
	}
	return rm, nil
}

// Append writes rm to the spool durably, deleting the oldest batches when the bound would
// be exceeded. A batch larger than the whole bound is dropped and counted.
func (sp *Spool) Append(rm *metricdata.ResourceMetrics) error {
	b, err := encodeBatch(rm)
	if err != nil {
		return err
	}
	size := diskSize(int64(len(b)))
	sp.mu.Lock()
	defer sp.mu.Unlock()
	if size > sp.maxBytes {
		sp.countDrop(Points(rm))
		return fmt.Errorf("spool batch of %d bytes: larger than the bound of %d", size, sp.maxBytes)
	}
	sp.makeRoom(size)
	seq := sp.next
	if err := writeDurably(sp.dir, spoolName(seq), b); err != nil {
		return err
	}
	sp.next++
	sp.entries = append(sp.entries, spoolEntry{seq: seq, size: size, points: Points(rm)})
	sp.bytes += size
	sp.stats.Written++
	return nil
}

// makeRoom deletes the oldest batches until size more bytes fit. sp.mu is held.
func (sp *Spool) makeRoom(size int64) {
	for len(sp.entries) > 0 && sp.bytes+size > sp.maxBytes {
		old := sp.entries[0]
		if err := os.Remove(sp.path(old.seq)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			sp.log.Warn("spool: cannot delete the oldest batch", "err", err)
		}
		sp.pop()
		sp.countDrop(old.points)
	}
}

// countDrop counts a batch dropped for room and says so once per episode. sp.mu is held.
func (sp *Spool) countDrop(points int) {
	sp.stats.Dropped++
	sp.stats.DroppedPoints += uint64(points) //nolint:gosec // G115: a count
	if !sp.full {
		sp.full = true
		sp.log.Warn("spool full: dropping the oldest batches; the collector has been unreachable longer than the spool holds",
			"max_bytes", sp.maxBytes, "dropped_batches", sp.stats.Dropped)
	}
}

func (sp *Spool) pop() { sp.removeAt(0) }

// removeAt forgets entry i. sp.mu is held.
func (sp *Spool) removeAt(i int) {
	sp.bytes -= sp.entries[i].size
	sp.entries = slices.Delete(sp.entries, i, i+1)
	if len(sp.entries) == 0 && sp.full {
		sp.full = false
		sp.log.Info("spool drained after dropping batches", "dropped_batches", sp.stats.Dropped,
			"dropped_points", sp.stats.DroppedPoints)
	}
}

// discard deletes a file that is not a complete batch, and counts and reports it.
func (sp *Spool) discard(seq uint64, why error) {
	sp.stats.Corrupt++
	sp.log.Warn("spool: skipping a corrupt batch file", "file", spoolName(seq), "err", why)
	if err := os.Remove(sp.path(seq)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		sp.log.Warn("spool: cannot delete a corrupt batch file", "err", err)
	}
}

// writeDurably writes b to dir/name so that after a crash the file is either complete or
// absent: temporary file, fsync, rename, fsync of the directory.
func writeDurably(dir, name string, b []byte) error {
	f, err := os.CreateTemp(dir, spoolTemp+"*")
	if err != nil {
		return fmt.Errorf("create spool file: %w", err)
	}
	tmp := f.Name()
	_, werr := f.Write(b)
	serr := f.Sync()
	cerr := f.Close()
	if err := errors.Join(werr, serr, cerr); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("write spool file %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("rename spool file: %w", err)
	}
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("open spool directory: %w", err)
	}
	serr = d.Sync()
	if err := errors.Join(serr, d.Close()); err != nil {
		return fmt.Errorf("sync spool directory %s: %w", dir, err)
	}
	return nil
}

// Peek returns the oldest batch and its sequence number, ok false when the spool is empty.
// Corrupt files met on the way are deleted, counted and reported; an error means the disk
// could not be read and the batch is kept for a later try.
func (sp *Spool) Peek() (seq uint64, rm *metricdata.ResourceMetrics, ok bool, err error) {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	for len(sp.entries) > 0 {
		head := sp.entries[0]
		b, err := os.ReadFile(sp.path(head.seq))
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return 0, nil, false, fmt.Errorf("read spooled batch: %w", err)
		}
		if err == nil {
			rm, err = decodeBatch(b)
		}
		if err != nil {
			sp.pop()
			sp.discard(head.seq, err)
			continue
		}
		return head.seq, rm, true, nil
	}
	return 0, nil, false, nil
}

// Remove deletes batch seq once the collector has acknowledged it. A batch already dropped
// for room is no error. If the file cannot be deleted it is forgotten all the same: after a
// restart it is sent again, which the collector absorbs (a point is keyed by its timestamps).
func (sp *Spool) Remove(seq uint64) error {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	i := slices.IndexFunc(sp.entries, func(e spoolEntry) bool { return e.seq == seq })
	if i < 0 {
		return nil
	}
	sp.removeAt(i)
	if err := os.Remove(sp.path(seq)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("delete sent batch: %w", err)
	}
	return nil
}

// Len returns the number of batches held.
func (sp *Spool) Len() int {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	return len(sp.entries)
}

// Dir returns the spool's directory.
func (sp *Spool) Dir() string { return sp.dir }

// Stats returns the counters.
func (sp *Spool) Stats() SpoolStats {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	st := sp.stats
	st.Batches, st.Bytes = len(sp.entries), sp.bytes
	return st
}
