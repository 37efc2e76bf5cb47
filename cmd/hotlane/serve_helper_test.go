package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// running is a server started in-process by startServe.
type running struct {
	addr   string // host:port it listens on
	out    string // what it printed before it was ready (the demo's output)
	key    string // the demo key in out, if any
	cancel context.CancelFunc
	done   chan error
}

// startWait bounds a server's start: --demo seeds weeks of history and
// trains a model first, which under -race on a busy two-core machine takes
// tens of seconds. It is a deadlock guard, not a measure.
const startWait = 2 * time.Minute

// startServe runs `hotlane serve` in-process on a free loopback port with
// the given flags and waits until it accepts requests.
func startServe(t *testing.T, flags ...string) *running {
	t.Helper()
	return startServeLogging(t, io.Discard, flags...)
}

// startServeLogging is startServe writing the server's log to logs.
func startServeLogging(t *testing.T, logs io.Writer, flags ...string) *running {
	t.Helper()
	cfg, err := parseServeConfig(append([]string{"--addr", "127.0.0.1:0"}, flags...), envOf(nil), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var stdout bytes.Buffer
	ready := make(chan string, 1)
	r := &running{cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- serve(ctx, cfg, &stdout, logs, ready) }()
	select {
	case r.addr = <-ready:
	case err := <-r.done:
		cancel()
		t.Fatalf("serve ended before it was ready: %v", err)
	case <-time.After(startWait):
		cancel()
		t.Fatalf("server did not start within %v", startWait)
	}
	// serve prints only before it is ready, so stdout is settled here.
	r.out = stdout.String()
	r.key = regexp.MustCompile(`hl_\S+`).FindString(r.out)
	return r
}

// stop cancels the server and returns what serve returned once it has
// drained.
func (r *running) stop(t *testing.T) error {
	t.Helper()
	r.cancel()
	select {
	case err := <-r.done:
		return err
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not return after the shutdown")
		return nil
	}
}

// serve --demo binds before it touches the database: on a port in use it
// fails without seeding anything or printing a key for a server that never
// ran; a second --demo on a seeded database says how to make a key.
func TestServeDemoBindsFirst(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	db := filepath.Join(t.TempDir(), "h.db")
	cfg, err := parseServeConfig([]string{"--addr", busy.Addr().String(), "--db", db, "--demo", "--demo-history=false"}, envOf(nil), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	var stdout bytes.Buffer
	err = serve(context.Background(), cfg, &stdout, io.Discard, nil)
	if err == nil || !strings.Contains(err.Error(), "listen on "+busy.Addr().String()) {
		t.Fatalf("serve on a busy port: %v", err)
	}
	if stdout.Len() > 0 {
		t.Errorf("printed before failing: %q", stdout.String())
	}
	if _, err := os.Stat(db); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the database was made before the port was bound: %v", err)
	}

	first := startServe(t, "--db", db, "--demo", "--demo-history=false")
	if first.key == "" {
		t.Fatalf("first demo printed no key: %s", first.out)
	}
	if err := first.stop(t); err != nil {
		t.Fatal(err)
	}
	again := startServe(t, "--db", db, "--demo", "--demo-history=false")
	defer again.stop(t)
	if !strings.Contains(again.out, "API keys already exist") || !strings.Contains(again.out, "hotlane apikey create --db") {
		t.Errorf("second demo on the same database: %q", again.out)
	}
}
