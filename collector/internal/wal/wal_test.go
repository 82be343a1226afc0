package wal

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	if dir := os.Getenv("FLEETWATT_WAL_CHILD"); dir != "" {
		os.Exit(appendForever(dir))
	}
	goleak.VerifyTestMain(m)
}

var discard = slog.New(slog.DiscardHandler)

func open(t testing.TB, opts Options) *WAL {
	t.Helper()
	w, err := Open(opts, discard)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { w.Close() })
	return w
}

func appendN(t testing.TB, w *WAL, from, to int) {
	t.Helper()
	for i := from; i < to; i++ {
		if err := w.Append(t.Context(), []byte("record-"+strconv.Itoa(i))); err != nil {
			t.Fatalf("Append %d: %v", i, err)
		}
	}
}

// readAll reads every durable record, committing after each when commit is set.
func readAll(t testing.TB, w *WAL, commit bool) []string {
	t.Helper()
	var got []string
	for {
		rec, ok, err := w.TryNext()
		if err != nil {
			t.Fatalf("TryNext: %v", err)
		}
		if !ok {
			return got
		}
		got = append(got, string(rec.Data))
		if commit {
			if err := w.Commit(rec.End); err != nil {
				t.Fatalf("Commit: %v", err)
			}
		}
	}
}

func records(from, to int) []string {
	var s []string
	for i := from; i < to; i++ {
		s = append(s, "record-"+strconv.Itoa(i))
	}
	return s
}

// TestReopenResumesAtCheckpoint: what was committed is not read again after a restart, what
// was read but not committed is.
func TestReopenResumesAtCheckpoint(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	w := open(t, Options{Dir: dir, SegmentBytes: 512, MaxBytes: 1 << 20})
	appendN(t, w, 0, 100)
	var last Position
	for range 40 {
		rec, err := w.Next(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		last = rec.End
	}
	if err := w.Commit(last); err != nil {
		t.Fatal(err)
	}
	_, _, _ = w.TryNext() // read, not committed
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	w = open(t, Options{Dir: dir, SegmentBytes: 512, MaxBytes: 1 << 20})
	if diff := cmp.Diff(records(40, 100), readAll(t, w, true)); diff != "" {
		t.Errorf("records after reopen (-want +got):\n%s", diff)
	}
	if s := w.Stats(); s.Segments != 1 || s.TornTails != 0 {
		t.Errorf("after draining: %+v, want 1 segment and no torn tail", s)
	}
	appendN(t, w, 100, 101)
	if diff := cmp.Diff(records(100, 101), readAll(t, w, true)); diff != "" {
		t.Errorf("records appended after reopen (-want +got):\n%s", diff)
	}
}

// TestFull: the bound refuses appends without writing anything, and draining makes room.
func TestFull(t *testing.T) {
	t.Parallel()
	w := open(t, Options{Dir: t.TempDir(), SegmentBytes: 256, MaxBytes: 1024})
	rec := make([]byte, 100)
	n := 0
	for ; n < 100; n++ {
		err := w.Append(t.Context(), rec)
		if errors.Is(err, ErrFull) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if n == 0 || n == 100 {
		t.Fatalf("%d appends before ErrFull", n)
	}
	s := w.Stats()
	if s.FullRefusals != 1 || s.Bytes > 1024 || s.AppendedRecords != int64(n) {
		t.Errorf("stats %+v after %d appends", s, n)
	}
	if got := len(readAll(t, w, true)); got != n {
		t.Errorf("read %d records, want %d", got, n)
	}
	if err := w.Append(t.Context(), rec); err != nil {
		t.Errorf("Append after draining: %v", err)
	}
	if err := w.Append(t.Context(), make([]byte, 300)); !errors.Is(err, ErrTooLarge) {
		t.Errorf("Append larger than a segment = %v, want ErrTooLarge", err)
	}
}

func lastSegment(t *testing.T, dir string) string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "*"+segmentSuffix))
	if err != nil || len(m) == 0 {
		t.Fatalf("no segments in %s: %v", dir, err)
	}
	slices.Sort(m)
	return m[len(m)-1]
}

// TestTornTail: a crash in the middle of a write leaves the last segment's tail torn. Open
// truncates it, counts it, and keeps every record before it.
func TestTornTail(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		tear func(t *testing.T, path string)
	}{
		{"truncated_payload", func(t *testing.T, path string) {
			fi, _ := os.Stat(path)
			if err := os.Truncate(path, fi.Size()-3); err != nil {
				t.Fatal(err)
			}
		}},
		{"truncated_frame", func(t *testing.T, path string) {
			fi, _ := os.Stat(path)
			if err := os.Truncate(path, fi.Size()-int64(len("record-9"))-5); err != nil {
				t.Fatal(err)
			}
		}},
		{"flipped_byte", func(t *testing.T, path string) {
			f, err := os.OpenFile(path, os.O_RDWR, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			fi, _ := f.Stat()
			if _, err := f.WriteAt([]byte{'X'}, fi.Size()-1); err != nil {
				t.Fatal(err)
			}
		}},
		{"huge_length", func(t *testing.T, path string) {
			// The last record's length field claims 4 GiB: half a frame written over it.
			f, err := os.OpenFile(path, os.O_RDWR, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			fi, _ := f.Stat()
			if _, err := f.WriteAt([]byte{0xff, 0xff, 0xff, 0xff}, fi.Size()-int64(len("record-9"))-frameSize); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			w := open(t, Options{Dir: dir, SegmentBytes: 1 << 20, MaxBytes: 4 << 20})
			appendN(t, w, 0, 10)
			w.Close()
			tt.tear(t, lastSegment(t, dir))
			w = open(t, Options{Dir: dir, SegmentBytes: 1 << 20, MaxBytes: 4 << 20})
			if s := w.Stats(); s.TornTails != 1 || s.TruncatedBytes == 0 {
				t.Errorf("stats %+v, want one torn tail truncated", s)
			}
			appendN(t, w, 10, 11) // appending goes on after the valid records
			want := append(records(0, 9), records(10, 11)...)
			if diff := cmp.Diff(want, readAll(t, w, false)); diff != "" {
				t.Errorf("records (-want +got):\n%s", diff)
			}
		})
	}
}

// TestTornSegmentHeader: a crash right after a segment was created leaves it without a
// complete header; the log starts anyway.
func TestTornSegmentHeader(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	w := open(t, Options{Dir: dir, SegmentBytes: 1 << 20, MaxBytes: 4 << 20})
	appendN(t, w, 0, 3)
	w.Close()
	if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("%020d%s", 2, segmentSuffix)), []byte("FWW"), 0o600); err != nil {
		t.Fatal(err)
	}
	w = open(t, Options{Dir: dir, SegmentBytes: 1 << 20, MaxBytes: 4 << 20})
	appendN(t, w, 3, 4)
	if diff := cmp.Diff(records(0, 4), readAll(t, w, true)); diff != "" {
		t.Errorf("records (-want +got):\n%s", diff)
	}
}

// TestCorruptOlderSegment: damage inside a complete segment (a disk fault, not a crash) is
// skipped up to the segment's end and counted; the later segments are read.
func TestCorruptOlderSegment(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	w := open(t, Options{Dir: dir, SegmentBytes: 64, MaxBytes: 1 << 20})
	appendN(t, w, 0, 12) // 16-byte frames: 3 records per 64-byte segment
	w.Close()
	first := filepath.Join(dir, fmt.Sprintf("%020d%s", 1, segmentSuffix))
	f, err := os.OpenFile(first, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte("#"), headerSize+frameSize+16); err != nil { // the 2nd record's payload
		t.Fatal(err)
	}
	f.Close()
	w = open(t, Options{Dir: dir, SegmentBytes: 64, MaxBytes: 1 << 20})
	want := append(records(0, 1), records(3, 12)...)
	if diff := cmp.Diff(want, readAll(t, w, true)); diff != "" {
		t.Errorf("records (-want +got):\n%s", diff)
	}
	if s := w.Stats(); s.CorruptBytes != 2*(frameSize+8) {
		t.Errorf("corrupt bytes %d, want %d", s.CorruptBytes, 2*(frameSize+8))
	}
}

// TestCorruptCheckpoint: an unreadable checkpoint replays from the oldest segment (points are
// rewritten, none lost) instead of refusing to start.
func TestCorruptCheckpoint(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	w := open(t, Options{Dir: dir, SegmentBytes: 1 << 20, MaxBytes: 4 << 20})
	appendN(t, w, 0, 5)
	rec, _ := w.Next(t.Context())
	if err := w.Commit(rec.End); err != nil {
		t.Fatal(err)
	}
	w.Close()
	if err := os.WriteFile(filepath.Join(dir, checkpointName), []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	w = open(t, Options{Dir: dir, SegmentBytes: 1 << 20, MaxBytes: 4 << 20})
	if diff := cmp.Diff(records(0, 5), readAll(t, w, false)); diff != "" {
		t.Errorf("records (-want +got):\n%s", diff)
	}
}

// TestConcurrentAppendAndRead: concurrent appenders and a reader that commits as it goes;
// every record is read once, each appender's in its order, and appenders share fsyncs.
func TestConcurrentAppendAndRead(t *testing.T) {
	t.Parallel()
	const writers, each = 8, 200
	w := open(t, Options{Dir: t.TempDir(), SegmentBytes: 4096, MaxBytes: 1 << 20, SyncInterval: time.Millisecond})
	var wg sync.WaitGroup
	for g := range writers {
		wg.Go(func() {
			for i := range each {
				if err := w.Append(t.Context(), fmt.Appendf(nil, "%d/%d", g, i)); err != nil {
					t.Errorf("Append: %v", err)
					return
				}
			}
		})
	}
	next := make([]int, writers)
	for n := 0; n < writers*each; n++ {
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		rec, err := w.Next(ctx)
		cancel()
		if err != nil {
			t.Fatalf("after %d records: %v", n, err)
		}
		var g, i int
		if _, err := fmt.Sscanf(string(rec.Data), "%d/%d", &g, &i); err != nil {
			t.Fatal(err)
		}
		if i != next[g] {
			t.Fatalf("writer %d: record %d, want %d", g, i, next[g])
		}
		next[g]++
		if n%50 == 0 {
			if err := w.Commit(rec.End); err != nil {
				t.Fatal(err)
			}
		}
	}
	wg.Wait()
	s := w.Stats()
	if s.AppendedRecords != writers*each || s.Syncs >= writers*each {
		t.Errorf("stats %+v: want %d records and fewer fsyncs", s, writers*each)
	}
	t.Logf("%d appends, %d fsyncs", s.AppendedRecords, s.Syncs)
}

// TestAppendAfterClose fails with ErrClosed; Close twice is fine.
func TestAppendAfterClose(t *testing.T) {
	t.Parallel()
	w := open(t, Options{Dir: t.TempDir()})
	w.Close()
	if err := w.Append(t.Context(), []byte("x")); !errors.Is(err, ErrClosed) {
		t.Errorf("Append after Close = %v, want ErrClosed", err)
	}
	if _, err := w.Next(t.Context()); !errors.Is(err, ErrClosed) {
		t.Errorf("Next after Close = %v, want ErrClosed", err)
	}
	if err := w.Close(); err != nil {
		t.Error(err)
	}
}

func TestOptionsValidated(t *testing.T) {
	t.Parallel()
	if _, err := Open(Options{Dir: t.TempDir(), SegmentBytes: 1 << 20, MaxBytes: 1 << 20}, discard); err == nil {
		t.Error("MaxBytes < 2 segments accepted")
	}
	if _, err := Open(Options{}, discard); err == nil {
		t.Error("no directory accepted")
	}
}

// appendForever is the child process of TestSIGKILL: it appends records and prints the
// number of each one Append acknowledged, until it is killed.
func appendForever(dir string) int {
	w, err := Open(Options{Dir: dir, SegmentBytes: 64 << 10, MaxBytes: 64 << 20, SyncInterval: time.Millisecond}, discard)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	out := bufio.NewWriter(os.Stdout)
	var mu sync.Mutex
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := g; ; i += 4 {
				if err := w.Append(context.Background(), fmt.Appendf(nil, "record-%d-%0200d", i, 0)); err != nil {
					fmt.Fprintln(os.Stderr, err)
					return
				}
				mu.Lock()
				fmt.Fprintln(out, i)
				out.Flush()
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return 1
}

// TestSIGKILL kills a process that is appending and checks that every record it
// acknowledged is in the log after reopening.
func TestSIGKILL(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "FLEETWATT_WAL_CHILD="+dir)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	acked := map[int]bool{}
	sc := bufio.NewScanner(stdout)
	for sc.Scan() && len(acked) < 3000 {
		i, err := strconv.Atoi(sc.Text())
		if err != nil {
			t.Fatalf("child printed %q", sc.Text())
		}
		acked[i] = true
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	for sc.Scan() { // acknowledgements written before the kill
		if i, err := strconv.Atoi(sc.Text()); err == nil {
			acked[i] = true
		}
	}
	_ = cmd.Wait()
	if len(acked) < 3000 {
		t.Fatalf("child acknowledged only %d records", len(acked))
	}
	w := open(t, Options{Dir: dir, SegmentBytes: 64 << 10, MaxBytes: 64 << 20})
	found := map[int]bool{}
	for _, r := range readAll(t, w, false) {
		var i int
		if _, err := fmt.Sscanf(r, "record-%d-", &i); err != nil {
			t.Fatalf("record %q: %v", r, err)
		}
		if found[i] {
			t.Fatalf("record %d twice", i)
		}
		found[i] = true
	}
	for i := range acked {
		if !found[i] {
			t.Errorf("acknowledged record %d lost", i)
		}
	}
	t.Logf("%d acknowledged, %d in the log after SIGKILL, stats %+v", len(acked), len(found), w.Stats())
}

// BenchmarkAppend: concurrent appenders (as concurrent exports are) of 8 KiB records, about
// one host's export of a few dozen points, with fsync batching on.
func BenchmarkAppend(b *testing.B) {
	for _, conc := range []int{1, 64} {
		b.Run(fmt.Sprintf("appenders=%d", conc), func(b *testing.B) {
			w := open(b, Options{Dir: b.TempDir(), MaxBytes: 64 << 30, SyncInterval: 2 * time.Millisecond})
			rec := make([]byte, 8<<10)
			// A reader drains and commits, so the log's size stays bounded as in production.
			ctx, cancel := context.WithCancel(context.Background())
			var rg sync.WaitGroup
			rg.Go(func() {
				var seg uint64
				for {
					r, err := w.Next(ctx)
					if err != nil {
						return
					}
					if r.End.Segment != seg { // once per segment: commits cost two fsyncs
						seg = r.End.Segment
						_ = w.Commit(r.End)
					}
				}
			})
			b.ReportAllocs()
			b.SetBytes(int64(conc * len(rec)))
			var wg sync.WaitGroup
			for b.Loop() {
				for range conc {
					wg.Go(func() {
						if err := w.Append(context.Background(), rec); err != nil {
							b.Error(err)
						}
					})
				}
				wg.Wait()
			}
			b.ReportMetric(float64(conc*b.N)/b.Elapsed().Seconds(), "records/s")
			cancel()
			rg.Wait()
		})
	}
}
