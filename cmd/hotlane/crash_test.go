package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hotlane/hotlane/feedback/store"
	"github.com/hotlane/hotlane/feedback/store/storetest"
)

// crashLedger is what the servers acknowledged across the kills.
type crashLedger struct {
	mu        sync.Mutex
	decisions map[string]string // decision id -> conversation
	fired     map[string]string // alert id -> its team, asked after the kills
	labels    map[string]string // alert id -> agent whose label was acknowledged
	events    map[string]string // Idempotency-Key -> event id
	eventConv map[string]string // Idempotency-Key -> conversation
	rulesets  map[int]bool
	applied   map[string]int // report id -> the ruleset its application published
}

// crashWorkload writes through every kind of write until ctx ends (the
// server is killed): scores on a few conversations, API labels on the
// alerts they fire, events with idempotency keys, labels through the web
// UI, rulesets published, and tuning runs whose reports are applied.
func crashWorkload(ctx context.Context, base, key string, ui *http.Client, l *crashLedger, round int) *sync.WaitGroup {
	client := &http.Client{Timeout: 10 * time.Second}
	send := func(c *http.Client, method, path, body string, header http.Header) (int, []byte, error) {
		req, _ := http.NewRequestWithContext(ctx, method, base+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if key != "" && c == client {
			req.Header.Set("Authorization", "Bearer "+key)
		}
		for k, v := range header {
			req.Header[k] = v
		}
		res, err := c.Do(req)
		if err != nil {
			return 0, nil, err
		}
		defer res.Body.Close()
		b, err := io.ReadAll(res.Body)
		return res.StatusCode, b, err
	}
	alerts := make(chan string, 1000)
	var wg sync.WaitGroup
	for w := range 3 {
		wg.Go(func() {
			for i := 0; ctx.Err() == nil; i++ {
				// Most decisions go to conversations that live across the
				// kills; every third opens one of this round's, which alerts.
				conv := fmt.Sprintf("crash-%d-%d", w, i%15)
				signals := `{"deal_size":500}`
				if i%3 == 0 {
					conv = fmt.Sprintf("crash-r%d-%d-%d", round, w, i)
					signals = `{"deal_size":60000,"lifecycle_stage":"customer"}`
				}
				code, b, err := send(client, http.MethodPost, "/v1/score",
					fmt.Sprintf(`{"conversation_id":%q,"channel":"web","signals":%s}`, conv, signals), nil)
				if err != nil || code != http.StatusOK {
					continue
				}
				var out struct {
					DecisionID string `json:"decision_id"`
					Alert      *struct {
						ID     string `json:"id"`
						Status string `json:"status"`
					} `json:"alert"`
				}
				if json.Unmarshal(b, &out) != nil || out.DecisionID == "" {
					continue
				}
				l.mu.Lock()
				l.decisions[out.DecisionID] = conv
				if out.Alert != nil && out.Alert.Status == "fired" {
					l.fired[out.Alert.ID] = ""
					select {
					case alerts <- out.Alert.ID:
					default:
					}
				}
				l.mu.Unlock()
			}
		})
	}
	wg.Go(func() { // labels by API, then by the UI, alternately
		for n := 0; ctx.Err() == nil; n++ {
			var id string
			select {
			case id = <-alerts:
			case <-ctx.Done():
				return
			}
			if n%2 == 0 {
				code, _, err := send(client, http.MethodPost, "/v1/alerts/"+id+"/label", `{"label":"useful","agent":"api-agent"}`, nil)
				if err == nil && code == http.StatusOK {
					l.mu.Lock()
					l.labels[id] = "api-agent"
					l.mu.Unlock()
				}
				continue
			}
			code, _, err := send(ui, http.MethodPost, "/alerts/"+id+"/label", url.Values{"label": {"noise"}}.Encode(),
				http.Header{"Content-Type": {"application/x-www-form-urlencoded"}, "Accept": {"application/json"}})
			if err == nil && code == http.StatusOK {
				l.mu.Lock()
				l.labels[id] = "crash-lead@example.com"
				l.mu.Unlock()
			}
		}
	})
	wg.Go(func() { // events, each with its own idempotency key
		for i := 0; ctx.Err() == nil; i++ {
			conv := fmt.Sprintf("crash-%d-%d", i%3, i%15)
			idem := fmt.Sprintf("ev-%d-%d", round, i)
			code, b, err := send(client, http.MethodPost, "/v1/conversations/"+conv+"/events", `{"type":"converted","value":10}`,
				http.Header{"Idempotency-Key": {idem}})
			var ev struct {
				ID string `json:"id"`
			}
			if err != nil || (code != http.StatusCreated && code != http.StatusOK) || json.Unmarshal(b, &ev) != nil || ev.ID == "" {
				continue
			}
			l.mu.Lock()
			l.events[idem], l.eventConv[idem] = ev.ID, conv
			l.mu.Unlock()
			time.Sleep(5 * time.Millisecond)
		}
	})
	publish := func() {
		code, b, err := send(client, http.MethodPut, "/v1/rules", string(demoPolicy), http.Header{"Content-Type": {"application/yaml"}})
		var rs struct {
			Version int `json:"version"`
		}
		if err == nil && code == http.StatusCreated && json.Unmarshal(b, &rs) == nil && rs.Version > 0 {
			l.mu.Lock()
			l.rulesets[rs.Version] = true
			l.mu.Unlock()
		}
	}
	tuneAndApply := func() {
		code, b, err := send(client, http.MethodPost, "/v1/jobs/tune", "", nil)
		var run struct {
			Report *struct {
				ID        string `json:"id"`
				Candidate int    `json:"candidate_model_version"`
				Promotion struct {
					Promoted bool `json:"promoted"`
				} `json:"promotion"`
			} `json:"report"`
		}
		if err != nil || code != http.StatusOK || json.Unmarshal(b, &run) != nil || run.Report == nil {
			time.Sleep(50 * time.Millisecond)
			return
		}
		if run.Report.Candidate > 0 && !run.Report.Promotion.Promoted {
			// A lead promotes the candidate, then applies its report.
			if code, _, err := send(client, http.MethodPost, fmt.Sprintf("/v1/models/%d/promote", run.Report.Candidate), "", nil); err != nil || code != http.StatusOK {
				return
			}
		}
		code, b, err = send(client, http.MethodPost, "/v1/reports/"+run.Report.ID+"/apply", "", nil)
		var rs struct {
			Version int `json:"version"`
		}
		if err == nil && code == http.StatusCreated && json.Unmarshal(b, &rs) == nil && rs.Version > 0 {
			l.mu.Lock()
			l.applied[run.Report.ID] = rs.Version
			l.mu.Unlock()
		}
	}
	wg.Go(func() {
		// An admin's changes, one after the other so that nothing else
		// changes the live ruleset between a tuning run and the
		// application of its report: a ruleset published, then a tuning
		// run whose report is applied.
		for ctx.Err() == nil {
			publish()
			tuneAndApply()
		}
	})
	return &wg
}

// crashSignIn signs the crash test's lead in on base and returns a client
// holding the session.
func crashSignIn(t *testing.T, base string) *http.Client {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	ui := &http.Client{Jar: jar, Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := ui.PostForm(base+"/login", url.Values{"email": {"crash-lead@example.com"}, "password": {"crash-test-password"}, "next": {"/"}})
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign in: %d", res.StatusCode)
	}
	return ui
}

// TestCrashSafety kills the real server with SIGKILL at a random moment,
// three times on each engine, while scores, API and UI labels, events and
// rulesets are written at once, restarting it on the same database each
// time. Afterwards every acknowledged write is there once: each decision,
// label, event (and its idempotency key answers the same event again) and
// ruleset; each conversation counts exactly the decisions stored for it;
// each fired alert's decision is stored; and every acknowledged fired
// alert is delivered, under one delivery id, by the processes that follow.
func TestCrashSafety(t *testing.T) {
	if testing.Short() {
		t.Skip("starts and kills server processes")
	}
	for _, engine := range storetest.Engines {
		t.Run(engine, func(t *testing.T) {
			dsn := storetest.DSN(t, engine)
			rcv := &signedReceiver{}
			hook := httptest.NewServer(rcv)
			defer hook.Close()
			l := &crashLedger{decisions: map[string]string{}, fired: map[string]string{}, labels: map[string]string{},
				events: map[string]string{}, eventConv: map[string]string{}, rulesets: map[int]bool{}, applied: map[string]int{}}
			flags := []string{"--db", dsn, "--log-level", "error", "--allow-destination-ranges", "loopback", "--delivery-interval", "100ms"}

			var key string
			const kills = 3
			for round := range kills {
				addr := freeAddr(t)
				args := append([]string{"--addr", addr}, flags...)
				if round == 0 {
					// The demo's history gives the tuning runs enough to
					// propose thresholds, so their reports can be applied.
					args = append(args, "--demo")
				}
				proc, printed := startProcess(t, args...)
				base := "http://" + addr
				waitReady(t, base+"/readyz")
				if round == 0 {
					key = printed
					c := client{t: t, base: base, key: key}
					rcv.subscribe(c, "enterprise-sales", hook.URL)
					if out, err := runCLIStdin(t, "crash-test-password\n", "user", "create", "--db", dsn, "--email", "crash-lead@example.com",
						"--role", "lead", "--team", "enterprise-sales", "--password-stdin"); err != nil {
						t.Fatalf("user create: %s %v", out, err)
					}
				}
				ui := crashSignIn(t, base)
				ctx, cancel := context.WithCancel(context.Background())
				wg := crashWorkload(ctx, base, key, ui, l, round)
				if round == 0 {
					// A tuning run under the load takes a few seconds on
					// SQLite: the first kill waits for one report applied,
					// so that every run has one to check.
					for wait := time.Now(); time.Since(wait) < time.Minute; time.Sleep(20 * time.Millisecond) {
						l.mu.Lock()
						n := len(l.applied)
						l.mu.Unlock()
						if n > 0 {
							break
						}
					}
				}
				time.Sleep(time.Duration(400+rand.IntN(1200)) * time.Millisecond)
				if err := proc.Process.Signal(syscall.SIGKILL); err != nil {
					t.Fatal(err)
				}
				_ = proc.Wait()
				cancel()
				wg.Wait()
			}

			// A last process delivers what the killed ones left, and is
			// asked about everything they acknowledged.
			addr := freeAddr(t)
			startProcess(t, append([]string{"--addr", addr}, flags...)...)
			base := "http://" + addr
			waitReady(t, base+"/readyz")
			c := client{t: t, base: base, key: key}
			t.Logf("acknowledged over %d kills: %d decisions, %d fired alerts, %d labels, %d events, %d rulesets, %d report applications",
				kills, len(l.decisions), len(l.fired), len(l.labels), len(l.events), len(l.rulesets), len(l.applied))
			if len(l.decisions) < 30 || len(l.fired) == 0 || len(l.labels) == 0 || len(l.events) == 0 || len(l.rulesets) == 0 || len(l.applied) == 0 {
				t.Fatal("too little was acknowledged for the check to mean anything")
			}
			verifyCrashLedger(t, c, dsn, l)

			// A delivery a killed process had claimed is due again when its
			// claim's lease (30 s) ends.
			deadline := time.Now().Add(90 * time.Second)
			want := 0
			for _, team := range l.fired {
				if team == "enterprise-sales" {
					want++
				}
			}
			var ids map[string]map[string]bool
			for {
				ids = map[string]map[string]bool{}
				for _, d := range rcv.deliveries() {
					if !d.verified {
						t.Fatalf("delivery %s failed the signature check", d.deliveryID)
					}
					if ids[d.alertID] == nil {
						ids[d.alertID] = map[string]bool{}
					}
					ids[d.alertID][d.deliveryID] = true
				}
				delivered := 0
				for id, team := range l.fired {
					if team == "enterprise-sales" && len(ids[id]) > 0 {
						delivered++
					}
				}
				if delivered == want || time.Now().After(deadline) {
					break
				}
				time.Sleep(100 * time.Millisecond)
			}
			for id, team := range l.fired {
				if team != "enterprise-sales" {
					continue
				}
				switch n := len(ids[id]); {
				case n == 0:
					t.Errorf("fired alert %s was never delivered", id)
				case n > 1:
					t.Errorf("alert %s was delivered under %d delivery ids", id, n)
				}
			}
			t.Logf("%d acknowledged alerts to the webhook's team, each delivered under one delivery id (%d requests in all)",
				want, len(rcv.deliveries()))
		})
	}
}

// verifyCrashLedger checks every acknowledged write against the server and
// the store.
func verifyCrashLedger(t *testing.T, c client, dsn string, l *crashLedger) {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, dsn, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()

	convs := map[string]int{}
	for id, conv := range l.decisions {
		if code := c.call(http.MethodGet, "/v1/decisions/"+id, "", nil); code != http.StatusOK {
			t.Errorf("acknowledged decision %s: %d", id, code)
		}
		convs[conv]++
	}
	for conv, acked := range convs {
		stored, err := st.ConversationDecisions(ctx, conv, 1_000_000)
		if err != nil {
			t.Fatal(err)
		}
		seen := map[string]bool{}
		for _, d := range stored {
			if seen[d.ID] {
				t.Errorf("%s: decision %s stored twice", conv, d.ID)
			}
			seen[d.ID] = true
		}
		var out struct {
			Decisions int64 `json:"decisions"`
		}
		if code := c.call(http.MethodGet, "/v1/conversations/"+conv, "", &out); code != http.StatusOK {
			t.Fatalf("conversation %s: %d", conv, code)
		}
		if out.Decisions != int64(len(stored)) || len(stored) < acked {
			t.Errorf("%s counts %d decisions, %d are stored, %d were acknowledged", conv, out.Decisions, len(stored), acked)
		}
	}
	for id := range l.fired {
		var a struct {
			DecisionID string `json:"decision_id"`
			Team       string `json:"team"`
		}
		if code := c.call(http.MethodGet, "/v1/alerts/"+id, "", &a); code != http.StatusOK {
			t.Errorf("fired alert %s: %d", id, code)
			continue
		}
		l.fired[id] = a.Team
		if code := c.call(http.MethodGet, "/v1/decisions/"+a.DecisionID, "", nil); code != http.StatusOK {
			t.Errorf("alert %s's decision %s: %d", id, a.DecisionID, code)
		}
	}
	for id, agent := range l.labels {
		var a struct {
			Labels []struct {
				Agent string `json:"agent"`
			} `json:"labels"`
		}
		c.call(http.MethodGet, "/v1/alerts/"+id, "", &a)
		found := 0
		for _, lb := range a.Labels {
			if lb.Agent == agent {
				found++
			}
		}
		if found != 1 {
			t.Errorf("alert %s holds %d labels by %s, want 1", id, found, agent)
		}
	}
	for idem, id := range l.events {
		var again struct {
			ID string `json:"id"`
		}
		conv := l.eventConv[idem]
		c.call(http.MethodPost, "/v1/conversations/"+conv+"/events", `{"type":"converted","value":10}`, &again, "Idempotency-Key", idem)
		if again.ID != id {
			t.Errorf("event %s (key %s) answered as %q after the kills", id, idem, again.ID)
		}
	}
	perConv := map[string]map[string]bool{}
	for idem, id := range l.events {
		conv := l.eventConv[idem]
		if perConv[conv] == nil {
			var list struct {
				Events []struct {
					ID string `json:"id"`
				} `json:"events"`
			}
			c.call(http.MethodGet, "/v1/conversations/"+conv+"/events", "", &list)
			perConv[conv] = map[string]bool{}
			for _, e := range list.Events {
				if perConv[conv][e.ID] {
					t.Errorf("%s lists event %s twice", conv, e.ID)
				}
				perConv[conv][e.ID] = true
			}
		}
		if !perConv[conv][id] {
			t.Errorf("acknowledged event %s is not in %s's events", id, conv)
		}
	}
	for id, v := range l.applied {
		var r struct {
			Applied int `json:"applied_policy_version"`
		}
		if code := c.call(http.MethodGet, "/v1/reports/"+id, "", &r); code != http.StatusOK || r.Applied != v {
			t.Errorf("report %s: %d, applied as ruleset %d; its application answered ruleset %d", id, code, r.Applied, v)
		}
		l.rulesets[v] = true
	}
	for v := range l.rulesets {
		if code := c.call(http.MethodGet, fmt.Sprintf("/v1/rulesets/%d", v), "", nil); code != http.StatusOK {
			t.Errorf("acknowledged ruleset %d: %d", v, code)
		}
	}
}
