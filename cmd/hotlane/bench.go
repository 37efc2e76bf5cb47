package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/hotlane/hotlane/cmd/hotlane/loadgen"
)

// runBench drives a running server's score endpoint and, with --baseline,
// a bare Gin handler in the same run, and prints the comparison.
func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var cfg loadgen.Config
	var asJSON bool
	var streams int
	var streamPath, streamCookie string
	fs := newFlagSet("bench", stderr)
	fs.StringVar(&cfg.URL, "url", "http://127.0.0.1:8080", "base URL of the running server")
	fs.StringVar(&cfg.Key, "key", "", "API key with the score scope")
	fs.DurationVar(&cfg.Duration, "duration", 10*time.Second, "measured time per round")
	fs.IntVar(&cfg.Concurrency, "concurrency", 32, "concurrent keep-alive connections (with --rate, the most connections the open loop may use)")
	fs.Float64Var(&cfg.Rate, "rate", 0, "send at this constant rate in requests per second (open loop) and measure each latency from its scheduled time, so a stall is not hidden by the client waiting; 0 keeps --concurrency requests in flight")
	fs.BoolVar(&cfg.Baseline, "baseline", false, "also measure a bare Gin handler decoding the same bodies, alternating rounds")
	fs.IntVar(&cfg.Rounds, "rounds", 0, "measured rounds per target (default 3 with --baseline, else 1)")
	fs.Int64Var(&cfg.Seed, "seed", 1, "seed of the generated bodies")
	fs.IntVar(&cfg.Conversations, "conversations", 5000, "distinct conversation ids")
	fs.DurationVar(&cfg.Warmup, "warmup", 2*time.Second, "unmeasured warm-up before each target's first round")
	fs.BoolVar(&asJSON, "json", false, "print one JSON object")
	fs.IntVar(&streams, "streams", 0, "keep this many Server-Sent Events streams open and read for the whole run, as that many agents' open queue pages would")
	fs.StringVar(&streamPath, "stream-path", "/v1/stream", "the streams' path: /v1/stream (with --key) or /events (with --stream-cookie)")
	fs.StringVar(&streamCookie, "stream-cookie", "", "Cookie header of a signed-in session, for --stream-path /events")
	var sinkAddr string
	var rssPID int
	fs.StringVar(&sinkAddr, "sink", "", "also receive alert deliveries on this address (host:port) for the run, answering 204 and counting them; point destinations at http://ADDR/ (a soak test)")
	fs.IntVar(&rssPID, "rss-pid", 0, "sample this process's resident memory every 10 s (Linux /proc) and report how it grew after the first minute (a soak test)")
	rest, err := parseFlags(fs, args, osEnv)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return usagef("bench takes no arguments")
	}
	if cfg.Key == "" {
		return usagef("bench: --key is required (hotlane apikey create --name bench --scopes score)")
	}
	progress := stderr
	var st *streamStats
	if streams > 0 {
		var stop func()
		st, stop, err = openStreams(ctx, cfg.URL, streamPath, cfg.Key, streamCookie, streams)
		if err != nil {
			return err
		}
		defer stop()
		fmt.Fprintf(progress, "streams: %d open on %s\n", streams, streamPath)
	}
	var sink *deliverySink
	if sinkAddr != "" {
		if sink, err = startSink(sinkAddr); err != nil {
			return fmt.Errorf("bench: --sink: %w", err)
		}
		defer sink.close()
		fmt.Fprintf(progress, "sink: receiving deliveries on http://%s/\n", sinkAddr)
	}
	var rss *rssSampler
	if rssPID > 0 {
		if rss, err = startRSS(rssPID, 10*time.Second); err != nil {
			return fmt.Errorf("bench: --rss-pid: %w", err)
		}
	}
	rep, err := loadgen.Run(ctx, cfg, progress)
	if rss != nil {
		fmt.Fprintln(progress, rss.stop().String())
	}
	if sink != nil {
		// Deliveries trail the scores that fired them by the delivery
		// interval; count them after a moment.
		time.Sleep(3 * time.Second)
		fmt.Fprintln(progress, sink.String())
	}
	if err != nil {
		return err
	}
	if st != nil {
		fmt.Fprintf(progress, "streams: %d still open at the end, %d bytes read\n", st.open.Load(), st.bytes.Load())
	}
	if asJSON {
		enc := json.NewEncoder(stdout)
		return enc.Encode(rep)
	}
	return rep.WriteText(stdout)
}

// streamStats counts what the streams of --streams read.
type streamStats struct {
	open, bytes atomic.Int64
}

// openStreams opens n event streams on base+path and reads them until
// stop; it fails unless every one opened.
func openStreams(ctx context.Context, base, path, key, cookie string, n int) (*streamStats, func(), error) {
	ctx, cancel := context.WithCancel(ctx)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: n, DisableCompression: true}}
	st := &streamStats{}
	url := strings.TrimRight(strings.TrimSuffix(base, "/v1/score"), "/") + path
	errs := make(chan error, n)
	for range n {
		go func() {
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
			if err != nil {
				errs <- err
				return
			}
			if key != "" {
				req.Header.Set("Authorization", "Bearer "+key)
			}
			if cookie != "" {
				req.Header.Set("Cookie", cookie)
			}
			resp, err := client.Do(req)
			if err != nil {
				errs <- err
				return
			}
			defer resp.Body.Close()
			if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
				errs <- fmt.Errorf("stream %s answered %d %s", url, resp.StatusCode, resp.Header.Get("Content-Type"))
				return
			}
			st.open.Add(1)
			errs <- nil
			defer st.open.Add(-1)
			buf := make([]byte, 32<<10)
			for {
				m, err := resp.Body.Read(buf)
				st.bytes.Add(int64(m))
				if err != nil {
					return
				}
			}
		}()
	}
	for range n {
		if err := <-errs; err != nil {
			cancel()
			return nil, nil, fmt.Errorf("bench: open streams: %w", err)
		}
	}
	return st, cancel, nil
}
