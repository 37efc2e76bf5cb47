package main

import (
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// --debug-addr serves the profiler on a listener of its own; the API's
// listener never does.
func TestServeDebugAddr(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	debugAddr := ln.Addr().String()
	ln.Close()
	r := startServe(t, "--db", filepath.Join(t.TempDir(), "h.db"), "--debug-addr", debugAddr, "--tune-schedule", "off")
	defer r.stop(t)

	get := func(url string) (int, string) {
		t.Helper()
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get("http://" + debugAddr + "/debug/pprof/"); code != http.StatusOK || !strings.Contains(body, "goroutine") {
		t.Errorf("profiler index: %d %.200q", code, body)
	}
	if code, body := get("http://" + debugAddr + "/debug/pprof/goroutine?debug=1"); code != http.StatusOK || !strings.Contains(body, "goroutine profile") {
		t.Errorf("goroutine profile: %d %.200q", code, body)
	}
	if code, _ := get("http://" + r.addr + "/debug/pprof/"); code == http.StatusOK {
		t.Errorf("the API listener serves the profiler")
	}
}

func TestServeConfigDebugAddr(t *testing.T) {
	for _, bad := range []string{"6060", "localhost"} {
		_, err := parseServeConfig([]string{"--debug-addr", bad}, envOf(nil), io.Discard)
		if err == nil || !strings.Contains(err.Error(), "--debug-addr") {
			t.Errorf("--debug-addr %q: err = %v, want a usage error naming the flag", bad, err)
		}
	}
	_, err := parseServeConfig([]string{"--addr", "127.0.0.1:7000", "--debug-addr", "127.0.0.1:7000"}, envOf(nil), io.Discard)
	if err == nil || !strings.Contains(err.Error(), "--debug-addr") {
		t.Errorf("same address: err = %v", err)
	}
	cfg, err := parseServeConfig([]string{"--debug-addr", "127.0.0.1:6060"}, envOf(nil), io.Discard)
	if err != nil || cfg.DebugAddr != "127.0.0.1:6060" {
		t.Errorf("cfg.DebugAddr = %q, err = %v", cfg.DebugAddr, err)
	}
}

func TestServeConfigRetainDecisions(t *testing.T) {
	cfg, err := parseServeConfig(nil, envOf(nil), io.Discard)
	if err != nil || cfg.RetainDecisions != 400*24*time.Hour {
		t.Errorf("default --retain-decisions = %v, %v; want 400 days", cfg.RetainDecisions, err)
	}
	for _, bad := range []string{"-1h", "24h"} {
		_, err := parseServeConfig([]string{"--retain-decisions", bad}, envOf(nil), io.Discard)
		if err == nil || !strings.Contains(err.Error(), "--retain-decisions") {
			t.Errorf("--retain-decisions %s: err = %v, want a usage error naming it", bad, err)
		}
	}
	if cfg, err := parseServeConfig([]string{"--retain-decisions", "0"}, envOf(nil), io.Discard); err != nil || cfg.RetainDecisions != 0 {
		t.Errorf("--retain-decisions 0 = %v, %v; want 0 (keep all)", cfg.RetainDecisions, err)
	}
}
