package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hotlane/hotlane/feedback/store"
	"github.com/hotlane/hotlane/feedback/store/storetest"
	"github.com/hotlane/hotlane/jobs"
)

func TestTuneSchedule(t *testing.T) {
	from := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC) // a Wednesday
	tests := []struct {
		spec, tz string
		want     time.Time
	}{
		{"0 6 * * 1", "UTC", time.Date(2026, 11, 30, 6, 0, 0, 0, time.UTC)},
		// 06:00 in Berlin (UTC+1 in winter) is 05:00 UTC.
		{"0 6 * * 1", "Europe/Berlin", time.Date(2026, 11, 30, 5, 0, 0, 0, time.UTC)},
		{"30 2 * * *", "UTC", time.Date(2026, 11, 26, 2, 30, 0, 0, time.UTC)},
		{"@daily", "UTC", time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC)},
		// Six fields: seconds first.
		{"*/10 * * * * *", "UTC", time.Date(2026, 11, 25, 12, 0, 10, 0, time.UTC)},
	}
	for _, tt := range tests {
		next, _, err := parseSchedule(tt.spec, tt.tz, from)
		if err != nil {
			t.Fatalf("%s in %s: %v", tt.spec, tt.tz, err)
		}
		if !next.Equal(tt.want) {
			t.Errorf("%s in %s: next %v, want %v", tt.spec, tt.tz, next.UTC(), tt.want)
		}
	}
	if next, _, err := parseSchedule("off", "UTC", from); err != nil || !next.IsZero() {
		t.Errorf("off: %v, %v", next, err)
	}
	for _, bad := range [][2]string{{"0 6 * *", "UTC"}, {"61 * * * *", "UTC"}, {"0 6 * * 1", "Mars/Olympus"}} {
		if _, _, err := parseSchedule(bad[0], bad[1], from); err == nil {
			t.Errorf("%q in %q: accepted", bad[0], bad[1])
		}
	}
	// serve refuses a bad schedule at start, with every problem listed.
	_, err := parseServeConfig([]string{"--tune-schedule", "every monday", "--promotion", "sometimes"}, envOf(nil), io.Discard)
	if err == nil {
		t.Fatal("bad tuning flags accepted")
	}
	for _, want := range []string{"--tune-schedule", "--promotion"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %s", err, want)
		}
	}
}

// The schedule hands each run the tick it is for, which the run claims:
// after a few ticks of a schedule every second, each is claimed, so
// another process firing at them would skip them.
func TestTuneScheduleClaimsItsTicks(t *testing.T) {
	ctx0 := context.Background()
	st, err := store.Open(ctx0, filepath.Join(t.TempDir(), "h.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.Migrate(ctx0); err != nil {
		t.Fatal(err)
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	tuner := &jobs.Tuner{Store: st, Log: quiet}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c, err := startTuneSchedule(ctx, "* * * * * *", time.UTC, tuner, quiet)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	time.Sleep(2500 * time.Millisecond)
	<-c.Stop().Done()
	runs, err := st.JobRuns(ctx, jobs.TuneJob, 10)
	if err != nil || len(runs) == 0 {
		t.Fatalf("runs %v, %v", runs, err)
	}
	for _, r := range runs {
		tick := r.StartedAt.Truncate(time.Second)
		if tick.Before(start.Truncate(time.Second)) {
			continue
		}
		claimed, err := st.ClaimJobTick(ctx, jobs.TuneJob, tick)
		if err != nil || claimed {
			t.Errorf("the tick %s of a run was not claimed by it (claimed now %v, %v)", tick.Format(time.TimeOnly), claimed, err)
		}
	}
}

// TestTuneAcrossTwoServers runs the learning loop through HTTP with two
// servers on one database: traffic and outcomes go to both, the tuning job
// runs on one, and the other serves the promoted model within 5 seconds
// (its reload interval is the default 2 s).
func TestTuneAcrossTwoServers(t *testing.T) {
	// Several processes on one database need PostgreSQL; SQLite serves one.
	for _, engine := range []string{"postgres"} {
		t.Run(engine, func(t *testing.T) {
			dsn := storetest.DSN(t, engine)
			a := startServe(t, "--db", dsn, "--demo", "--demo-history=false", "--log-level", "error", "--tune-schedule", "off")
			defer a.stop(t)
			b := startServe(t, "--db", dsn, "--log-level", "error", "--tune-schedule", "off")
			defer b.stop(t)
			ca := client{t: t, base: "http://" + a.addr, key: a.key}
			cb := client{t: t, base: "http://" + b.addr, key: a.key}

			// Conversations whose conversion depends on their plan (which no
			// rule reads) and on big deals; half go through each server.
			rng := rand.New(rand.NewPCG(11, 12))
			start := time.Now().UTC().Add(-20 * 24 * time.Hour)
			for i := range 400 {
				c := ca
				if i%2 == 1 {
					c = cb
				}
				plan := []string{"free", "pro", "enterprise"}[rng.IntN(3)]
				deal := math.Round(math.Exp(rng.NormFloat64() + 8))
				logit := -2 + 2.5*bf(plan == "enterprise") + 1.5*bf(deal >= 5000)
				converted := rng.Float64() < 1/(1+math.Exp(-logit))
				at := start.Add(time.Duration(i) * time.Hour).Format(time.RFC3339)
				id := fmt.Sprintf("conv-%d", i)
				body := fmt.Sprintf(`{"conversation_id":%q,"channel":"web","occurred_at":%q,"signals":{"plan":%q,"deal_size":%v,"lifecycle_stage":"lead"}}`,
					id, at, plan, deal)
				if code := c.call("POST", "/v1/score", body, nil); code != http.StatusOK {
					t.Fatalf("score %d: %d", i, code)
				}
				typ := "lost"
				if converted {
					typ = "converted"
				}
				if code := c.call("POST", "/v1/conversations/"+id+"/events", fmt.Sprintf(`{"type":%q,"at":%q}`, typ, at), nil); code != http.StatusCreated {
					t.Fatalf("event %d: %d", i, code)
				}
			}

			var tuned struct {
				Run struct {
					Status string `json:"status"`
				} `json:"run"`
				Report struct {
					ID                    string `json:"id"`
					CandidateModelVersion int    `json:"candidate_model_version"`
					Candidate             struct {
						ROCAUC float64 `json:"roc_auc"`
					} `json:"candidate"`
					Promotion struct {
						Promoted bool   `json:"promoted"`
						Reason   string `json:"reason"`
					} `json:"promotion"`
				} `json:"report"`
			}
			if code := ca.call("POST", "/v1/jobs/tune", "", &tuned); code != http.StatusOK || tuned.Run.Status != "succeeded" {
				t.Fatalf("tune: %d %+v", code, tuned)
			}
			v := tuned.Report.CandidateModelVersion
			if v == 0 || tuned.Report.Candidate.ROCAUC < 0.7 {
				t.Fatalf("report = %+v", tuned.Report)
			}
			if !tuned.Report.Promotion.Promoted {
				if code := ca.call("POST", fmt.Sprintf("/v1/models/%d/promote", v), "", nil); code != http.StatusOK {
					t.Fatalf("promote: %d", code)
				}
			}
			promoted := time.Now()

			// The other server serves the new model within 5 seconds.
			for {
				var out struct {
					ModelVersion *int `json:"model_version"`
				}
				if code := cb.call("POST", "/v1/score", `{"conversation_id":"probe","channel":"web","signals":{"plan":"pro"}}`, &out); code != http.StatusOK {
					t.Fatalf("probe: %d", code)
				}
				if out.ModelVersion != nil && *out.ModelVersion == v {
					break
				}
				if time.Since(promoted) > 5*time.Second {
					t.Fatalf("server b still scores with model %v five seconds after model %d was promoted", out.ModelVersion, v)
				}
				time.Sleep(100 * time.Millisecond)
			}

			// Both servers serve the report.
			for _, c := range []client{ca, cb} {
				var rep struct {
					ID string `json:"id"`
				}
				if code := c.call("GET", "/v1/reports/latest", "", &rep); code != http.StatusOK || rep.ID != tuned.Report.ID {
					t.Errorf("latest report: %d %q, want %q", code, rep.ID, tuned.Report.ID)
				}
			}
			// A bad as_of is the caller's mistake.
			if code := ca.call("POST", "/v1/jobs/tune", `{"as_of":"last monday"}`, nil); code != http.StatusUnprocessableEntity && code != http.StatusBadRequest {
				t.Errorf("bad as_of: %d", code)
			}
		})
	}
}

func bf(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// With --progress always, tune shows on standard error each step of the
// run, n of 5, then clears the line; by default (standard error is not a
// terminal here) nothing is added.
func TestTuneProgress(t *testing.T) {
	db, path := progressDB(t, 300)
	if _, _, err := runCLI(t, "import", "--db", db, "--csv", path, "--label", "Converted", "--log-level", "error"); err != nil {
		t.Fatal(err)
	}
	out, stderr, err := runCLI(t, "tune", "--db", db, "--log-level", "error")
	if err != nil || stderr != "" || !strings.Contains(out, "tuning report") {
		t.Fatalf("tune: %v, stderr %q: want a report and nothing on stderr\n%s", err, stderr, out)
	}
	out, stderr, err = runCLI(t, "tune", "--db", db, "--log-level", "error", "--progress", "always")
	if err != nil || !strings.Contains(out, "tuning report") {
		t.Fatalf("tune --progress always: %v\n%s", err, out)
	}
	// Steps 3 and 4 (measuring, thresholds) need enough evidence; the
	// others are in every run that trains.
	for _, want := range []string{"\rtune: step 1 of 5: reading decisions", "\rtune: step 2 of 5: training", "\rtune: step 5 of 5: saving the report"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%q", want, stderr)
		}
	}
	if strings.Contains(stderr, "\n") || !lastCleared(stderr) {
		t.Errorf("stderr is not one line redrawn and cleared at the end:\n%q", stderr)
	}
}
