package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hotlane/hotlane/feedback/store"
	"github.com/hotlane/hotlane/feedback/store/storetest"
	"github.com/hotlane/hotlane/jobs"
)

// TestThreeReplicas runs three server processes on one PostgreSQL
// database, as the README's "Running several replicas" does: scores
// through all three land in the same conversations, counted exactly; a
// tuning job scheduled every two seconds runs once per tick across the
// three; and a ruleset published through one is served by all within 5 s.
// (Here the three fire within milliseconds of each tick, so the job's lock
// alone keeps the others out while one runs; the tick claim, which keeps a
// replica whose clock or cron fires later from running the tick again, is
// TestTuneRunsOncePerTick's and TestTuneScheduleClaimsItsTicks'.)
func TestThreeReplicas(t *testing.T) {
	if testing.Short() {
		t.Skip("starts server processes")
	}
	dsn := storetest.DSN(t, "postgres")
	flags := []string{"--db", dsn, "--log-level", "warn", "--tune-schedule", "*/2 * * * * *"}
	var bases []string
	var key string
	for i := range 3 {
		addr := freeAddr(t)
		args := append([]string{"--addr", addr}, flags...)
		if i == 0 {
			args = append(args, "--demo", "--demo-history=false")
		}
		_, printed := startProcess(t, args...)
		waitReady(t, "http://"+addr+"/readyz")
		if i == 0 {
			key = printed
		}
		bases = append(bases, "http://"+addr)
	}
	started := time.Now()

	score := func(base, conv string) (int, int) {
		t.Helper()
		c := client{t: t, base: base, key: key}
		var out struct {
			RulesetVersion int `json:"ruleset_version"`
		}
		code := c.call(http.MethodPost, "/v1/score", fmt.Sprintf(`{"conversation_id":%q,"channel":"web","signals":{"deal_size":%d}}`, conv, len(conv)*1000), &out)
		return code, out.RulesetVersion
	}
	sent := map[string]int{}
	for i := range 300 {
		conv := fmt.Sprintf("replica-%d", i%20)
		if code, _ := score(bases[i%3], conv); code != http.StatusOK {
			t.Fatalf("score %d through replica %d: %d", i, i%3, code)
		}
		sent[conv]++
	}
	for conv, n := range sent {
		var out struct {
			Decisions int `json:"decisions"`
		}
		for r, base := range bases {
			c := client{t: t, base: base, key: key}
			if code := c.call(http.MethodGet, "/v1/conversations/"+conv, "", &out); code != http.StatusOK || out.Decisions != n {
				t.Errorf("%s through replica %d: %d, %d decisions; %d were scored", conv, r, code, out.Decisions, n)
			}
		}
	}

	// A ruleset published through the first replica is served by all.

	var published struct {
		Version int `json:"version"`
	}
	rules := strings.Replace(string(demoPolicy), "deal_size >= 50000", "deal_size >= 40000", 1)
	req := func() int {
		req, _ := http.NewRequest(http.MethodPut, bases[0]+"/v1/rules", strings.NewReader(rules))
		req.Header.Set("Content-Type", "application/yaml")
		req.Header.Set("Authorization", "Bearer "+key)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		if err := json.NewDecoder(res.Body).Decode(&published); err != nil {
			t.Fatal(err)
		}
		return res.StatusCode
	}
	at := time.Now()
	if code := req(); code != http.StatusCreated || published.Version < 2 {
		t.Fatalf("publish: %d, version %d", code, published.Version)
	}
	for r, base := range bases {
		for i := 0; ; i++ {
			_, v := score(base, fmt.Sprintf("after-publish-%d-%d", r, i))
			if v == published.Version {
				break
			}
			if time.Since(at) > 5*time.Second {
				t.Fatalf("replica %d still serves ruleset %d %v after the publish", r, v, time.Since(at).Round(time.Millisecond))
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	t.Logf("ruleset %d served by all three %v after it was published", published.Version, time.Since(at).Round(time.Millisecond))

	// Let the schedule tick a few more times, then count its runs.
	time.Sleep(time.Until(started.Add(9 * time.Second)))
	st, err := store.Open(context.Background(), dsn, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	runs, err := st.JobRuns(context.Background(), jobs.TuneJob, 1000)
	if err != nil {
		t.Fatal(err)
	}
	perTick := map[time.Time]int{}
	for _, r := range runs {
		if r.Trigger == "schedule" {
			perTick[r.StartedAt.Truncate(2*time.Second)]++
		}
	}
	elapsed := int(time.Since(started)/(2*time.Second)) + 1
	if len(perTick) < 2 || len(perTick) > elapsed+1 {
		t.Errorf("scheduled runs in %d ticks over %v; want one per tick", len(perTick), time.Since(started).Round(time.Second))
	}
	for tick, n := range perTick {
		if n != 1 {
			t.Errorf("the tick at %s ran %d times", tick.Format(time.TimeOnly), n)
		}
	}
	t.Logf("%d ticks, each run once across three replicas", len(perTick))
}
