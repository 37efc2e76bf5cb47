package main

import (
	"bytes"
	"flag"
	"io"
	"strings"
	"testing"
	"time"
)

// testProgress is a status line writing to a buffer on a clock the test
// moves.
func testProgress(mode string) (*progressLine, *bytes.Buffer, *time.Time) {
	var buf bytes.Buffer
	p := newProgress(&buf)
	p.mode = progressMode(mode)
	clock := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	p.now = func() time.Time { return clock }
	p.start()
	return p, &buf, &clock
}

// Off, the status line writes nothing of its own and passes what is
// written through it unchanged: never, and auto when standard error is
// not a terminal (a buffer here, a pipe or a file for a user).
func TestProgressOff(t *testing.T) {
	for _, mode := range []string{progressNever, progressAuto} {
		t.Run(mode, func(t *testing.T) {
			p, buf, clock := testProgress(mode)
			p.step("eval: fold %d of %d", 1, 5)
			*clock = clock.Add(time.Second)
			p.update("eval: reading %d rows", 1000)
			io.WriteString(p, "a log line\n")
			p.step("eval: fold %d of %d", 2, 5)
			p.done()
			if got, want := buf.String(), "a log line\n"; got != want {
				t.Errorf("wrote %q, want %q", got, want)
			}
		})
	}
}

// Steps are drawn at once; counts at most once per p.every, so a loop
// reporting every few rows redraws about ten times a second.
func TestProgressThrottle(t *testing.T) {
	p, buf, clock := testProgress(progressAlways)
	p.step("step 1")
	for i := range 1000 { // one simulated second, a count every millisecond
		*clock = clock.Add(time.Millisecond)
		p.update("step 1: %d rows", i+1)
	}
	if got := strings.Count(buf.String(), "\r"); got < 9 || got > 11 {
		t.Errorf("%d redraws over one second of counts, want about 10:\n%q", got, buf.String())
	}
	buf.Reset()
	p.update("step 1: skipped") // drawn less than p.every ago
	if buf.Len() != 0 {
		t.Errorf("a count right after a redraw wrote %q, want nothing", buf.String())
	}
	p.step("step 2")
	if got, want := buf.String(), "\rstep 2"+strings.Repeat(" ", len("step 1: 1000 rows")-len("step 2")); got != want {
		t.Errorf("a new step wrote %q, want %q (drawn at once, padded over the longer line)", got, want)
	}
}

// done blanks the line and returns to its start, once.
func TestProgressDone(t *testing.T) {
	p, buf, _ := testProgress(progressAlways)
	p.step("tune: step 1 of 5: reading decisions")
	p.step("tune: step 2 of 5: training")
	buf.Reset()
	p.done()
	if got, want := buf.String(), "\r"+strings.Repeat(" ", len("tune: step 2 of 5: training"))+"\r"; got != want {
		t.Errorf("done wrote %q, want %q", got, want)
	}
	buf.Reset()
	p.done()
	io.WriteString(p, "hotlane: an error\n")
	if got, want := buf.String(), "hotlane: an error\n"; got != want {
		t.Errorf("after done: %q, want %q", got, want)
	}
}

// What is written through the status line (logs, simulate's lines) goes
// above it: the line is cleared, the text written, the line drawn again;
// text ending mid-line holds the line back until its newline.
func TestProgressWriteThrough(t *testing.T) {
	p, buf, _ := testProgress(progressAlways)
	p.step("working")
	buf.Reset()
	io.WriteString(p, "a log line\n")
	if got, want := buf.String(), "\r       \ra log line\n\rworking"; got != want {
		t.Errorf("wrote %q, want %q", got, want)
	}
	buf.Reset()
	io.WriteString(p, "half a ")
	p.step("still working")
	io.WriteString(p, "line\n")
	if got, want := buf.String(), "\r       \rhalf a line\n\rstill working"; got != want {
		t.Errorf("wrote %q, want %q", got, want)
	}
}

// A line wider than the terminal is cut, or it would wrap and \r could
// not redraw it.
func TestProgressWidth(t *testing.T) {
	p, buf, _ := testProgress(progressAlways)
	p.cols = 10
	p.step("simulate: week 1 of 4")
	if got, want := buf.String(), "\rsimulate:"; got != want {
		t.Errorf("wrote %q, want %q", got, want)
	}
}

// --progress takes auto, always or never, from the command line or
// HOTLANE_PROGRESS.
func TestProgressFlag(t *testing.T) {
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want string // "" for an error
	}{
		{"default", nil, nil, progressAuto},
		{"flag", []string{"--progress", "never"}, nil, progressNever},
		{"environment", nil, map[string]string{"HOTLANE_PROGRESS": "always"}, progressAlways},
		{"flag over environment", []string{"--progress=auto"}, map[string]string{"HOTLANE_PROGRESS": "always"}, progressAuto},
		{"bad flag", []string{"--progress", "yes"}, nil, ""},
		{"bad environment", nil, map[string]string{"HOTLANE_PROGRESS": "sometimes"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs := flag.NewFlagSet("test", flag.ContinueOnError)
			fs.SetOutput(io.Discard)
			p := newProgress(io.Discard)
			p.register(fs)
			_, err := parseFlags(fs, tt.args, func(k string) (string, bool) { v, ok := tt.env[k]; return v, ok })
			switch {
			case tt.want == "" && err == nil:
				t.Errorf("accepted, mode %q", p.mode)
			case tt.want != "" && (err != nil || string(p.mode) != tt.want):
				t.Errorf("mode %q, %v; want %q", p.mode, err, tt.want)
			}
		})
	}
}

// lastCleared reports whether stderr ends with the status line cleared:
// \r, blanks, \r.
func lastCleared(stderr string) bool {
	i := strings.LastIndex(strings.TrimSuffix(stderr, "\r"), "\r")
	return strings.HasSuffix(stderr, "\r") && i >= 0 && strings.Trim(stderr[i:], "\r ") == "" && len(stderr)-i > 2
}
