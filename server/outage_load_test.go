package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/hotlane/hotlane/feedback/store/storetest"
)

// outageDatabase creates a database of the test's own (ALLOW_CONNECTIONS
// is per database, so the shared test database cannot be taken away) and
// returns its DSN and a connection to the server's maintenance database.
func outageDatabase(t *testing.T) (dsn string, admin *pgx.Conn, name string) {
	t.Helper()
	base := storetest.PostgresBase(t)
	ctx := context.Background()
	admin, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatalf("connect to HOTLANE_TEST_POSTGRES: %v", err)
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	name = "hl_outage_" + hex.EncodeToString(b[:])
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("create a database of the test's own (the outage test needs CREATEDB): %v", err)
	}
	t.Cleanup(func() {
		ctx := context.Background()
		_, _ = admin.Exec(ctx, "ALTER DATABASE "+name+" ALLOW_CONNECTIONS true")
		if _, err := admin.Exec(ctx, "DROP DATABASE "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("drop %s: %v", name, err)
		}
		_ = admin.Close(ctx)
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + name
	q := u.Query()
	q.Set("connect_timeout", "2")
	u.RawQuery = q.Encode()
	return u.String(), admin, name
}

type outageResult struct {
	start, end time.Time
	code       int
	retryAfter string
	decisionID string
	err        error
}

// Under load, PostgreSQL refuses connections for 10 s (ALLOW_CONNECTIONS
// false, its backends terminated): every request is answered, 200 or 503
// with Retry-After, none hangs; /readyz says not ready during it; scoring
// and readiness come back within 5 s of the database; and every decision
// acknowledged before, during or after is stored.
func TestOutageUnderLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("a 20 s outage run; skipped with -short")
	}
	dsn, admin, name := outageDatabase(t)
	h := newHarnessOn(t, openStoreAt(t, dsn), Config{Now: time.Now})
	h.publish(testPolicyNoAlerts)
	ts := httptest.NewServer(h.srv.Handler())
	defer ts.Close()
	client := &http.Client{Timeout: 60 * time.Second}

	var mu sync.Mutex
	var results []outageResult
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 6 {
		wg.Go(func() {
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				body := fmt.Sprintf(`{"conversation_id":"w%d-%d","channel":"web","signals":{"deal_size":%d}}`, w, n, 1000*n)
				req, _ := http.NewRequest(http.MethodPost, ts.URL+"/v1/score", strings.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("Authorization", "Bearer "+h.key)
				r := outageResult{start: time.Now()}
				res, err := client.Do(req)
				r.end, r.err = time.Now(), err
				if err == nil {
					b, _ := io.ReadAll(res.Body)
					res.Body.Close()
					r.code, r.retryAfter = res.StatusCode, res.Header.Get("Retry-After")
					if r.code == http.StatusOK {
						var d struct {
							DecisionID string `json:"decision_id"`
						}
						_ = json.Unmarshal(b, &d)
						r.decisionID = d.DecisionID
					}
				}
				mu.Lock()
				results = append(results, r)
				mu.Unlock()
				if r.code != http.StatusOK {
					time.Sleep(20 * time.Millisecond) // a client backing off
				}
			}
		})
	}
	type probe struct {
		at   time.Time
		code int
	}
	var probes []probe
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Millisecond):
			}
			res, err := client.Get(ts.URL + "/readyz")
			code := 0
			if err == nil {
				code = res.StatusCode
				res.Body.Close()
			}
			mu.Lock()
			probes = append(probes, probe{time.Now(), code})
			mu.Unlock()
		}
	})

	ctx := context.Background()
	time.Sleep(1500 * time.Millisecond)
	down := time.Now()
	if _, err := admin.Exec(ctx, "ALTER DATABASE "+name+" ALLOW_CONNECTIONS false"); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Exec(ctx, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()", name); err != nil {
		t.Fatal(err)
	}
	time.Sleep(10 * time.Second)
	if _, err := admin.Exec(ctx, "ALTER DATABASE "+name+" ALLOW_CONNECTIONS true"); err != nil {
		t.Fatal(err)
	}
	up := time.Now()
	time.Sleep(6 * time.Second)
	close(stop)
	wg.Wait()

	var ok, refused, during int
	var slowest time.Duration
	var acked []string
	firstOK := time.Time{}
	for _, r := range results {
		if r.err != nil {
			t.Errorf("a request was not answered: %v", r.err)
			continue
		}
		slowest = max(slowest, r.end.Sub(r.start))
		switch r.code {
		case http.StatusOK:
			ok++
			acked = append(acked, r.decisionID)
			if r.start.After(up) && (firstOK.IsZero() || r.end.Before(firstOK)) {
				firstOK = r.end
			}
		case http.StatusServiceUnavailable:
			refused++
			if r.retryAfter == "" {
				t.Errorf("a 503 without Retry-After")
			}
			if r.start.After(down) && r.end.Before(up) {
				during++
			}
		default:
			t.Errorf("a score answered %d; want 200 or 503", r.code)
		}
	}
	notReady, readyAgain := false, time.Time{}
	for _, p := range probes {
		if p.at.After(down) && p.at.Before(up) && p.code == http.StatusServiceUnavailable {
			notReady = true
		}
		if p.at.After(up) && p.code == http.StatusOK && readyAgain.IsZero() {
			readyAgain = p.at
		}
	}
	t.Logf("%d scores: %d acknowledged, %d refused (%d within the outage); slowest answer %v; "+
		"first acknowledged score %v after the database came back, ready %v after",
		len(results), ok, refused, during, slowest.Round(time.Millisecond),
		firstOK.Sub(up).Round(time.Millisecond), readyAgain.Sub(up).Round(time.Millisecond))
	if during == 0 {
		t.Fatal("no score was refused during the outage: the outage did not happen")
	}
	if !notReady {
		t.Error("/readyz never said not ready during the outage")
	}
	// Hang guards, far above what a run takes (tens of milliseconds): the
	// bounds the issue sets.
	if slowest > 10*time.Second {
		t.Errorf("the slowest answer took %v", slowest)
	}
	if firstOK.IsZero() || firstOK.Sub(up) > 5*time.Second {
		t.Errorf("scoring did not come back within 5 s of the database (first 200 at %v)", firstOK.Sub(up))
	}
	if readyAgain.IsZero() || readyAgain.Sub(up) > 5*time.Second {
		t.Errorf("/readyz did not say ready within 5 s of the database (at %v)", readyAgain.Sub(up))
	}

	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var stored int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM decisions WHERE id = ANY($1)", acked).Scan(&stored); err != nil {
		t.Fatal(err)
	}
	if stored != len(acked) {
		t.Errorf("%d of %d acknowledged decisions are stored", stored, len(acked))
	}
}
