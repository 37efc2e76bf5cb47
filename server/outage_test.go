package server

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/hotlane/hotlane/feedback/store"
	"github.com/hotlane/hotlane/feedback/store/storetest"
)

// tcpProxy forwards connections to a database and can cut them all, as a
// database that goes away does, and come back on the same address.
type tcpProxy struct {
	t      *testing.T
	target string
	addr   string
	mu     sync.Mutex
	ln     net.Listener
	conns  []net.Conn
}

func newTCPProxy(t *testing.T, target string) *tcpProxy {
	p := &tcpProxy{t: t, target: target}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p.addr = ln.Addr().String()
	p.serve(ln)
	t.Cleanup(p.cut)
	return p
}

func (p *tcpProxy) serve(ln net.Listener) {
	p.mu.Lock()
	p.ln = ln
	p.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", p.target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, up)
			p.mu.Unlock()
			go func() { _, _ = io.Copy(up, c); up.Close() }()
			go func() { _, _ = io.Copy(c, up); c.Close() }()
		}
	}()
}

// cut closes every connection and stops listening: the database is gone.
func (p *tcpProxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

// restore listens again on the same address.
func (p *tcpProxy) restore() {
	ln, err := net.Listen("tcp", p.addr)
	if err != nil {
		p.t.Fatalf("listen again on %s: %v", p.addr, err)
	}
	p.serve(ln)
}

// postgresThrough returns a fresh test schema's DSN with its host replaced
// by addr and the given extra parameters.
func postgresThrough(t *testing.T, addr string, params map[string]string) (dsn, direct string) {
	direct = storetest.DSN(t, "postgres")
	u, err := url.Parse(direct)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	for k, v := range params {
		q.Set(k, v)
	}
	u.RawQuery = q.Encode()
	direct = u.String()
	if addr != "" {
		u.Host = addr
	}
	return u.String(), direct
}

func openStoreAt(t testing.TB, dsn string) *store.Store {
	t.Helper()
	ctx := context.Background()
	s, err := store.Open(ctx, dsn, store.Options{Logger: quietLog()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	if err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	return s
}

// During a database outage every endpoint answers 503 with Retry-After
// (before: 500 internal on all but score), /readyz says unavailable, and
// everything works again once the database is back.
func TestDatabaseOutageAnswers503(t *testing.T) {
	base, err := url.Parse(storetest.PostgresBase(t))
	if err != nil {
		t.Fatal(err)
	}
	proxy := newTCPProxy(t, base.Host)
	dsn, _ := postgresThrough(t, proxy.addr, map[string]string{"connect_timeout": "2"})
	h := newHarnessOn(t, openStoreAt(t, dsn), Config{})
	h.publish(testPolicyNoAlerts)
	d, _ := h.score(`{"conversation_id":"c1","channel":"web","signals":{"deal_size":20000}}`)
	h.insertAlert("a1", "c1", d.DecisionID, "web", d.Tier)
	_, unseenKey, err := h.store.CreateAPIKey(context.Background(), "unseen", []string{"score", "feedback", "admin"})
	if err != nil {
		t.Fatal(err)
	}

	proxy.cut()
	requests := []struct{ method, path, body, key string }{
		{http.MethodGet, "/v1/alerts", "", h.key},
		{http.MethodGet, "/v1/alerts/a1", "", h.key},
		{http.MethodPost, "/v1/alerts/a1/label", `{"label":"useful","agent":"ana"}`, h.key},
		{http.MethodGet, "/v1/rulesets", "", h.key},
		{http.MethodGet, "/v1/destinations", "", h.key},
		{http.MethodGet, "/v1/decisions/" + d.DecisionID, "", h.key},
		{http.MethodGet, "/v1/kpis", "", h.key},
		{http.MethodPost, "/v1/conversations/c1/events", `{"type":"first_response"}`, h.key},
		{http.MethodPost, "/v1/score", `{"conversation_id":"c2","channel":"web","signals":{}}`, h.key},
		{http.MethodGet, "/v1/alerts", "", unseenKey}, // a key the server cannot check now
	}
	for _, r := range requests {
		rec := h.do(r.method, r.path, "application/json", r.body, r.key, nil)
		if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") == "" ||
			!strings.Contains(rec.Body.String(), `"code":"unavailable"`) {
			t.Errorf("%s %s during the outage = %d (Retry-After %q) %s; want 503 with Retry-After",
				r.method, r.path, rec.Code, rec.Header().Get("Retry-After"), rec.Body.String())
		}
	}
	if rec := h.do(http.MethodGet, "/readyz", "", "", "", nil); rec.Code != http.StatusServiceUnavailable {
		t.Errorf("readyz during the outage = %d", rec.Code)
	}

	proxy.restore()
	deadline := time.Now().Add(20 * time.Second)
	for {
		rec := h.do(http.MethodPost, "/v1/alerts/a1/label", "application/json", `{"label":"useful","agent":"ana"}`, h.key, nil)
		if rec.Code == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("label after the database came back = %d %s", rec.Code, rec.Body.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	// Every endpoint works again. A decision batch may fail once more on a
	// pooled connection that died in the outage (its 503 tells the
	// platform to retry), so each is given until the deadline.
	for _, r := range requests {
		for {
			rec := h.do(r.method, r.path, "application/json", r.body, r.key, nil)
			if rec.Code < 500 {
				break
			}
			if time.Now().After(deadline) {
				t.Errorf("%s %s after the outage = %d %s", r.method, r.path, rec.Code, rec.Body.String())
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
}

// A connection the database terminated (SQLSTATE 57P01, as after
// pg_terminate_backend or a restart) fails one statement; a label or a
// read right after it is retried on another connection instead of
// answering 500 (2 of 3 tries did before).
func TestTerminatedConnectionRetried(t *testing.T) {
	app := fmt.Sprintf("hl_term_%d", time.Now().UnixNano())
	dsn, _ := postgresThrough(t, "", map[string]string{"application_name": app})
	h := newHarnessOn(t, openStoreAt(t, dsn), Config{})
	h.publish(testPolicyNoAlerts)
	d, _ := h.score(`{"conversation_id":"c1","channel":"web","signals":{"deal_size":20000}}`)
	h.insertAlert("a1", "c1", d.DecisionID, "web", d.Tier)

	admin, err := pgx.Connect(context.Background(), storetest.PostgresBase(t))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(context.Background())
	terminate := func() {
		t.Helper()
		var n int
		err := admin.QueryRow(context.Background(),
			`SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = $1`, app).Scan(&n)
		if err != nil || n == 0 {
			t.Fatalf("terminated %d connections: %v", n, err)
		}
	}
	for i := range 3 {
		// Warm the pool's connections, then end them behind its back.
		h.do(http.MethodGet, "/v1/alerts", "", "", h.key, nil)
		h.do(http.MethodPost, "/v1/alerts/a1/label", "application/json", `{"label":"noise","agent":"bo"}`, h.key, nil)
		terminate()
		rec := h.do(http.MethodPost, "/v1/alerts/a1/label", "application/json", `{"label":"useful","agent":"ana"}`, h.key, nil)
		if rec.Code != http.StatusOK {
			t.Errorf("try %d: label right after the connections were terminated = %d %s", i, rec.Code, rec.Body.String())
		}
		terminate()
		if rec := h.do(http.MethodGet, "/v1/alerts/a1", "", "", h.key, nil); rec.Code != http.StatusOK {
			t.Errorf("try %d: read right after the connections were terminated = %d %s", i, rec.Code, rec.Body.String())
		}
	}
}

// /readyz reports not ready while decision writes are stalled (a table
// lock held by someone else) and ready again once they go through; it
// said ready through a 12 s lock before.
func TestReadyzReportsStalledWrites(t *testing.T) {
	for _, engine := range engines(t) {
		t.Run(engine, func(t *testing.T) {
			dsn := storetest.DSN(t, engine)
			h := newHarnessOn(t, openStoreAt(t, dsn), Config{})
			h.publish(testPolicyNoAlerts)
			if _, rec := h.score(`{"conversation_id":"c0","channel":"web","signals":{}}`); rec.Code != http.StatusOK {
				t.Fatalf("score = %d", rec.Code)
			}

			// Someone else holds the write lock.
			release := lockWrites(t, engine, dsn)
			scored := make(chan int, 1)
			go func() {
				_, rec := h.score(`{"conversation_id":"c1","channel":"web","signals":{}}`)
				scored <- rec.Code
			}()
			deadline := time.Now().Add(8 * time.Second)
			var body string
			for {
				rec := h.do(http.MethodGet, "/readyz", "", "", "", nil)
				body = rec.Body.String()
				if rec.Code == http.StatusServiceUnavailable && strings.Contains(body, "stalled") {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("readyz while writes are blocked = %d %s; want 503 naming stalled writes", rec.Code, body)
				}
				time.Sleep(200 * time.Millisecond)
			}
			release()
			if code := <-scored; code != http.StatusOK {
				t.Errorf("the blocked score answered %d once the lock went", code)
			}
			if rec := h.do(http.MethodGet, "/readyz", "", "", "", nil); rec.Code != http.StatusOK {
				t.Errorf("readyz after the lock went = %d %s", rec.Code, rec.Body.String())
			}
		})
	}
}

// lockWrites takes the database's write lock on decisions from a
// connection of its own and returns the function that releases it.
func lockWrites(t *testing.T, engine, dsn string) func() {
	t.Helper()
	ctx := context.Background()
	if engine == "postgres" {
		conn, err := pgx.Connect(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		tx, err := conn.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tx.Exec(ctx, "LOCK TABLE decisions IN ACCESS EXCLUSIVE MODE"); err != nil {
			t.Fatal(err)
		}
		var once sync.Once
		release := func() { once.Do(func() { _ = tx.Rollback(ctx); _ = conn.Close(ctx) }) }
		t.Cleanup(release)
		return release
	}
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	release := func() {
		once.Do(func() { _, _ = conn.ExecContext(ctx, "ROLLBACK"); conn.Close(); db.Close() })
	}
	t.Cleanup(release)
	return release
}
