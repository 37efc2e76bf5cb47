// Package loadgen drives POST /v1/score with realistic varied bodies and
// measures it against a bare Gin baseline; it is the engine behind
// `hotlane bench`.
//
// A run pre-generates a few thousand request bodies from Config.Seed, then
// keeps Config.Concurrency requests in flight over keep-alive connections
// for each measured round. With Config.Baseline it also starts an in-process
// Gin server whose handler only decodes the same bodies, and alternates
// baseline and server rounds so both see the same machine conditions; the
// report then gives the server's throughput as a ratio of the baseline's.
package loadgen

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Target names used in Round.Target.
const (
	// TargetHotlane is the server under test.
	TargetHotlane = "hotlane"
	// TargetBaseline is the in-process bare Gin handler.
	TargetBaseline = "baseline"
)

// Errors from the probe that Run sends before measuring; test with errors.Is.
var (
	// ErrBadKey means the server answered 401 or 403 to the probe: the key
	// is unknown, revoked or lacks the score scope.
	ErrBadKey = errors.New("API key rejected")
	// ErrUnreachable means the probe got no HTTP answer from the server.
	ErrUnreachable = errors.New("server unreachable")
)

// requestTimeout bounds one request so a hung connection cannot stall a round.
const requestTimeout = 30 * time.Second

// Run benchmarks the server at cfg.URL and, with cfg.Baseline, the bare Gin
// baseline, writing one line per measured round to progress (which may be
// nil). It probes the server once first and fails with ErrBadKey or
// ErrUnreachable before measuring anything. When ctx is cancelled it stops
// promptly and returns the rounds finished so far with ctx's error.
func Run(ctx context.Context, cfg Config, progress io.Writer) (rep Report, err error) {
	if err := cfg.Validate(); err != nil {
		return Report{}, err
	}
	cfg = cfg.withDefaults()
	if progress == nil {
		progress = io.Discard
	}

	bodies, err := generateBodies(cfg.Seed, cfg.Conversations, bodyCount, time.Now())
	if err != nil {
		return Report{}, fmt.Errorf("bench: %w", err)
	}
	transport := newTransport(cfg.Concurrency)
	defer transport.CloseIdleConnections()
	client := &http.Client{Transport: transport, Timeout: requestTimeout}
	header := http.Header{
		"Content-Type":  {"application/json"},
		"Accept":        {"application/json"},
		"Authorization": {"Bearer " + cfg.Key},
		"User-Agent":    {"hotlane-bench"},
	}

	hotlane := &target{name: TargetHotlane, url: scoreURL(cfg.URL)}
	if err := probe(ctx, client, hotlane.url, header, bodies[0]); err != nil {
		return Report{}, err
	}
	targets := []*target{hotlane}
	if cfg.Baseline {
		srv, startErr := startBaseline()
		if startErr != nil {
			return Report{}, startErr
		}
		defer func() {
			if stopErr := srv.stop(); stopErr != nil && err == nil {
				err = stopErr
			}
		}()
		targets = []*target{{name: TargetBaseline, url: srv.url + "/v1/score"}, hotlane}
	}

	b := &bench{cfg: cfg, client: client, header: header, bodies: bodies}
	return b.run(ctx, targets, progress)
}

// target is one endpoint under measurement and its totals so far.
type target struct {
	name    string
	url     string
	warm    bool
	rounds  int
	total   stats
	elapsed time.Duration
}

// bench holds what every round of a run shares.
type bench struct {
	cfg    Config
	client *http.Client
	header http.Header
	bodies [][]byte
	next   atomic.Uint64 // index of the next body, shared by all workers
}

// run measures cfg.Rounds rounds per target, alternating targets.
func (b *bench) run(ctx context.Context, targets []*target, progress io.Writer) (Report, error) {
	rep := Report{
		URL:         scoreURL(b.cfg.URL),
		Concurrency: b.cfg.Concurrency,
		Rate:        b.cfg.Rate,
		DurationS:   b.cfg.Duration.Seconds(),
		Seed:        b.cfg.Seed,
		Rounds:      []Round{},
	}
	total := b.cfg.Rounds * len(targets)
	for i := range total {
		t := targets[i%len(targets)]
		if !t.warm && b.cfg.Warmup > 0 {
			b.measure(ctx, t.url, b.cfg.Warmup)
			if err := ctx.Err(); err != nil {
				return rep.finish(targets), fmt.Errorf("bench: warm-up of %s interrupted: %w", t.name, err)
			}
		}
		t.warm = true
		st, elapsed := b.measure(ctx, t.url, b.cfg.Duration)
		if err := ctx.Err(); err != nil {
			return rep.finish(targets), fmt.Errorf("bench: round %d (%s) interrupted: %w", i+1, t.name, err)
		}
		t.rounds++
		t.total.merge(st)
		t.elapsed += elapsed
		r := st.round(t.name, elapsed)
		rep.Rounds = append(rep.Rounds, r)
		fmt.Fprintf(progress, "round %d/%d %-8s %s\n", i+1, total, t.name, r.summary())
	}
	return rep.finish(targets), nil
}

// measure loads url for d, closed or open loop (cfg.Rate), and returns the
// merged stats and the time until the last worker finished its final
// request.
func (b *bench) measure(ctx context.Context, url string, d time.Duration) (*stats, time.Duration) {
	if b.cfg.Rate > 0 {
		return b.measureOpen(ctx, url, d)
	}
	workers := make([]stats, b.cfg.Concurrency)
	start := time.Now()
	deadline := start.Add(d)
	var wg sync.WaitGroup
	for i := range workers {
		wg.Go(func() { b.worker(ctx, url, deadline, &workers[i]) })
	}
	wg.Wait()
	return mergeAll(workers), time.Since(start)
}

// mergeAll merges the workers' stats of a round.
func mergeAll(workers []stats) *stats {
	var st stats
	for i := range workers {
		st.merge(&workers[i])
	}
	return &st
}

// measureOpen sends requests at cfg.Rate per second for d: request i is
// scheduled at start + i/Rate, taken by the first of cfg.Concurrency
// connections that is free, and its latency runs from its scheduled time,
// so time spent waiting for a connection while the server stalls counts.
// Requests scheduled before the end are all sent.
func (b *bench) measureOpen(ctx context.Context, url string, d time.Duration) (*stats, time.Duration) {
	n := int(b.cfg.Rate * d.Seconds())
	if n < 1 {
		n = 1
	}
	tickets := make(chan time.Time, n)
	workers := make([]stats, b.cfg.Concurrency)
	start := time.Now()
	interval := time.Duration(float64(time.Second) / b.cfg.Rate)
	var wg sync.WaitGroup
	for i := range workers {
		wg.Go(func() {
			for at := range tickets {
				if ctx.Err() != nil {
					continue
				}
				if wait := time.Until(at); wait > 0 {
					time.Sleep(wait)
				}
				b.send(ctx, url, at, &workers[i])
			}
		})
	}
	for i := range n {
		at := start.Add(time.Duration(i) * interval)
		if wait := time.Until(at); wait > 0 {
			select {
			case <-ctx.Done():
			case <-time.After(wait):
			}
		}
		if ctx.Err() != nil {
			break
		}
		tickets <- at
	}
	close(tickets)
	wg.Wait()
	return mergeAll(workers), time.Since(start)
}

// worker sends requests one after another until deadline or until ctx ends.
// A request still in flight at the deadline is finished and counted, so
// every latency a round records is a whole request.
func (b *bench) worker(ctx context.Context, url string, deadline time.Time, st *stats) {
	for ctx.Err() == nil && time.Now().Before(deadline) {
		if !b.send(ctx, url, time.Now(), st) {
			return
		}
	}
}

// send makes one request with the next body and records its latency from
// from (when it was sent, or scheduled); it reports false when the worker
// should stop.
func (b *bench) send(ctx context.Context, url string, from time.Time, st *stats) bool {
	n := uint64(len(b.bodies))
	body := b.bodies[(b.next.Add(1)-1)%n]
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		st.transportError(err)
		return false
	}
	req.Header = b.header.Clone()
	resp, err := b.client.Do(req)
	if err == nil {
		_, err = io.Copy(io.Discard, resp.Body)
		if cerr := resp.Body.Close(); err == nil {
			err = cerr
		}
	}
	latency := time.Since(from)
	if err != nil {
		if ctx.Err() != nil {
			return false // cancelled, not a server failure
		}
		st.transportError(err)
		return true
	}
	st.response(resp.StatusCode, latency)
	return true
}

// newTransport returns a keep-alive transport with one connection per worker
// per host; HTTP/1.1 only, no proxy and no compression, so the figures are
// about the server and not about what sits between.
func newTransport(concurrency int) *http.Transport {
	return &http.Transport{
		DialContext: (&net.Dialer{
			Timeout:   5 * time.Second,
			KeepAlive: 30 * time.Second,
		}).DialContext,
		MaxIdleConns:          2 * concurrency,
		MaxIdleConnsPerHost:   concurrency,
		MaxConnsPerHost:       concurrency,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: requestTimeout,
		DisableCompression:    true,
	}
}

// probe sends one score request and fails when the server cannot be reached,
// rejects the key, or refuses the request as malformed or misaddressed.
// A 5xx or 429 is left for the rounds to count.
func probe(parent context.Context, client *http.Client, url string, header http.Header, body []byte) error {
	ctx, cancel := context.WithTimeout(parent, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("probe %s: %w", url, err)
	}
	req.Header = header.Clone()
	resp, err := client.Do(req)
	if err != nil {
		if parentErr := parent.Err(); parentErr != nil {
			return fmt.Errorf("probe %s: %w", url, parentErr)
		}
		return fmt.Errorf("probe %s: %w: %w", url, ErrUnreachable, err)
	}
	defer resp.Body.Close()
	snippet, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	_, _ = io.Copy(io.Discard, resp.Body)
	status := resp.StatusCode
	detail := errorDetail(snippet)
	switch {
	case status == http.StatusUnauthorized:
		return fmt.Errorf("probe %s: %w: server answered 401 (unknown or revoked key)%s", url, ErrBadKey, detail)
	case status == http.StatusForbidden:
		return fmt.Errorf("probe %s: %w: server answered 403 (the key needs the score scope)%s", url, ErrBadKey, detail)
	case status == http.StatusNotFound || status == http.StatusMethodNotAllowed:
		return fmt.Errorf("probe %s: server answered %d: is this a Hotlane server?%s", url, status, detail)
	case status >= 400 && status < 500 && status != http.StatusTooManyRequests:
		return fmt.Errorf("probe %s: server refused the request with %d%s", url, status, detail)
	}
	return nil
}

// errorDetail renders an error answer for a message: the message of a
// {"error":{...}} body, else the start of the text.
func errorDetail(body []byte) string {
	var e struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
			Field   string `json:"field"`
		} `json:"error"`
	}
	if json.Unmarshal(body, &e) == nil && e.Error.Message != "" {
		s := ": " + e.Error.Message
		if e.Error.Field != "" {
			s += " (field " + e.Error.Field + ")"
		}
		return s
	}
	text := strings.TrimSpace(string(body))
	if text == "" {
		return ""
	}
	if len(text) > 200 {
		text = text[:200] + "..."
	}
	return ": " + strconv.Quote(text)
}
