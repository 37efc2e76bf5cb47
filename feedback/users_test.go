package feedback

import (
	"errors"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

func TestRoles(t *testing.T) {
	for _, tt := range []struct {
		r, min Role
		want   bool
	}{
		{RoleAgent, RoleAgent, true}, {RoleAgent, RoleLead, false}, {RoleLead, RoleAgent, true},
		{RoleAdmin, RoleLead, true}, {RoleLead, RoleAdmin, false}, {"", RoleAgent, false}, {"root", RoleAgent, false},
	} {
		if got := tt.r.AtLeast(tt.min); got != tt.want {
			t.Errorf("%q.AtLeast(%q) = %v, want %v", tt.r, tt.min, got, tt.want)
		}
	}
	if _, err := ParseRole("owner"); !errors.Is(err, ErrInvalid) {
		t.Errorf("ParseRole(owner) = %v", err)
	}
}

func TestNormalizeEmail(t *testing.T) {
	for in, want := range map[string]string{" Ana@Example.COM ": "ana@example.com", "a@b": "a@b"} {
		if got, err := NormalizeEmail(in); err != nil || got != want {
			t.Errorf("NormalizeEmail(%q) = %q, %v", in, got, err)
		}
	}
	for _, bad := range []string{"", "ana", "@example.com", "ana@", "a@b@c", "a b@c", "a\x00@b", `"a"@b`} {
		if _, err := NormalizeEmail(bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("NormalizeEmail(%q) = %v, want ErrInvalid", bad, err)
		}
	}
}

func TestPasswords(t *testing.T) {
	h, err := HashPassword("correct horse battery", bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	if !CheckPassword(h, "correct horse battery") || CheckPassword(h, "correct horse batterY") {
		t.Error("CheckPassword does not tell the password from another")
	}
	if CheckNoPassword("correct horse battery") {
		t.Error("CheckNoPassword succeeded")
	}
	for _, bad := range []string{"short", string(make([]byte, 73))} {
		if _, err := HashPassword(bad, bcrypt.MinCost); !errors.Is(err, ErrInvalid) {
			t.Errorf("HashPassword(len %d) = %v", len(bad), err)
		}
	}
	tok, hash := NewSessionToken()
	tok2, _ := NewSessionToken()
	if tok == tok2 || HashSessionToken(tok) != hash || hash == tok || len(tok) < 40 {
		t.Errorf("session tokens %q %q %q", tok, tok2, hash)
	}
}
