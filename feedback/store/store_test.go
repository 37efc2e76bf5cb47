package store

import (
	"bytes"
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/hotlane/hotlane/feedback"
	"github.com/hotlane/hotlane/migrations"
)

func TestMigrateUpDownUp(t *testing.T) {
	forEachEngine(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		want, err := migrations.Latest(s.Dialect())
		if err != nil {
			t.Fatal(err)
		}
		if got, err := s.SchemaVersion(ctx); err != nil || got != want {
			t.Fatalf("SchemaVersion after Migrate = %d, %v; want %d", got, err, want)
		}
		if err := s.Migrate(ctx); err != nil {
			t.Fatalf("second Migrate: %v", err)
		}
		if err := migrations.DownTo(ctx, s.sqlDB, s.Dialect(), 0); err != nil {
			t.Fatalf("DownTo 0: %v", err)
		}
		if got, err := s.SchemaVersion(ctx); err != nil || got != 0 {
			t.Fatalf("SchemaVersion after down = %d, %v; want 0", got, err)
		}
		if _, err := s.ListPolicies(ctx); err == nil {
			t.Fatal("ListPolicies after down: got nil error, want missing table")
		}
		if err := s.Migrate(ctx); err != nil {
			t.Fatalf("Migrate after down: %v", err)
		}
		if got, err := s.SchemaVersion(ctx); err != nil || got != want {
			t.Fatalf("SchemaVersion after up again = %d, %v; want %d", got, err, want)
		}
		if err := s.Ping(ctx); err != nil {
			t.Fatalf("Ping: %v", err)
		}
	})
}

func TestAPIKeys(t *testing.T) {
	forEachEngine(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		key, secret, err := s.CreateAPIKey(ctx, " chat bot ", []string{feedback.ScopeScore, feedback.ScopeFeedback})
		if err != nil {
			t.Fatalf("CreateAPIKey: %v", err)
		}
		if !strings.HasPrefix(secret, "hl_") || len(secret) != 43 {
			t.Errorf("secret = %q, want hl_ and 40 characters", secret)
		}
		if got, want := key.Prefix, secret[:11]; got != want {
			t.Errorf("Prefix = %q, want %q", got, want)
		}
		if got, want := key.Name, "chat bot"; got != want {
			t.Errorf("Name = %q, want %q", got, want)
		}
		_, secret2, err := s.CreateAPIKey(ctx, "admin", []string{feedback.ScopeAdmin})
		if err != nil {
			t.Fatalf("CreateAPIKey admin: %v", err)
		}
		if secret2 == secret {
			t.Fatal("two keys share a secret")
		}

		got, err := s.AuthenticateAPIKey(ctx, secret)
		if err != nil {
			t.Fatalf("AuthenticateAPIKey: %v", err)
		}
		if got.ID != key.ID || !got.HasScope(feedback.ScopeScore) || !got.HasScope(feedback.ScopeFeedback) {
			t.Errorf("authenticated key = %+v, want id %d with scopes score and feedback", got, key.ID)
		}
		if got.HasScope(feedback.ScopeAdmin) {
			t.Error("score key has admin scope")
		}

		flipped := secret[:len(secret)-1] + "a"
		if flipped == secret {
			flipped = secret[:len(secret)-1] + "b"
		}
		for _, bad := range []string{"", "hl_", flipped, "Bearer " + secret, secret2 + "x"} {
			if _, err := s.AuthenticateAPIKey(ctx, bad); !errors.Is(err, feedback.ErrNotFound) {
				t.Errorf("AuthenticateAPIKey(%q) error = %v, want ErrNotFound", bad, err)
			}
		}

		keys, err := s.ListAPIKeys(ctx)
		if err != nil {
			t.Fatalf("ListAPIKeys: %v", err)
		}
		if len(keys) != 2 || keys[0].ID != key.ID || keys[0].RevokedAt != nil {
			t.Fatalf("ListAPIKeys = %+v, want two live keys, %d first", keys, key.ID)
		}

		if err := s.RevokeAPIKey(ctx, key.ID); err != nil {
			t.Fatalf("RevokeAPIKey: %v", err)
		}
		if _, err := s.AuthenticateAPIKey(ctx, secret); !errors.Is(err, feedback.ErrNotFound) {
			t.Errorf("AuthenticateAPIKey after revoke error = %v, want ErrNotFound", err)
		}
		if err := s.RevokeAPIKey(ctx, key.ID); !errors.Is(err, feedback.ErrNotFound) {
			t.Errorf("second RevokeAPIKey error = %v, want ErrNotFound", err)
		}
		if err := s.RevokeAPIKey(ctx, 9999); !errors.Is(err, feedback.ErrNotFound) {
			t.Errorf("RevokeAPIKey(9999) error = %v, want ErrNotFound", err)
		}
		keys, err = s.ListAPIKeys(ctx)
		if err != nil || len(keys) != 2 || keys[0].RevokedAt == nil {
			t.Fatalf("ListAPIKeys after revoke = %+v, %v; want first key revoked", keys, err)
		}
	})
}

func TestCreateAPIKeyInvalid(t *testing.T) {
	s := openStore(t, filepath.Join(t.TempDir(), "hotlane.db"), Options{})
	tests := []struct {
		name   string
		key    string
		scopes []string
	}{
		{"empty name", "", []string{feedback.ScopeScore}},
		{"blank name", "   ", []string{feedback.ScopeScore}},
		{"long name", strings.Repeat("n", 101), []string{feedback.ScopeScore}},
		{"no scopes", "bot", nil},
		{"unknown scope", "bot", []string{"score", "write"}},
		{"scope case", "bot", []string{"Score"}},
		{"repeated scope", "bot", []string{"score", "score"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := s.CreateAPIKey(context.Background(), tt.key, tt.scopes)
			if !errors.Is(err, feedback.ErrInvalid) {
				t.Errorf("CreateAPIKey(%q, %q) error = %v, want ErrInvalid", tt.key, tt.scopes, err)
			}
		})
	}
}

func TestPolicies(t *testing.T) {
	forEachEngine(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		if _, err := s.LivePolicy(ctx); !errors.Is(err, feedback.ErrNotFound) {
			t.Fatalf("LivePolicy on empty store error = %v, want ErrNotFound", err)
		}
		if p, m, err := s.LiveVersions(ctx); err != nil || p != 0 || m != 0 {
			t.Fatalf("LiveVersions on empty store = %d, %d, %v; want 0, 0, nil", p, m, err)
		}
		docs := []string{`{"base":-3,"rules":[]}`, `{"base": -2, "rules": [], "z": 1, "a": 2}`, `{"base":-1}`}
		for i, doc := range docs {
			pv, err := s.PublishPolicy(ctx, []byte(doc), "base: x\n", "ana", fmt.Sprintf("v%d", i+1))
			if err != nil {
				t.Fatalf("PublishPolicy %d: %v", i+1, err)
			}
			if pv.Version != i+1 || !pv.Live || pv.ActivatedAt == nil {
				t.Errorf("PublishPolicy %d = version %d live %v activated %v, want version %d live", i+1, pv.Version, pv.Live, pv.ActivatedAt, i+1)
			}
		}
		live, err := s.LivePolicy(ctx)
		if err != nil || live.Version != 3 {
			t.Fatalf("LivePolicy = %d, %v; want 3", live.Version, err)
		}
		p2, err := s.Policy(ctx, 2)
		if err != nil {
			t.Fatalf("Policy(2): %v", err)
		}
		if got, want := string(p2.Document), docs[1]; got != want {
			t.Errorf("Policy(2).Document = %s, want the bytes published %s", got, want)
		}
		if p2.Source != "base: x\n" || p2.Author != "ana" || p2.Note != "v2" || p2.Live {
			t.Errorf("Policy(2) = %+v", p2)
		}

		rolled, err := s.ActivatePolicy(ctx, 1)
		if err != nil || rolled.Version != 1 || !rolled.Live {
			t.Fatalf("ActivatePolicy(1) = %+v, %v", rolled, err)
		}
		list, err := s.ListPolicies(ctx)
		if err != nil {
			t.Fatalf("ListPolicies: %v", err)
		}
		var versions []int
		var liveCount int
		for _, p := range list {
			versions = append(versions, p.Version)
			if p.Live {
				liveCount++
				if p.Version != 1 {
					t.Errorf("live version = %d, want 1", p.Version)
				}
			}
		}
		if got, want := fmt.Sprint(versions), "[3 2 1]"; got != want {
			t.Errorf("ListPolicies versions = %s, want %s", got, want)
		}
		if liveCount != 1 {
			t.Errorf("live versions = %d, want exactly 1", liveCount)
		}
		if again, err := s.ActivatePolicy(ctx, 1); err != nil || !again.Live {
			t.Errorf("ActivatePolicy of the live version = %+v, %v", again, err)
		}
		if p, _, err := s.LiveVersions(ctx); err != nil || p != 1 {
			t.Errorf("LiveVersions policy = %d, %v; want 1", p, err)
		}

		if _, err := s.Policy(ctx, 99); !errors.Is(err, feedback.ErrNotFound) {
			t.Errorf("Policy(99) error = %v, want ErrNotFound", err)
		}
		if _, err := s.ActivatePolicy(ctx, 99); !errors.Is(err, feedback.ErrNotFound) {
			t.Errorf("ActivatePolicy(99) error = %v, want ErrNotFound", err)
		}
		if _, err := s.PublishPolicy(ctx, []byte("base: -3"), "", "", ""); !errors.Is(err, feedback.ErrInvalid) {
			t.Errorf("PublishPolicy(YAML bytes) error = %v, want ErrInvalid", err)
		}
		if live, err := s.LivePolicy(ctx); err != nil || live.Version != 1 {
			t.Errorf("LivePolicy after refused publish = %d, %v; want 1", live.Version, err)
		}
	})
}

func TestPublishPolicyConcurrent(t *testing.T) {
	forEachEngine(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		const n = 8
		var wg sync.WaitGroup
		errs := make(chan error, n)
		for i := range n {
			wg.Go(func() {
				_, err := s.PublishPolicy(ctx, fmt.Appendf(nil, `{"base":%d}`, i), "", "", "")
				errs <- err
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Errorf("PublishPolicy: %v", err)
			}
		}
		list, err := s.ListPolicies(ctx)
		if err != nil {
			t.Fatal(err)
		}
		live := 0
		for i, p := range list {
			if p.Version != n-i {
				t.Errorf("list[%d].Version = %d, want %d", i, p.Version, n-i)
			}
			if p.Live {
				live++
			}
		}
		if len(list) != n || live != 1 {
			t.Errorf("got %d versions with %d live, want %d with 1 live", len(list), live, n)
		}
	})
}

func TestModels(t *testing.T) {
	forEachEngine(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		if _, err := s.ActiveModel(ctx); !errors.Is(err, feedback.ErrNotFound) {
			t.Fatalf("ActiveModel on empty store error = %v, want ErrNotFound", err)
		}
		body := []byte(`{"intercept":-1.5,"beta":[0.25]}`)
		m1, err := s.CreateModel(ctx, body, "first")
		if err != nil || m1.Version != 1 || m1.Status != feedback.ModelCandidate {
			t.Fatalf("CreateModel = %+v, %v; want version 1 candidate", m1, err)
		}
		m2, err := s.CreateModel(ctx, []byte(`{"intercept":0}`), "second")
		if err != nil || m2.Version != 2 {
			t.Fatalf("CreateModel 2 = %+v, %v", m2, err)
		}
		if _, err := s.ActiveModel(ctx); !errors.Is(err, feedback.ErrNotFound) {
			t.Errorf("ActiveModel with only candidates error = %v, want ErrNotFound", err)
		}
		if _, err := s.CreateModel(ctx, []byte("{"), ""); !errors.Is(err, feedback.ErrInvalid) {
			t.Errorf("CreateModel(bad JSON) error = %v, want ErrInvalid", err)
		}

		if a, err := s.ActivateModel(ctx, 1); err != nil || a.Status != feedback.ModelActive || a.ActivatedAt == nil {
			t.Fatalf("ActivateModel(1) = %+v, %v", a, err)
		}
		if _, err := s.ActivateModel(ctx, 2); err != nil {
			t.Fatalf("ActivateModel(2): %v", err)
		}
		statuses := func() string {
			list, err := s.ListModels(ctx)
			if err != nil {
				t.Fatalf("ListModels: %v", err)
			}
			var b strings.Builder
			for _, m := range list {
				fmt.Fprintf(&b, "%d:%s ", m.Version, m.Status)
			}
			return strings.TrimSpace(b.String())
		}
		if got, want := statuses(), "2:active 1:retired"; got != want {
			t.Errorf("after activating 2: %s, want %s", got, want)
		}
		active, err := s.ActiveModel(ctx)
		if err != nil || active.Version != 2 || active.Note != "second" {
			t.Errorf("ActiveModel = %+v, %v; want version 2", active, err)
		}
		if p, m, err := s.LiveVersions(ctx); err != nil || p != 0 || m != 2 {
			t.Errorf("LiveVersions = %d, %d, %v; want 0, 2", p, m, err)
		}
		// Rolling back reactivates a retired model.
		if _, err := s.ActivateModel(ctx, 1); err != nil {
			t.Fatalf("ActivateModel(1) again: %v", err)
		}
		if got, want := statuses(), "2:retired 1:active"; got != want {
			t.Errorf("after rollback: %s, want %s", got, want)
		}
		got, err := s.Model(ctx, 1)
		if err != nil || !bytes.Equal(got.Body, body) {
			t.Errorf("Model(1).Body = %s, %v; want %s", got.Body, err, body)
		}
		if _, err := s.ActivateModel(ctx, 7); !errors.Is(err, feedback.ErrNotFound) {
			t.Errorf("ActivateModel(7) error = %v, want ErrNotFound", err)
		}
	})
}

func TestOpenBadSQLitePath(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "plain-file")
	if err := os.WriteFile(file, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		dsn  string
		want string
	}{
		{"parent is a file", filepath.Join(file, "sub", "hotlane.db"), "create directory"},
		{"path is a directory", mkdir(t, filepath.Join(dir, "dir.db")), "is a directory"},
		{"empty", "", "empty database path"},
		{"memory", ":memory:", "in-memory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Open(context.Background(), tt.dsn, Options{})
			if err == nil {
				s.Close()
				t.Fatalf("Open(%q) succeeded, want error", tt.dsn)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Open(%q) error = %q, want it to mention %q", tt.dsn, err, tt.want)
			}
		})
	}
}

func TestOpenCreatesParentDirectory(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a", "b", "hotlane.db")
	s := openStore(t, path, Options{})
	if s.Dialect() != DialectSQLite {
		t.Errorf("Dialect = %q, want sqlite", s.Dialect())
	}
	if _, err := os.Stat(path); err != nil {
		t.Errorf("database file: %v", err)
	}
}

func TestOpenUnreachablePostgres(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30e9)
	defer cancel()
	s, err := Open(ctx, "postgres://postgres@127.0.0.1:1/test?sslmode=disable&connect_timeout=5", Options{})
	if err == nil {
		s.Close()
		t.Fatal("Open on a closed port succeeded, want error")
	}
	if errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Open on a closed port hung until the deadline: %v", err)
	}
}

// TestTranslate checks the error kinds the store reports for driver errors;
// a serialization failure or a deadlock is worth a retry and is not a
// conflict with stored data.
func TestTranslate(t *testing.T) {
	tests := []struct {
		name    string
		err     error
		want    error
		notWant error
	}{
		{"unique", &pgconn.PgError{Code: "23505"}, feedback.ErrConflict, feedback.ErrUnavailable},
		{"foreign key", &pgconn.PgError{Code: "23503"}, feedback.ErrConflict, feedback.ErrUnavailable},
		{"not null", &pgconn.PgError{Code: "23502"}, feedback.ErrInvalid, feedback.ErrConflict},
		{"serialization failure", &pgconn.PgError{Code: "40001"}, feedback.ErrUnavailable, feedback.ErrConflict},
		{"deadlock", &pgconn.PgError{Code: "40P01"}, feedback.ErrUnavailable, feedback.ErrConflict},
		{"no rows", pgx.ErrNoRows, feedback.ErrNotFound, feedback.ErrConflict},
		// A lost or refused connection, a server shutting down or out of
		// connections, SQLite busy: the client is not at fault (503).
		{"admin shutdown", &pgconn.PgError{Code: "57P01"}, feedback.ErrUnavailable, feedback.ErrInvalid},
		{"crash shutdown", &pgconn.PgError{Code: "57P02"}, feedback.ErrUnavailable, feedback.ErrInvalid},
		{"cannot connect now", &pgconn.PgError{Code: "57P03"}, feedback.ErrUnavailable, feedback.ErrInvalid},
		{"connection failure", &pgconn.PgError{Code: "08006"}, feedback.ErrUnavailable, feedback.ErrInvalid},
		{"too many connections", &pgconn.PgError{Code: "53300"}, feedback.ErrUnavailable, feedback.ErrInvalid},
		{"lock not available", &pgconn.PgError{Code: "55P03"}, feedback.ErrUnavailable, feedback.ErrConflict},
		{"connection refused", &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}, feedback.ErrUnavailable, feedback.ErrInvalid},
		{"unexpected EOF", io.ErrUnexpectedEOF, feedback.ErrUnavailable, feedback.ErrInvalid},
		{"bad connection", driver.ErrBadConn, feedback.ErrUnavailable, feedback.ErrInvalid},
		{"int4 overflow", &pgconn.PgError{Code: "22003"}, feedback.ErrInvalid, feedback.ErrUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := translate(fmt.Errorf("wrapped: %w", tt.err))
			if !errors.Is(got, tt.want) || errors.Is(got, tt.notWant) {
				t.Errorf("translate(%v) = %v, want %v and not %v", tt.err, got, tt.want, tt.notWant)
			}
			if !errors.Is(got, tt.err) {
				t.Errorf("translate(%v) = %v, lost the original error", tt.err, got)
			}
		})
	}
	if errors.Is(feedback.ErrUnavailable, feedback.ErrIdempotencyConflict) || !errors.Is(feedback.ErrIdempotencyConflict, feedback.ErrConflict) {
		t.Error("ErrIdempotencyConflict must be ErrConflict, and ErrUnavailable neither")
	}
}

// A statement whose context was canceled (a client gone, a shutdown) is
// not logged as an error; any other failure still is.
func TestCanceledQueriesAreNotLoggedAsErrors(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&buf, nil))
	ctx := context.Background()
	s, err := Open(ctx, filepath.Join(t.TempDir(), "h.db"), Options{Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	canceled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := s.ListAPIKeys(canceled); err == nil {
		t.Fatal("a query on a canceled context succeeded")
	}
	if strings.Contains(buf.String(), `"level":"ERROR"`) {
		t.Errorf("a canceled query was logged as an error: %s", buf.String())
	}
	gormConfig(log).Logger.Trace(ctx, time.Now(), func() (string, int64) { return "SELECT 1", 0 }, errors.New("disk I/O error"))
	if !strings.Contains(buf.String(), `"level":"ERROR"`) || !strings.Contains(buf.String(), "disk I/O error") {
		t.Errorf("a failed query was not logged: %s", buf.String())
	}
}
