package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/hotlane/hotlane/model"
)

// simConfig is what runSimulate was asked to do.
type simConfig struct {
	URL           string
	Key           string
	Weeks         int
	Conversations int
	Seed          int64
	LabelNoise    float64
	Concurrency   int
	JSON          bool
	// ReplaceRules allows a run against a server of the user's (--url) to
	// make its ruleset live there; the ruleset and the active model that
	// were live before are restored when it ends.
	ReplaceRules bool
	// RunID prefixes the conversation ids; empty means a random one, so
	// runs against one server do not collide.
	RunID string
}

// simRow is one simulated week as the table shows it.
type simRow struct {
	Week          int       `json:"week"`
	Start         time.Time `json:"start"`
	End           time.Time `json:"end"`
	Conversations int       `json:"conversations"`
	Positives     int       `json:"positives"`
	AlertsFired   int       `json:"alerts_fired"`
	// AlertPrecision is the share of fired tier alerts whose conversation
	// truly converted; null without alerts.
	AlertPrecision *float64 `json:"alert_precision"`
	// TrueRecall is the share of truly positive conversations that fired
	// a tier alert; null without positives.
	TrueRecall *float64 `json:"true_recall"`
	// ModelAUC is the ROC-AUC of the score the server returned on each
	// conversation's last call; BestAUC that of the true probability.
	// Both are null when the week holds one class only.
	ModelAUC *float64 `json:"model_auc"`
	BestAUC  *float64 `json:"best_auc"`
	// ModelVersion is the model most of the week's last calls were scored
	// with; null for rules only.
	ModelVersion   *int `json:"model_version"`
	RulesetVersion int  `json:"ruleset_version"`
	ReviewAlerts   int  `json:"review_alerts"`
	Labelled       int  `json:"labelled"`
	// Tuning is the tuning run after the week, absent after the last one.
	Tuning *simTuning `json:"tuning,omitempty"`
}

// simTuning is what the tuning job after a week decided.
type simTuning struct {
	AsOf             time.Time      `json:"as_of"`
	RunID            string         `json:"run_id,omitempty"`
	Status           string         `json:"status,omitempty"`
	CandidateVersion *int           `json:"candidate_model_version"`
	Promoted         bool           `json:"promoted"`
	Reason           string         `json:"reason"`
	Live             map[string]any `json:"live,omitempty"`
	Candidate        map[string]any `json:"candidate,omitempty"`
}

// simReport is the whole run, as --json prints it.
type simReport struct {
	Seed                 int64    `json:"seed"`
	ConversationsPerWeek int      `json:"conversations_per_week"`
	LabelNoise           float64  `json:"label_noise"`
	Weeks                []simRow `json:"weeks"`
	ElapsedSeconds       float64  `json:"elapsed_seconds"`
}

// runSimulate drives a server with a synthetic world whose true
// probabilities are known: it publishes partly right rules, scores every
// conversation, plays agents who label alerts with some noise, reports
// first responses and outcomes, runs the tuning job between weeks, and
// prints week by week how the server's alerts and scores compare with the
// truth. Against a server given with --url, the simulation's policy
// becomes the live ruleset and its conversations join the server's
// history, dated in the past weeks.
func runSimulate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg := simConfig{}
	fs := newFlagSet("simulate", stderr)
	prog := newProgress(stderr)
	prog.register(fs)
	fs.StringVar(&cfg.URL, "url", "", "base URL of a running server; without it a server is started in-process on a temporary SQLite database")
	fs.StringVar(&cfg.Key, "key", "", "API key with the score, feedback and admin scopes (with --url)")
	fs.IntVar(&cfg.Weeks, "weeks", 4, "simulated weeks, with the tuning job run between them")
	fs.IntVar(&cfg.Conversations, "conversations", 5000, "conversations per week")
	fs.Int64Var(&cfg.Seed, "seed", 1, "seed of the synthetic world")
	fs.Float64Var(&cfg.LabelNoise, "label-noise", 0.1, "probability that an agent labels an alert against the conversation's true outcome")
	fs.IntVar(&cfg.Concurrency, "concurrency", 16, "concurrent requests")
	fs.BoolVar(&cfg.JSON, "json", false, "print one JSON object with the weekly rows")
	fs.BoolVar(&cfg.ReplaceRules, "replace-rules", false, "with --url: allow the run to publish its own ruleset on that server and promote the models it trains (the ruleset and model live before are made live again when it ends)")
	rest, err := parseFlags(fs, args, osEnv)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return usagef("simulate takes no arguments, got %q", rest)
	}
	var errs []string
	if cfg.Weeks < 1 {
		errs = append(errs, "--weeks: must be at least 1")
	}
	if cfg.Conversations < 1 {
		errs = append(errs, "--conversations: must be at least 1")
	}
	if !(cfg.LabelNoise >= 0 && cfg.LabelNoise <= 0.5) {
		errs = append(errs, "--label-noise: must be between 0 and 0.5")
	}
	if cfg.Concurrency < 1 {
		errs = append(errs, "--concurrency: must be at least 1")
	}
	if cfg.URL != "" && cfg.Key == "" {
		errs = append(errs, "--key: required with --url (hotlane apikey create --name simulate --scopes score,feedback,admin)")
	}
	if cfg.URL != "" && !cfg.ReplaceRules {
		errs = append(errs, "--replace-rules: required with --url: the simulation publishes its own ruleset on that server and promotes the models it trains, "+
			"and its conversations join the server's history; with --replace-rules the ruleset and model live before are made live again when it ends")
	}
	if err := invalid(errs); err != nil {
		return err
	}

	// What goes to standard error goes through the status line, which
	// clears itself for it.
	prog.start()
	defer prog.done()
	if cfg.URL == "" {
		srv, err := startSimServer(ctx, prog)
		if err != nil {
			return err
		}
		defer func() {
			if err := srv.stop(); err != nil {
				fmt.Fprintln(prog, "simulate: stopping the in-process server:", err)
			}
		}()
		// A fresh database lets ids repeat: the server's review sample is
		// a hash of the conversation id, so a seed then gives the same run.
		cfg.URL, cfg.Key, cfg.RunID = srv.url, srv.key, fmt.Sprintf("s%d", cfg.Seed)
	}
	rep, err := simulate(ctx, cfg, prog)
	if err != nil {
		return err
	}
	prog.done()
	if cfg.JSON {
		enc := json.NewEncoder(stdout)
		return enc.Encode(rep)
	}
	return rep.writeText(stdout)
}

// simServer is a server simulate started in-process.
type simServer struct {
	url, key string
	dir      string
	cancel   context.CancelFunc
	done     chan error
}

// startSimServer creates a temporary SQLite database with an admin key and
// serves it on a free loopback port.
func startSimServer(ctx context.Context, stderr io.Writer) (*simServer, error) {
	dir, err := os.MkdirTemp("", "hotlane-simulate-")
	if err != nil {
		return nil, fmt.Errorf("simulate: %w", err)
	}
	db := filepath.Join(dir, "hotlane.db")
	var out bytes.Buffer
	err = run(ctx, []string{"migrate", "--db", db, "--log-level", "error"}, strings.NewReader(""), &out, stderr)
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("simulate: create its database: %w", err)
	}
	out.Reset()
	err = run(ctx, []string{"apikey", "create", "--db", db, "--log-level", "error", "--name", "simulate", "--scopes", "score,feedback,admin"},
		strings.NewReader(""), &out, stderr)
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("simulate: create API key: %w", err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	key := strings.TrimSpace(lines[len(lines)-1])

	cfg, err := parseServeConfig([]string{"--addr", "127.0.0.1:0", "--db", db, "--log-level", "error", "--log-format", "text",
		// The simulation runs the tuning job itself, between weeks.
		"--tune-schedule", "off"},
		func(string) (string, bool) { return "", false }, stderr)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	sctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s := &simServer{key: key, dir: dir, cancel: cancel, done: make(chan error, 1)}
	ready := make(chan string, 1)
	go func() { s.done <- serve(sctx, cfg, io.Discard, stderr, ready) }()
	select {
	case addr := <-ready:
		s.url = "http://" + addr
		return s, nil
	case err := <-s.done:
		cancel()
		os.RemoveAll(dir)
		return nil, fmt.Errorf("simulate: server ended before it was ready: %w", err)
	case <-ctx.Done():
		_ = s.stop()
		return nil, ctx.Err()
	}
}

func (s *simServer) stop() error {
	s.cancel()
	err := <-s.done
	if rmErr := os.RemoveAll(s.dir); err == nil {
		err = rmErr
	}
	return err
}

// simulate runs the weeks against the server at cfg.URL, telling prog
// how far it is; its lines go to prog (standard error).
func simulate(ctx context.Context, cfg simConfig, prog *progressLine) (*simReport, error) {
	began := time.Now()
	world, err := newSimWorld(cfg.Seed)
	if err != nil {
		return nil, err
	}
	c := &simClient{
		base: strings.TrimRight(cfg.URL, "/"),
		key:  cfg.Key,
		http: &http.Client{
			Timeout: 2 * time.Minute,
			Transport: &http.Transport{
				MaxIdleConns:        cfg.Concurrency * 2,
				MaxIdleConnsPerHost: cfg.Concurrency * 2,
				IdleConnTimeout:     90 * time.Second,
			},
		},
	}
	defer c.http.CloseIdleConnections()

	runID := cfg.RunID
	if runID == "" {
		runID = newRunID()
	}
	if cfg.ReplaceRules {
		before, err := c.liveVersions(ctx)
		if err != nil {
			return nil, err
		}
		fmt.Fprintf(prog, "simulate: publishing the simulation's ruleset on %s (live now: %s); it is restored when the run ends\n", c.base, before)
		defer func() {
			// Restored even when the run failed or was interrupted.
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
			defer cancel()
			if err := c.restore(rctx, before); err != nil {
				fmt.Fprintf(prog, "simulate: could not restore %s: %v\n", before, err)
				return
			}
			fmt.Fprintf(prog, "simulate: restored %s\n", before)
		}()
	}
	ruleset, err := c.publishPolicy(ctx, runID)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(prog, "simulate: run %s, published ruleset %d, %d weeks of %d conversations against %s\n",
		runID, ruleset, cfg.Weeks, cfg.Conversations, c.base)

	rep := &simReport{Seed: cfg.Seed, ConversationsPerWeek: cfg.Conversations, LabelNoise: cfg.LabelNoise}
	start := simStart(time.Now(), cfg.Weeks)
	var modelVersion *int
	for k := 1; k <= cfg.Weeks; k++ {
		ws := start.AddDate(0, 0, 7*(k-1))
		we := ws.AddDate(0, 0, 7)
		// The server picks up a new ruleset or model on its next reload;
		// a probe call waits for it, so a week is scored by one version.
		versions := fmt.Sprintf("ruleset %d and no model", ruleset)
		if modelVersion != nil {
			versions = fmt.Sprintf("ruleset %d and model %d", ruleset, *modelVersion)
		}
		prog.step("simulate: week %d of %d: waiting for the server to score with %s", k, cfg.Weeks, versions)
		if err := c.waitForVersions(ctx, runID, ws, ruleset, modelVersion); err != nil {
			return nil, err
		}
		convs := world.Week(k, cfg.Conversations, ws)
		row, err := c.playWeek(ctx, cfg, runID, k, ws, we, convs, prog)
		if err != nil {
			return nil, err
		}
		if k < cfg.Weeks {
			prog.step("simulate: week %d of %d: running the tuning job", k, cfg.Weeks)
			fmt.Fprintf(prog, "simulate: week %d: running the tuning job as of %s\n", k, we.Format(time.RFC3339))
			t, err := c.tune(ctx, we)
			if err != nil {
				return nil, err
			}
			row.Tuning = t
			if t.Promoted && t.CandidateVersion != nil {
				modelVersion = t.CandidateVersion
			}
			fmt.Fprintf(prog, "simulate: week %d: tuning %s\n", k, t.summary())
		}
		rep.Weeks = append(rep.Weeks, row)
	}
	rep.ElapsedSeconds = time.Since(began).Seconds()
	return rep, nil
}

func newRunID() string {
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		return strconv.FormatInt(time.Now().UnixNano(), 36)
	}
	return hex.EncodeToString(b[:])
}

// simOutcome is what the server answered for one conversation.
type simOutcome struct {
	score        float64
	modelVersion *int
	ruleset      int
	firedTiers   int  // fired tier alerts
	review       bool // sampled for review
}

// playWeek scores the week's conversations, plays the agents and reports
// the outcomes, then measures the week against the truth.
func (c *simClient) playWeek(ctx context.Context, cfg simConfig, runID string, k int, ws, we time.Time, convs []simConv, prog *progressLine) (simRow, error) {
	convID := func(cv *simConv) string { return "sim-" + runID + "-" + cv.ID }
	byID := make(map[string]*simConv, len(convs))
	for i := range convs {
		byID[convID(&convs[i])] = &convs[i]
	}
	outcomes := make([]simOutcome, len(convs))
	// phase shows a part of the week beginning on the status line, and
	// returns what to call as each of its n items is done.
	phase := func(what string, n int, noun string) func() {
		prog.step("simulate: week %d of %d: %s: 0 of %d %s", k, cfg.Weeks, what, n, noun)
		var done atomic.Int64
		return func() {
			prog.update("simulate: week %d of %d: %s: %d of %d %s", k, cfg.Weeks, what, done.Add(1), n, noun)
		}
	}

	// Chats: every score call, then the first human response.
	chatted := phase("scoring", len(convs), "conversations")
	err := c.each(ctx, cfg.Concurrency, len(convs), func(ctx context.Context, i int) error {
		defer chatted()
		cv := &convs[i]
		id := convID(cv)
		o := &outcomes[i]
		for _, call := range cv.Calls {
			r, err := c.score(ctx, id, cv.Channel, call)
			if err != nil {
				return err
			}
			o.score, o.modelVersion, o.ruleset = r.Score, r.ModelVersion, r.RulesetVersion
			if r.Alert != nil && r.Alert.Status == "fired" {
				switch r.Alert.Kind {
				case "tier":
					o.firedTiers++
				case "review":
					o.review = true
				}
			}
		}
		return c.event(ctx, id, simEvent{Type: "first_response", At: cv.FirstResponseAt, Agent: cv.Agent}, runID+"-"+cv.ID+"-first")
	})
	if err != nil {
		return simRow{}, fmt.Errorf("week %d: chats: %w", k, err)
	}
	fmt.Fprintf(prog, "simulate: week %d: scored %d conversations\n", k, len(convs))

	// Agents label every fired alert of the week's conversations.
	alerts, err := c.unlabelledAlerts(ctx, byID)
	if err != nil {
		return simRow{}, fmt.Errorf("week %d: %w", k, err)
	}
	labelled := phase("labelling", len(alerts), "alerts")
	err = c.each(ctx, cfg.Concurrency, len(alerts), func(ctx context.Context, i int) error {
		defer labelled()
		a := alerts[i]
		cv := byID[a.ConversationID]
		useful := cv.Positive != (cv.LabelDraw < cfg.LabelNoise)
		label := "noise"
		if useful {
			label = "useful"
		}
		return c.label(ctx, a.ID, label, cv.Agent)
	})
	if err != nil {
		return simRow{}, fmt.Errorf("week %d: labels: %w", k, err)
	}

	// Platforms report the outcomes.
	reported := phase("reporting outcomes", len(convs), "conversations")
	err = c.each(ctx, cfg.Concurrency, len(convs), func(ctx context.Context, i int) error {
		defer reported()
		cv := &convs[i]
		ev := simEvent{Type: "lost", At: cv.OutcomeAt, Agent: cv.Agent}
		if cv.Positive {
			v := cv.Value
			ev.Type, ev.Value = "converted", &v
		}
		return c.event(ctx, convID(cv), ev, runID+"-"+cv.ID+"-outcome")
	})
	if err != nil {
		return simRow{}, fmt.Errorf("week %d: outcomes: %w", k, err)
	}

	row := weekRow(k, ws, we, convs, outcomes)
	row.Labelled = len(alerts)
	fmt.Fprintf(prog, "simulate: week %d: %d alerts fired, %d labelled, precision %s, model AUC %s (best %s)\n",
		k, row.AlertsFired, row.Labelled, fmtRate(row.AlertPrecision), fmtRate(row.ModelAUC), fmtRate(row.BestAUC))
	return row, nil
}

// weekRow measures a week's answers against the truth.
func weekRow(k int, ws, we time.Time, convs []simConv, outcomes []simOutcome) simRow {
	row := simRow{Week: k, Start: ws, End: we, Conversations: len(convs)}
	scores := make([]float64, len(convs))
	truth := make([]float64, len(convs))
	labels := make([]float64, len(convs))
	var firedPositive, positivesAlerted int
	versions := map[int]int{}
	for i, cv := range convs {
		o := outcomes[i]
		scores[i], truth[i] = o.score, cv.TrueProb
		if cv.Positive {
			labels[i] = 1
			row.Positives++
			if o.firedTiers > 0 {
				positivesAlerted++
			}
			firedPositive += o.firedTiers
		}
		row.AlertsFired += o.firedTiers
		if o.review {
			row.ReviewAlerts++
		}
		v := 0
		if o.modelVersion != nil {
			v = *o.modelVersion
		}
		versions[v]++
		row.RulesetVersion = max(row.RulesetVersion, o.ruleset)
	}
	if row.AlertsFired > 0 {
		p := float64(firedPositive) / float64(row.AlertsFired)
		row.AlertPrecision = &p
	}
	if row.Positives > 0 {
		r := float64(positivesAlerted) / float64(row.Positives)
		row.TrueRecall = &r
	}
	row.ModelAUC = simAUC(scores, labels)
	row.BestAUC = simAUC(truth, labels)
	best, bestN := 0, -1
	for v, n := range versions {
		if n > bestN || (n == bestN && v > best) {
			best, bestN = v, n
		}
	}
	if best > 0 {
		row.ModelVersion = &best
	}
	return row
}

// simAUC is the ROC-AUC of scores against 0/1 labels, nil when the labels
// hold one class only.
func simAUC(scores, labels []float64) *float64 {
	var pos int
	for _, l := range labels {
		if l == 1 {
			pos++
		}
	}
	if pos == 0 || pos == len(labels) {
		return nil
	}
	auc := model.ROCAUC(scores, labels, nil)
	return &auc
}

// writeText prints the weekly table and the tuning decisions.
func (r *simReport) writeText(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "week\tconversations\talerts\tprecision\ttrue recall\tmodel AUC\tbest AUC\tmodel\ttuning after\t")
	for _, row := range r.Weeks {
		version := "rules"
		if row.ModelVersion != nil {
			version = "v" + strconv.Itoa(*row.ModelVersion)
		}
		tuning := "-"
		switch t := row.Tuning; {
		case t == nil:
		case t.Promoted && t.CandidateVersion != nil:
			tuning = fmt.Sprintf("v%d promoted", *t.CandidateVersion)
		case t.CandidateVersion != nil:
			tuning = fmt.Sprintf("v%d kept back", *t.CandidateVersion)
		default:
			tuning = "no candidate"
		}
		fmt.Fprintf(tw, "%d\t%d\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t\n", row.Week, row.Conversations, row.AlertsFired,
			fmtRate(row.AlertPrecision), fmtRate(row.TrueRecall), fmtRate(row.ModelAUC), fmtRate(row.BestAUC), version, tuning)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	var b strings.Builder
	for _, row := range r.Weeks {
		if row.Tuning != nil {
			fmt.Fprintf(&b, "after week %d: %s\n", row.Week, row.Tuning.summary())
		}
	}
	fmt.Fprintf(&b, "seed %d, %d conversations a week, label noise %.2f, %.0f s\n",
		r.Seed, r.ConversationsPerWeek, r.LabelNoise, r.ElapsedSeconds)
	_, err := io.WriteString(w, b.String())
	return err
}

func fmtRate(p *float64) string {
	if p == nil {
		return "-"
	}
	return fmt.Sprintf("%.3f", *p)
}

func (t *simTuning) summary() string {
	var b strings.Builder
	switch {
	case t.Promoted && t.CandidateVersion != nil:
		fmt.Fprintf(&b, "model v%d promoted", *t.CandidateVersion)
	case t.CandidateVersion != nil:
		fmt.Fprintf(&b, "model v%d not promoted", *t.CandidateVersion)
	default:
		b.WriteString("no candidate")
	}
	if t.Reason != "" {
		b.WriteString(": ")
		b.WriteString(t.Reason)
	}
	return b.String()
}

// simClient calls the server's API.
type simClient struct {
	base, key string
	http      *http.Client
}

// simAPIError is an answer the simulation did not expect.
type simAPIError struct {
	method, path string
	status       int
	body         string
}

func (e *simAPIError) Error() string {
	return fmt.Sprintf("%s %s: %d %s", e.method, e.path, e.status, strings.TrimSpace(e.body))
}

// do sends one request and decodes a 2xx JSON answer into out. Answers
// that say the server is busy (429, 503) and broken connections are
// retried with a growing pause.
func (c *simClient) do(ctx context.Context, method, path, contentType string, body []byte, header map[string]string, out any) error {
	var lastErr error
	for attempt := range 6 {
		if attempt > 0 {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(time.Duration(50<<attempt) * time.Millisecond):
			}
		}
		req, err := http.NewRequestWithContext(ctx, method, c.base+path, bytes.NewReader(body))
		if err != nil {
			return err
		}
		req.Header.Set("Authorization", "Bearer "+c.key)
		if body != nil {
			req.Header.Set("Content-Type", contentType)
		}
		for k, v := range header {
			req.Header.Set(k, v)
		}
		resp, err := c.http.Do(req)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			lastErr = fmt.Errorf("%s %s: %w", method, path, err)
			continue
		}
		data, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			lastErr = fmt.Errorf("%s %s: %w", method, path, err)
			continue
		}
		if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable {
			lastErr = &simAPIError{method, path, resp.StatusCode, string(data)}
			continue
		}
		if resp.StatusCode/100 != 2 {
			return &simAPIError{method, path, resp.StatusCode, string(data)}
		}
		if out == nil {
			return nil
		}
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("%s %s: decode answer: %w", method, path, err)
		}
		return nil
	}
	return lastErr
}

func (c *simClient) postJSON(ctx context.Context, path string, in any, header map[string]string, out any) error {
	body, err := json.Marshal(in)
	if err != nil {
		return err
	}
	return c.do(ctx, http.MethodPost, path, "application/json", body, header, out)
}

// simLive is what a server had live before a simulation replaced it.
type simLive struct {
	ruleset int // 0: none
	model   int // 0: none (rules only)
}

func (l simLive) String() string {
	r := "no ruleset"
	if l.ruleset > 0 {
		r = fmt.Sprintf("ruleset %d", l.ruleset)
	}
	if l.model > 0 {
		return fmt.Sprintf("%s and model %d", r, l.model)
	}
	return r + " and no model"
}

// liveVersions reads the server's live ruleset and active model.
func (c *simClient) liveVersions(ctx context.Context) (simLive, error) {
	var l simLive
	var rs struct {
		Version int `json:"version"`
	}
	err := c.do(ctx, http.MethodGet, "/v1/rules", "", nil, nil, &rs)
	var apiErr *simAPIError
	switch {
	case err == nil:
		l.ruleset = rs.Version
	case errors.As(err, &apiErr) && apiErr.status == http.StatusNotFound:
	default:
		return l, fmt.Errorf("read the live ruleset: %w", err)
	}
	var models struct {
		Models []struct {
			Version int    `json:"version"`
			Status  string `json:"status"`
		} `json:"models"`
	}
	if err := c.do(ctx, http.MethodGet, "/v1/models", "", nil, nil, &models); err != nil {
		return l, fmt.Errorf("read the active model: %w", err)
	}
	for _, m := range models.Models {
		if m.Status == "active" {
			l.model = m.Version
		}
	}
	return l, nil
}

// restore makes what was live before a run live again. A server that had
// no ruleset keeps the simulation's (a ruleset cannot be unpublished); one
// that had no model goes back to the rules alone.
func (c *simClient) restore(ctx context.Context, l simLive) error {
	if l.ruleset > 0 {
		if err := c.do(ctx, http.MethodPost, fmt.Sprintf("/v1/rulesets/%d/activate", l.ruleset), "", nil, nil, nil); err != nil {
			return err
		}
	}
	if l.model > 0 {
		return c.do(ctx, http.MethodPost, fmt.Sprintf("/v1/models/%d/activate", l.model), "", nil, nil, nil)
	}
	for range 1000 { // each rollback retires one model: bounded by the models
		now, err := c.liveVersions(ctx)
		if err != nil || now.model == 0 {
			return err
		}
		if err := c.do(ctx, http.MethodPost, "/v1/models/rollback", "", nil, nil, nil); err != nil {
			return err
		}
	}
	return errors.New("the models the run promoted are still active after 1000 rollbacks")
}

// publishPolicy makes the simulation's policy the live ruleset.
func (c *simClient) publishPolicy(ctx context.Context, runID string) (int, error) {
	var rs struct {
		Version int `json:"version"`
	}
	path := "/v1/rules?note=" + url.QueryEscape("hotlane simulate run "+runID)
	if err := c.do(ctx, http.MethodPut, path, "application/yaml", []byte(simPolicy), nil, &rs); err != nil {
		return 0, fmt.Errorf("publish the simulation policy: %w", err)
	}
	return rs.Version, nil
}

type simScoreRequest struct {
	ConversationID string         `json:"conversation_id"`
	Channel        string         `json:"channel"`
	Signals        map[string]any `json:"signals"`
	Message        string         `json:"message,omitempty"`
	OccurredAt     string         `json:"occurred_at"`
}

type simScoreResponse struct {
	Score          float64 `json:"score"`
	Tier           string  `json:"tier"`
	ModelVersion   *int    `json:"model_version"`
	RulesetVersion int     `json:"ruleset_version"`
	Alert          *struct {
		ID     string `json:"id"`
		Kind   string `json:"kind"`
		Status string `json:"status"`
	} `json:"alert"`
}

func (c *simClient) score(ctx context.Context, id, channel string, call simCall) (simScoreResponse, error) {
	var r simScoreResponse
	err := c.postJSON(ctx, "/v1/score", simScoreRequest{ConversationID: id, Channel: channel, Signals: call.Signals,
		Message: call.Message, OccurredAt: call.At.UTC().Format(time.RFC3339)}, nil, &r)
	return r, err
}

// waitForVersions waits until the server scores with the given ruleset
// and model (nil: no model), probing with a conversation that has no
// signals, no events and no labels, so training never uses it.
func (c *simClient) waitForVersions(ctx context.Context, runID string, at time.Time, ruleset int, model *int) error {
	deadline := time.Now().Add(30 * time.Second)
	probe := simCall{At: at, Signals: map[string]any{}}
	for {
		r, err := c.score(ctx, "sim-"+runID+"-probe", "web", probe)
		if err != nil {
			return fmt.Errorf("probe: %w", err)
		}
		if r.RulesetVersion == ruleset && (model == nil || (r.ModelVersion != nil && *r.ModelVersion == *model)) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the server still scores with ruleset %d and model %v after 30 s", r.RulesetVersion, fmtVersion(r.ModelVersion))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func fmtVersion(v *int) string {
	if v == nil {
		return "none"
	}
	return strconv.Itoa(*v)
}

type simEvent struct {
	Type  string    `json:"type"`
	At    time.Time `json:"at"`
	Value *float64  `json:"value,omitempty"`
	Agent string    `json:"agent,omitempty"`
}

func (c *simClient) event(ctx context.Context, id string, ev simEvent, idempotencyKey string) error {
	ev.At = ev.At.UTC()
	return c.postJSON(ctx, "/v1/conversations/"+url.PathEscape(id)+"/events", ev,
		map[string]string{"Idempotency-Key": idempotencyKey}, nil)
}

type simFeedAlert struct {
	ID             string `json:"id"`
	Kind           string `json:"kind"`
	ConversationID string `json:"conversation_id"`
}

// unlabelledAlerts pages through the unlabelled alert feed and keeps the
// tier and review alerts of the given conversations. SLA escalations go
// to team leads, not to the agents labelling alerts.
func (c *simClient) unlabelledAlerts(ctx context.Context, convs map[string]*simConv) ([]simFeedAlert, error) {
	var out []simFeedAlert
	cursor := ""
	for {
		q := url.Values{"status": {"unlabelled"}, "limit": {"500"}}
		if cursor != "" {
			q.Set("cursor", cursor)
		}
		var page struct {
			Alerts     []simFeedAlert `json:"alerts"`
			NextCursor *string        `json:"next_cursor"`
		}
		if err := c.do(ctx, http.MethodGet, "/v1/alerts?"+q.Encode(), "", nil, nil, &page); err != nil {
			return nil, fmt.Errorf("alert feed: %w", err)
		}
		for _, a := range page.Alerts {
			if _, ok := convs[a.ConversationID]; ok && (a.Kind == "tier" || a.Kind == "review") {
				out = append(out, a)
			}
		}
		if page.NextCursor == nil || *page.NextCursor == "" {
			break
		}
		cursor = *page.NextCursor
	}
	slices.SortFunc(out, func(a, b simFeedAlert) int { return strings.Compare(a.ID, b.ID) })
	return out, nil
}

func (c *simClient) label(ctx context.Context, alertID, label, agent string) error {
	return c.postJSON(ctx, "/v1/alerts/"+url.PathEscape(alertID)+"/label",
		map[string]string{"label": label, "agent": agent}, nil, nil)
}

// tune runs the tuning job as of the end of a week and waits for it.
func (c *simClient) tune(ctx context.Context, asOf time.Time) (*simTuning, error) {
	var resp struct {
		Run struct {
			ID     string `json:"id"`
			Status string `json:"status"`
			Error  string `json:"error"`
		} `json:"run"`
		Report *struct {
			CandidateModelVersion *int           `json:"candidate_model_version"`
			Live                  map[string]any `json:"live"`
			Candidate             map[string]any `json:"candidate"`
			Promotion             struct {
				Promoted bool   `json:"promoted"`
				Reason   string `json:"reason"`
			} `json:"promotion"`
		} `json:"report"`
	}
	body := map[string]string{"as_of": asOf.UTC().Format(time.RFC3339)}
	for attempt := 0; ; attempt++ {
		err := c.postJSON(ctx, "/v1/jobs/tune", body, nil, &resp)
		var ae *simAPIError
		if errors.As(err, &ae) && ae.status == http.StatusConflict && attempt < 60 {
			// Another run holds the job's lock; wait for it to end.
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-time.After(time.Second):
			}
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("tuning job: %w", err)
		}
		break
	}
	t := &simTuning{AsOf: asOf, RunID: resp.Run.ID, Status: resp.Run.Status}
	if resp.Run.Status == "failed" {
		return nil, fmt.Errorf("tuning job run %s failed: %s", resp.Run.ID, resp.Run.Error)
	}
	if resp.Report == nil {
		return nil, fmt.Errorf("tuning job run %s (%s) answered without a report", resp.Run.ID, resp.Run.Status)
	}
	if v := resp.Report.CandidateModelVersion; v != nil && *v > 0 {
		t.CandidateVersion = v
	}
	t.Promoted, t.Reason = resp.Report.Promotion.Promoted, resp.Report.Promotion.Reason
	t.Live, t.Candidate = holdoutScalars(resp.Report.Live), holdoutScalars(resp.Report.Candidate)
	return t, nil
}

// holdoutScalars keeps the numbers of a model's holdout measures (ROC-AUC,
// PR-AUC, log loss, ...) and drops the breakdowns.
func holdoutScalars(m map[string]any) map[string]any {
	if m == nil {
		return nil
	}
	out := map[string]any{}
	for k, v := range m {
		if _, ok := v.(float64); ok {
			out[k] = v
		}
	}
	return out
}

// each runs fn for 0..n-1 on at most workers goroutines and returns the
// first error, after which the remaining items are skipped.
func (c *simClient) each(ctx context.Context, workers, n int, fn func(ctx context.Context, i int) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var next atomic.Int64
	var once sync.Once
	var first error
	var wg sync.WaitGroup
	for range min(workers, n) {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n || ctx.Err() != nil {
					return
				}
				if err := fn(ctx, i); err != nil {
					once.Do(func() { first = err; cancel() })
					return
				}
			}
		})
	}
	wg.Wait()
	if first != nil {
		return first
	}
	return ctx.Err()
}
