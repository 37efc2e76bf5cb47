package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/hotlane/hotlane/feedback"
)

// readPassword reads one line from stdin: a password is never a flag,
// which would leave it in the shell history and the process list.
func readPassword(stdin io.Reader) (string, error) {
	line, err := bufio.NewReader(stdin).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("read password: %w", err)
	}
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		return "", usagef("the password is read from standard input (--password-stdin) and was empty")
	}
	return line, nil
}

func runUser(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return usagef("user needs a subcommand: create, list, disable or set-password")
	}
	sub, args := args[0], args[1:]
	if isHelp(sub) {
		writeGroupHelp(stdout, "user")
		return nil
	}
	var email, role, team string
	var fromStdin bool
	db, rest, log, err := parseDBCommand("user "+sub, args, stderr, func(fs *flag.FlagSet) {
		switch sub {
		case "create":
			fs.StringVar(&role, "role", "agent", "agent, lead or admin")
			fs.StringVar(&team, "team", "", "the user's team, for \"mine\" in the queue")
			fallthrough
		case "set-password":
			fs.BoolVar(&fromStdin, "password-stdin", false, "read the password from standard input (required)")
			fallthrough
		case "disable":
			fs.StringVar(&email, "email", "", "the user's email address")
		}
	})
	if err != nil {
		return err
	}
	if len(rest) == 1 && email == "" && sub != "list" {
		email = rest[0] // hotlane user disable ana@example.com
		rest = nil
	}
	if len(rest) > 0 {
		return usagef("user %s: unexpected arguments %q", sub, rest)
	}
	switch sub {
	case "create", "set-password", "disable":
		if email == "" {
			return usagef("user %s: --email is required", sub)
		}
	case "list":
	default:
		return usagef("user: unknown subcommand %q: create, list, disable or set-password", sub)
	}
	var hash string
	if sub == "create" || sub == "set-password" {
		if !fromStdin {
			return usagef("user %s: pass the password on standard input with --password-stdin", sub)
		}
		password, err := readPassword(stdin)
		if err != nil {
			return err
		}
		if hash, err = feedback.HashPassword(password, feedback.DefaultBcryptCost); err != nil {
			return usagef("user %s: %s", sub, strings.TrimPrefix(err.Error(), feedback.ErrInvalid.Error()+": "))
		}
	}
	st, err := openStore(ctx, db, log)
	if err != nil {
		return err
	}
	defer st.Close()
	switch sub {
	case "create":
		r, err := feedback.ParseRole(role)
		if err != nil {
			return usagef("user create: --role must be agent, lead or admin")
		}
		u, err := st.CreateUser(ctx, feedback.NewUser{Email: email, Role: r, Team: team, PasswordHash: hash})
		if errors.Is(err, feedback.ErrConflict) {
			return fmt.Errorf("user create: %s already exists (use set-password to change the password)", email)
		}
		if err != nil {
			return fmt.Errorf("user create: %w", err)
		}
		auditCLI(ctx, st, stdout, feedback.AuditUserCreate, "user "+u.Email, map[string]any{"role": u.Role, "team": u.Team})
		fmt.Fprintf(stdout, "created %s %s (team %q)\n", u.Role, u.Email, u.Team)
	case "set-password":
		if err := st.SetPassword(ctx, email, hash); err != nil {
			return fmt.Errorf("user set-password: %w", err)
		}
		auditCLI(ctx, st, stdout, feedback.AuditUserSetPassword, "user "+email, nil)
		fmt.Fprintf(stdout, "password of %s changed; their sessions ended\n", email)
	case "disable":
		if err := st.DisableUser(ctx, email); err != nil {
			return fmt.Errorf("user disable: %w", err)
		}
		auditCLI(ctx, st, stdout, feedback.AuditUserDisable, "user "+email, nil)
		fmt.Fprintf(stdout, "%s disabled; their sessions ended\n", email)
	case "list":
		users, err := st.Users(ctx)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "EMAIL\tROLE\tTEAM\tSTATUS\tCREATED")
		for _, u := range users {
			status := "active"
			if u.Disabled() {
				status = "disabled " + u.DisabledAt.Format("2006-01-02")
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", u.Email, u.Role, u.Team, status, u.CreatedAt.Format("2006-01-02"))
		}
		return tw.Flush()
	}
	return nil
}
