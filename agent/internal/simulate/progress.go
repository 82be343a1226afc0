package simulate

import (
	"context"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// Redraw periods of the progress display: a terminal's bar at most 5 times a second, plain
// lines (a log file, a CI job) every 5 s.
const (
	ttyEvery   = 200 * time.Millisecond
	plainEvery = 5 * time.Second
	barWidth   = 30
)

// progress shows a backfill's progress on w: done and total points, percentage, rate and
// the time left. A nil w shows nothing.
type progress struct {
	w     io.Writer
	tty   bool
	total int64
	now   func() time.Time
	start time.Time
	every time.Duration
}

func newProgress(w io.Writer, total int64, now func() time.Time) *progress {
	p := &progress{w: w, total: total, now: now, start: now(), every: plainEvery}
	if isTerminal(w) {
		p.tty, p.every = true, ttyEvery
	}
	return p
}

// isTerminal reports whether w is a character device (a terminal).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// begin prints what the backfill will send.
func (p *progress) begin(plan Plan) {
	if p.w == nil {
		return
	}
	p.start = p.now()
	fmt.Fprintf(p.w, "backfill %s to %s: %d hosts × %d intervals = %s exports, %s points expected\n",
		plan.Start.UTC().Format(time.RFC3339), plan.End.UTC().Format(time.RFC3339), plan.Hosts, plan.Intervals,
		thousands(int64(plan.Exports)), thousands(plan.Points))
}

// run redraws the progress every p.every until ctx ends.
func (p *progress) run(ctx context.Context, done *atomic.Int64) {
	if p.w == nil {
		return
	}
	t := time.NewTicker(p.every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			p.draw(done.Load())
		}
	}
}

func (p *progress) draw(done int64) {
	line := p.line(done, p.now().Sub(p.start))
	if p.tty {
		fmt.Fprintf(p.w, "\r\x1b[K%s %s", bar(done, p.total), line)
		return
	}
	fmt.Fprintln(p.w, line)
}

// end draws the final state and a summary line.
func (p *progress) end(sent int64, elapsed time.Duration, stopped bool) {
	if p.w == nil {
		return
	}
	p.draw(sent)
	if p.tty {
		fmt.Fprintln(p.w)
	}
	what := "backfill done"
	if stopped {
		what = "backfill stopped"
	}
	fmt.Fprintf(p.w, "%s: sent %s of %s points (%.1f%%) in %s, %s points/s\n", what,
		thousands(sent), thousands(p.total), percent(sent, p.total), elapsed.Round(time.Millisecond),
		thousands(int64(rate(sent, elapsed))))
}

// line is "1,234/5,000 points  24.7%  1,000 points/s  ETA 3.8s".
func (p *progress) line(done int64, elapsed time.Duration) string {
	r := rate(done, elapsed)
	eta := "--"
	if r > 0 {
		eta = time.Duration(float64(p.total-done) / r * float64(time.Second)).Round(time.Second).String()
	}
	return fmt.Sprintf("%s/%s points  %5.1f%%  %s points/s  ETA %s",
		thousands(done), thousands(p.total), percent(done, p.total), thousands(int64(r)), eta)
}

func percent(n, total int64) float64 {
	if total <= 0 {
		return 100
	}
	return 100 * float64(n) / float64(total)
}

// bar is "[#######-------]" filled to done/total.
func bar(done, total int64) string {
	fill := barWidth
	if total > 0 {
		fill = int(min(done, total) * barWidth / total)
	}
	return "[" + strings.Repeat("#", fill) + strings.Repeat("-", barWidth-fill) + "]"
}

// thousands writes n with comma separators: 2,661,120.
func thousands(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	if neg {
		b.WriteByte('-')
	}
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}
