package main

import (
	"net/http"
	"os"
	"strings"
	"testing"
	"time"
)

func TestSummarizeRSS(t *testing.T) {
	samples := []rssSample{{0, 50_000}, {30 * time.Second, 90_000}, {time.Minute, 100_000}, {5 * time.Minute, 120_000}, {10 * time.Minute, 105_000}}
	s := summarizeRSS(1, samples, time.Minute)
	if s.warm != 100_000 || s.last != 105_000 || s.peak != 120_000 || s.growth < 0.0499 || s.growth > 0.0501 {
		t.Fatalf("summary %+v: want warm 100000, last 105000, peak 120000, growth 5%%", s)
	}
	if !strings.Contains(s.String(), "+5.0%") {
		t.Errorf("summary line %q", s)
	}
	if short := summarizeRSS(1, samples[:2], time.Minute); !short.tooShort || !strings.Contains(short.String(), "shorter than") {
		t.Errorf("a run shorter than the warm-up: %+v", short)
	}
}

func TestReadRSS(t *testing.T) {
	if _, err := os.Stat("/proc/self/status"); err != nil {
		t.Skip("no /proc on this system")
	}
	kib, err := readRSS(os.Getpid())
	if err != nil || kib <= 0 {
		t.Fatalf("readRSS(self) = %d, %v", kib, err)
	}
	if _, err := startRSS(1<<30, time.Second); err == nil {
		t.Error("a process that does not exist was sampled")
	}
}

func TestDeliverySink(t *testing.T) {
	addr := freeAddr(t)
	s, err := startSink(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer s.close()
	for _, id := range []string{"d1", "d2", "d1"} {
		req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/", strings.NewReader(`{"alert":{}}`))
		req.Header.Set("Hotlane-Delivery", id)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusNoContent {
			t.Fatalf("sink answered %d", res.StatusCode)
		}
	}
	if got := s.String(); got != "sink: 3 deliveries received, 2 distinct delivery ids" {
		t.Errorf("sink: %q", got)
	}
}
