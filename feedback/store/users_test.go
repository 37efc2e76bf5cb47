package store

import (
	"context"
	"errors"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/hotlane/hotlane/feedback"
)

func TestUsersAndSessions(t *testing.T) {
	forEachEngine(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		hash, err := feedback.HashPassword("correct horse battery", bcrypt.MinCost)
		if err != nil {
			t.Fatal(err)
		}
		u, err := s.CreateUser(ctx, feedback.NewUser{Email: " Ana@Example.com ", Role: feedback.RoleAgent, Team: "sales", PasswordHash: hash})
		if err != nil {
			t.Fatal(err)
		}
		if u.Email != "ana@example.com" || u.Role != feedback.RoleAgent || u.Team != "sales" || u.Disabled() {
			t.Errorf("created %+v", u)
		}
		if _, err := s.CreateUser(ctx, feedback.NewUser{Email: "ANA@example.com", Role: feedback.RoleLead, PasswordHash: hash}); !errors.Is(err, feedback.ErrConflict) {
			t.Errorf("same email again: %v, want ErrConflict", err)
		}
		if _, err := s.CreateUser(ctx, feedback.NewUser{Email: "bo@example.com", Role: "owner", PasswordHash: hash}); !errors.Is(err, feedback.ErrInvalid) {
			t.Errorf("unknown role: %v, want ErrInvalid", err)
		}
		got, gotHash, err := s.UserByEmail(ctx, "ANA@example.com")
		if err != nil || got.ID != u.ID || !feedback.CheckPassword(gotHash, "correct horse battery") {
			t.Fatalf("UserByEmail = %+v, %v", got, err)
		}
		if _, _, err := s.UserByEmail(ctx, "nobody@example.com"); !errors.Is(err, feedback.ErrNotFound) {
			t.Errorf("unknown email: %v", err)
		}

		at := time.Now().UTC()
		_, th := feedback.NewSessionToken()
		if _, err := s.CreateSession(ctx, u.ID, th, at); err != nil {
			t.Fatal(err)
		}
		sess, err := s.Session(ctx, th, at.Add(time.Hour))
		if err != nil || sess.User.ID != u.ID {
			t.Fatalf("Session = %+v, %v", sess, err)
		}
		// Idle: seen an hour in, so valid until an hour plus SessionIdle.
		if _, err := s.Session(ctx, th, at.Add(time.Hour+feedback.SessionIdle-time.Minute)); err != nil {
			t.Errorf("within the idle timeout: %v", err)
		}
		if _, err := s.Session(ctx, th, at.Add(3*time.Hour+2*feedback.SessionIdle)); !errors.Is(err, feedback.ErrNotFound) {
			t.Errorf("after the idle timeout: %v, want ErrNotFound", err)
		}
		// Absolute: kept alive by requests, still ends at SessionMax.
		_, th2 := feedback.NewSessionToken()
		if _, err := s.CreateSession(ctx, u.ID, th2, at); err != nil {
			t.Fatal(err)
		}
		for d := time.Duration(0); d < feedback.SessionMax; d += feedback.SessionIdle / 2 {
			if _, err := s.Session(ctx, th2, at.Add(d)); err != nil {
				t.Fatalf("at %v: %v", d, err)
			}
		}
		if _, err := s.Session(ctx, th2, at.Add(feedback.SessionMax)); !errors.Is(err, feedback.ErrNotFound) {
			t.Errorf("at the absolute expiry: %v, want ErrNotFound", err)
		}
		if _, err := s.Session(ctx, "nope", at); !errors.Is(err, feedback.ErrNotFound) {
			t.Errorf("unknown token: %v", err)
		}

		// Logout, a new password and disabling end sessions.
		_, th3 := feedback.NewSessionToken()
		if _, err := s.CreateSession(ctx, u.ID, th3, at); err != nil {
			t.Fatal(err)
		}
		if err := s.DeleteSession(ctx, th3); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Session(ctx, th3, at); !errors.Is(err, feedback.ErrNotFound) {
			t.Errorf("after logout: %v", err)
		}
		for _, end := range []func() error{
			func() error { return s.SetPassword(ctx, "ana@example.com", hash) },
			func() error { return s.DisableUser(ctx, "ana@example.com") },
		} {
			_, th := feedback.NewSessionToken()
			if _, err := s.CreateSession(ctx, u.ID, th, at); err != nil {
				t.Fatal(err)
			}
			if err := end(); err != nil {
				t.Fatal(err)
			}
			if _, err := s.Session(ctx, th, at); !errors.Is(err, feedback.ErrNotFound) {
				t.Errorf("session after a password change or disabling: %v", err)
			}
		}
		got, _, _ = s.UserByEmail(ctx, "ana@example.com")
		if !got.Disabled() {
			t.Error("user not disabled")
		}
		if err := s.DisableUser(ctx, "nobody@example.com"); !errors.Is(err, feedback.ErrNotFound) {
			t.Errorf("disable unknown: %v", err)
		}
		list, err := s.Users(ctx)
		if err != nil || len(list) != 1 {
			t.Errorf("Users = %+v, %v", list, err)
		}
	})
}
