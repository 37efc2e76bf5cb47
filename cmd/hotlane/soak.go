package main

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// deliverySink is bench --sink: a webhook receiver that answers every
// delivery 204 and counts them.
type deliverySink struct {
	srv *http.Server

	mu       sync.Mutex
	requests int
	ids      map[string]bool // Hotlane-Delivery ids seen
}

func startSink(addr string) (*deliverySink, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	s := &deliverySink{ids: map[string]bool{}}
	s.srv = &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, io.LimitReader(r.Body, 1<<20))
		s.mu.Lock()
		s.requests++
		if id := r.Header.Get("Hotlane-Delivery"); id != "" {
			s.ids[id] = true
		}
		s.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	})}
	go func() { _ = s.srv.Serve(ln) }()
	return s, nil
}

func (s *deliverySink) close() { _ = s.srv.Close() }

func (s *deliverySink) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return fmt.Sprintf("sink: %d deliveries received, %d distinct delivery ids", s.requests, len(s.ids))
}

// rssSampler is bench --rss-pid: the resident memory of a process,
// sampled at an interval.
type rssSampler struct {
	pid     int
	start   time.Time
	quit    chan struct{}
	done    chan struct{}
	mu      sync.Mutex
	samples []rssSample
}

type rssSample struct {
	at  time.Duration // since the start
	kib int64
}

func startRSS(pid int, every time.Duration) (*rssSampler, error) {
	if _, err := readRSS(pid); err != nil {
		return nil, err
	}
	r := &rssSampler{pid: pid, start: time.Now(), quit: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(r.done)
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			r.sample()
			select {
			case <-r.quit:
				return
			case <-tick.C:
			}
		}
	}()
	return r, nil
}

func (r *rssSampler) sample() {
	kib, err := readRSS(r.pid)
	if err != nil {
		return
	}
	r.mu.Lock()
	r.samples = append(r.samples, rssSample{time.Since(r.start), kib})
	r.mu.Unlock()
}

// stop takes a last sample and returns the summary.
func (r *rssSampler) stop() rssSummary {
	close(r.quit)
	<-r.done
	r.sample()
	r.mu.Lock()
	defer r.mu.Unlock()
	return summarizeRSS(r.pid, r.samples, time.Minute)
}

// rssSummary is how a process's resident memory went: the first sample
// after warm-up, the last, the largest, and the growth from the first to
// the last.
type rssSummary struct {
	pid              int
	warm, last, peak int64 // KiB
	warmAt, lastAt   time.Duration
	growth           float64 // (last - warm) / warm
	samples          int
	tooShort         bool
}

func summarizeRSS(pid int, samples []rssSample, warmup time.Duration) rssSummary {
	s := rssSummary{pid: pid, samples: len(samples)}
	for _, x := range samples {
		s.peak = max(s.peak, x.kib)
		if s.warm == 0 && x.at >= warmup {
			s.warm, s.warmAt = x.kib, x.at
		}
		s.last, s.lastAt = x.kib, x.at
	}
	if s.warm == 0 {
		s.tooShort = true
		return s
	}
	s.growth = float64(s.last-s.warm) / float64(s.warm)
	return s
}

func (s rssSummary) String() string {
	if s.tooShort {
		return fmt.Sprintf("rss of %d: the run was shorter than the one-minute warm-up (last %.1f MB, peak %.1f MB)", s.pid, mib(s.last), mib(s.peak))
	}
	return fmt.Sprintf("rss of %d: %.1f MB at %s (after warm-up), %.1f MB at %s, peak %.1f MB; growth after warm-up %+.1f%% (%d samples)",
		s.pid, mib(s.warm), s.warmAt.Round(time.Second), mib(s.last), s.lastAt.Round(time.Second), mib(s.peak), 100*s.growth, s.samples)
}

func mib(kib int64) float64 { return float64(kib) / 1024 }

// readRSS reads VmRSS of a process from /proc, in KiB.
func readRSS(pid int) (int64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(v)
			if len(f) >= 1 {
				return strconv.ParseInt(f[0], 10, 64)
			}
		}
	}
	return 0, errors.New("no VmRSS in /proc/" + strconv.Itoa(pid) + "/status")
}
