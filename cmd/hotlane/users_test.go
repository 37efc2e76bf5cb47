package main

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hotlane/hotlane/feedback"
	"github.com/hotlane/hotlane/feedback/store"
)

func runCLIStdin(t *testing.T, stdin string, args ...string) (string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err := run(context.Background(), args, strings.NewReader(stdin), &out, &errOut)
	return out.String(), err
}

func TestCLIUsers(t *testing.T) {
	db := filepath.Join(t.TempDir(), "h.db")
	if _, _, err := runCLI(t, "migrate", "--db", db); err != nil {
		t.Fatal(err)
	}
	out, err := runCLIStdin(t, "correct horse battery\n", "user", "create", "--db", db, "--email", "Ana@Example.com", "--role", "lead", "--team", "sales", "--password-stdin")
	if err != nil || !strings.Contains(out, "created lead ana@example.com") {
		t.Fatalf("create: %q %v", out, err)
	}
	for _, tt := range []struct {
		name  string
		stdin string
		args  []string
		want  string
	}{
		{"password as a flag is not a thing", "", []string{"user", "create", "--db", db, "--email", "bo@example.com"}, "--password-stdin"},
		{"short password", "short\n", []string{"user", "create", "--db", db, "--email", "bo@example.com", "--password-stdin"}, "at least 10"},
		{"empty password", "\n", []string{"user", "create", "--db", db, "--email", "bo@example.com", "--password-stdin"}, "empty"},
		{"bad role", "correct horse battery\n", []string{"user", "create", "--db", db, "--email", "bo@example.com", "--role", "owner", "--password-stdin"}, "--role"},
		{"taken", "correct horse battery\n", []string{"user", "create", "--db", db, "--email", "ana@example.com", "--password-stdin"}, "already exists"},
		{"unknown user", "", []string{"user", "disable", "--db", db, "nobody@example.com"}, "not found"},
		{"unknown subcommand", "", []string{"user", "delete", "--db", db}, "unknown subcommand"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := runCLIStdin(t, tt.stdin, tt.args...); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want it to mention %q", err, tt.want)
			}
		})
	}
	if out, err := runCLIStdin(t, "another horse battery\n", "user", "set-password", "--db", db, "--email", "ana@example.com", "--password-stdin"); err != nil || !strings.Contains(out, "changed") {
		t.Errorf("set-password: %q %v", out, err)
	}
	if out, err := runCLIStdin(t, "", "user", "disable", "--db", db, "ana@example.com"); err != nil || !strings.Contains(out, "disabled") {
		t.Errorf("disable: %q %v", out, err)
	}
	out, err = runCLIStdin(t, "", "user", "list", "--db", db)
	if err != nil || !strings.Contains(out, "ana@example.com") || !strings.Contains(out, "disabled") || !strings.Contains(out, "lead") {
		t.Errorf("list: %q %v", out, err)
	}
	// Each change is in the audit log, made by the command.
	st, err := store.Open(context.Background(), db, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	entries, err := st.AuditLog(context.Background(), feedback.AuditQuery{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range entries {
		if !strings.HasPrefix(e.Actor, feedback.CLIActor) {
			t.Errorf("actor %q", e.Actor)
		}
		got = append(got, e.Action+" "+e.Subject)
	}
	want := []string{"user.disable user ana@example.com", "user.set_password user ana@example.com", "user.create user ana@example.com"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("audit log = %q, want %q", got, want)
	}
}
