package store

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hotlane/hotlane/feedback"
	"github.com/hotlane/hotlane/feedback/store/storetest"
)

func mkdir(t *testing.T, dir string) string {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// A --db value is SQLite only when it looks like a SQLite file: before, a
// keyword string became a SQLite file named after its password, and a
// mistyped URL silently ran on a new, empty SQLite file.
func TestOpenDSNNotTakenForSQLitePath(t *testing.T) {
	t.Chdir(t.TempDir())
	for _, tt := range []struct {
		name, dsn string
		wantIn    string // the error mentions it
	}{
		{"keyword string", "host=127.0.0.1 port=1 user=hotlane password=s3cret dbname=hotlane connect_timeout=2", "open postgres"},
		{"misspelt scheme", "postgress://hotlane:s3cret@127.0.0.1/hotlane", `neither a PostgreSQL database`},
		{"bare name", "hotlane", `"hotlane" is neither`},
		{"mysql url", "mysql://root:s3cret@localhost/db", `scheme "mysql"`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Open(context.Background(), tt.dsn, Options{})
			if err == nil {
				s.Close()
				t.Fatalf("Open(%q) succeeded", tt.dsn)
			}
			if !strings.Contains(err.Error(), tt.wantIn) {
				t.Errorf("Open(%q) = %q; want it to mention %q", tt.dsn, err, tt.wantIn)
			}
			if strings.Contains(err.Error(), "s3cret") {
				t.Errorf("the error echoes the password: %q", err)
			}
			if tt.wantIn != "open postgres" && !errors.Is(err, feedback.ErrInvalid) {
				t.Errorf("Open(%q) = %v, want ErrInvalid", tt.dsn, err)
			}
			entries, _ := os.ReadDir(".")
			if len(entries) != 0 {
				t.Errorf("Open(%q) created %v", tt.dsn, entries[0].Name())
			}
		})
	}
	for _, dsn := range []string{"a.db", "b.sqlite", "c.SQLITE3", "file:d.db", "sqlite://e.db", "f.db?_pragma=cache_size(100)"} {
		t.Run(dsn, func(t *testing.T) {
			s := openStore(t, dsn, Options{})
			if s.Dialect() != DialectSQLite {
				t.Errorf("Open(%q) dialect %q", dsn, s.Dialect())
			}
		})
	}
	t.Run("postgres keyword string", func(t *testing.T) {
		u, err := url.Parse(storetest.PostgresBase(t))
		if err != nil {
			t.Fatal(err)
		}
		kv := fmt.Sprintf("host=%s port=%s user=%s dbname=%s sslmode=disable", u.Hostname(), u.Port(), u.User.Username(), strings.TrimPrefix(u.Path, "/"))
		s := openStore(t, kv, Options{})
		if s.Dialect() != DialectPostgres {
			t.Errorf("dialect %q, want postgres", s.Dialect())
		}
		if err := s.Ping(context.Background()); err != nil {
			t.Error(err)
		}
	})
}

// SQLite acknowledges a write only once it is durable: synchronous=FULL
// by default (before, NORMAL, which power loss can undo in WAL mode).
func TestSQLiteSynchronousFull(t *testing.T) {
	for _, tt := range []struct {
		opt  string
		want int
	}{{"", 2}, {"full", 2}, {"normal", 1}} {
		t.Run("option "+tt.opt, func(t *testing.T) {
			s := openStore(t, filepath.Join(t.TempDir(), "h.db"), Options{SQLiteSynchronous: tt.opt})
			var got int
			if err := s.db.Raw("PRAGMA synchronous").Scan(&got).Error; err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("PRAGMA synchronous = %d, want %d", got, tt.want)
			}
		})
	}
	if _, err := Open(context.Background(), filepath.Join(t.TempDir(), "h.db"), Options{SQLiteSynchronous: "off"}); !errors.Is(err, feedback.ErrInvalid) {
		t.Errorf("synchronous off: %v, want ErrInvalid", err)
	}
}
