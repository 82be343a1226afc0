package export

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
)

var t0 = time.Unix(1_700_000_000, 0)

// at is the timestamp of the i-th test batch.
func at(i int) time.Time { return t0.Add(time.Duration(i) * 10 * time.Second) }

func openSpool(t *testing.T, dir string, maxBytes int64) *Spool {
	t.Helper()
	sp, err := OpenSpool(dir, maxBytes, discard)
	if err != nil {
		t.Fatal(err)
	}
	return sp
}

func appendBatches(t *testing.T, sp *Spool, from, to int) {
	t.Helper()
	for i := from; i < to; i++ {
		if err := sp.Append(batch(at(i))); err != nil {
			t.Fatal(err)
		}
	}
}

// drain reads and removes every batch, oldest first, and returns their timestamps.
func drain(t *testing.T, sp *Spool) []time.Time {
	t.Helper()
	var got []time.Time
	for {
		seq, rm, ok, err := sp.Peek()
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			return got
		}
		got = append(got, stamp(rm))
		if err := sp.Remove(seq); err != nil {
			t.Fatal(err)
		}
	}
}

func times(from, to int) []time.Time {
	var out []time.Time
	for i := from; i < to; i++ {
		out = append(out, at(i))
	}
	return out
}

func TestSpoolKeepsOrder(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	sp := openSpool(t, dir, 1<<20)
	appendBatches(t, sp, 0, 12) // past 10: names must sort as numbers
	if diff := cmp.Diff(times(0, 12), drain(t, sp)); diff != "" {
		t.Errorf("replay order (-want +got):\n%s", diff)
	}
	if st := sp.Stats(); st.Batches != 0 || st.Bytes != 0 || st.Written != 12 {
		t.Errorf("stats %+v, want empty after 12 written", st)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("%d files left in the spool, want none", len(ents))
	}
}

// TestSpoolBoundDropsOldest: at the bound the oldest batches go, counted with their points.
func TestSpoolBoundDropsOldest(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	sp := openSpool(t, dir, 3*spoolBlock) // a one-point batch takes one block: room for three
	appendBatches(t, sp, 0, 5)
	want := SpoolStats{Batches: 3, Bytes: 3 * spoolBlock, Written: 5, Dropped: 2, DroppedPoints: 2}
	if diff := cmp.Diff(want, sp.Stats()); diff != "" {
		t.Errorf("stats (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(times(2, 5), drain(t, sp)); diff != "" {
		t.Errorf("kept (-want +got):\n%s", diff)
	}

	// A smaller bound at the next start drops the oldest of what an earlier run left.
	appendBatches(t, sp, 5, 8)
	sp2 := openSpool(t, dir, 2*spoolBlock)
	if st := sp2.Stats(); st.Batches != 2 || st.Dropped != 1 {
		t.Errorf("reopened with a smaller bound: %+v, want 2 kept and 1 dropped", st)
	}
	if diff := cmp.Diff(times(6, 8), drain(t, sp2)); diff != "" {
		t.Errorf("kept after reopening (-want +got):\n%s", diff)
	}
}

// TestSpoolSkipsCorruptFiles: a torn file, a damaged one and a crashed write's temporary
// file are skipped, counted and deleted; the good batches are still replayed in order, and
// files that are not the spool's are left alone.
func TestSpoolSkipsCorruptFiles(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	appendBatches(t, openSpool(t, dir, 1<<20), 0, 5)
	path := func(i int) string { return filepath.Join(dir, spoolName(uint64(i))) }
	if err := os.Truncate(path(1), 20); err != nil { // torn: shorter than its header says
		t.Fatal(err)
	}
	b, err := os.ReadFile(path(3))
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)-1] ^= 0xff // damaged: the checksum no longer matches
	if err := os.WriteFile(path(3), b, 0o600); err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string]string{spoolTemp + "123": "half a batch", "README": "not ours", "00000000000000000004.batch.bak": "x"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}

	sp := openSpool(t, dir, 1<<20)
	if st := sp.Stats(); st.Corrupt != 1 || st.Batches != 4 {
		t.Errorf("after open: %+v, want the torn file counted and 4 batches left", st)
	}
	if diff := cmp.Diff([]time.Time{at(0), at(2), at(4)}, drain(t, sp)); diff != "" {
		t.Errorf("replayed (-want +got):\n%s", diff)
	}
	if st := sp.Stats(); st.Corrupt != 2 {
		t.Errorf("corrupt %d, want 2 (torn and damaged)", st.Corrupt)
	}
	var left []string
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		left = append(left, e.Name())
	}
	if diff := cmp.Diff([]string{"00000000000000000004.batch.bak", "README"}, left); diff != "" {
		t.Errorf("files left (-want +got):\n%s", diff)
	}
}

// TestSpoolContinuesNumbering: batches appended after a restart come after the old ones.
func TestSpoolContinuesNumbering(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	appendBatches(t, openSpool(t, dir, 1<<20), 0, 3)
	sp := openSpool(t, dir, 1<<20)
	appendBatches(t, sp, 3, 5)
	if diff := cmp.Diff(times(0, 5), drain(t, sp)); diff != "" {
		t.Errorf("replay order (-want +got):\n%s", diff)
	}
}

// TestSenderSpoolSurvivesRestart: batches a Sender could not send stay in the spool at
// Shutdown, without error or drops, and a new Sender on the same directory sends them first,
// in order, before anything new.
func TestSenderSpoolSurvivesRestart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	down := &flakyExporter{down: true}
	s := NewSpoolingSender(down, 1<<20, openSpool(t, dir, 1<<20), discard)
	for i := range 3 {
		s.Enqueue(batch(at(i)))
	}
	if err := s.Flush(context.Background()); err == nil {
		t.Fatal("Flush to a down collector = nil error")
	}
	s.Enqueue(batch(at(3)))
	if err := s.Shutdown(context.Background()); err != nil {
		t.Fatalf("Shutdown = %v, want nil: everything is in the spool", err)
	}
	st := s.Stats()
	if st.Dropped != 0 || st.QueuedBatches != 0 || st.Spool.Batches != 4 || st.Spool.Written != 4 {
		t.Fatalf("stats at shutdown %+v, want 4 batches in the spool and none dropped", st)
	}

	up := &flakyExporter{}
	s2 := NewSpoolingSender(up, 1<<20, openSpool(t, dir, 1<<20), discard)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s2.Run(ctx); close(done) }()
	// Run starts on the spool at once, without waiting for a new batch.
	deadline := time.Now().Add(10 * time.Second)
	for len(up.got()) < 4 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	s2.Enqueue(batch(at(4)))
	cancel()
	<-done
	if err := s2.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(times(0, 5), up.got()); diff != "" {
		t.Errorf("delivered after restart (-want +got):\n%s", diff)
	}
	if st := s2.Stats(); st.Sent != 5 || st.Spool.Batches != 0 {
		t.Errorf("stats %+v, want 5 sent and an empty spool", st)
	}
}

// TestSenderSpillsDuringOutage: while exports fail, each new batch reaches the disk within
// one interval (a crash loses at most the batch being collected), and everything is
// delivered in order when the collector returns.
func TestSenderSpillsDuringOutage(t *testing.T) {
	dir := t.TempDir()
	synctest.Test(t, func(t *testing.T) {
		exp := &flakyExporter{down: true}
		s := NewSpoolingSender(exp, 1<<20, openSpool(t, dir, 1<<20), discard)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { s.Run(ctx); close(done) }()
		for i := range 30 {
			s.Enqueue(batch(at(i)))
			synctest.Wait()
			if st := s.Stats(); st.QueuedBatches != 0 || st.Spool.Batches != i+1 {
				t.Fatalf("after batch %d: %+v, want every batch on disk", i, st)
			}
			time.Sleep(10 * time.Second)
		}
		exp.set(false)
		time.Sleep(31 * time.Second) // the longest backoff
		synctest.Wait()
		if diff := cmp.Diff(times(0, 30), exp.got()); diff != "" {
			t.Errorf("delivered (-want +got):\n%s", diff)
		}
		if st := s.Stats(); st.Sent != 30 || st.Spool.Batches != 0 || st.Spool.Dropped != 0 {
			t.Errorf("stats %+v", st)
		}
		cancel()
		<-done
	})
}

// TestSenderHappyPathSkipsTheDisk: while the collector answers, nothing is written.
func TestSenderHappyPathSkipsTheDisk(t *testing.T) {
	t.Parallel()
	exp := &flakyExporter{}
	s := NewSpoolingSender(exp, 1<<20, openSpool(t, t.TempDir(), 1<<20), discard)
	for i := range 5 {
		s.Enqueue(batch(at(i)))
		if err := s.Flush(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if st := s.Stats(); st.Sent != 5 || st.Spool.Written != 0 {
		t.Errorf("stats %+v, want 5 sent and nothing written to the spool", st)
	}
}
