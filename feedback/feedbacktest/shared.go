package feedbacktest

import (
	"os"
	"path/filepath"
	"testing"
)

// SharedData returns the path of rel inside the project's shared data
// (the Chatwoot payloads, the UCI shoppers file), which tests read in
// place and the repository does not copy: $HOTLANE_SHARED_DATA/rel, else
// shared/data/rel in the nearest directory above the test's. When it is
// not there the test is skipped with the reason, or fails when
// HOTLANE_REQUIRE_SHARED_DATA is set (CI sets it when the data is
// present).
func SharedData(t testing.TB, rel string) string {
	t.Helper()
	if dir := os.Getenv("HOTLANE_SHARED_DATA"); dir != "" {
		p := filepath.Join(dir, rel)
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("HOTLANE_SHARED_DATA=%s: %v", dir, err)
		}
		return p
	}
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for dir := wd; ; dir = filepath.Dir(dir) {
		p := filepath.Join(dir, "shared", "data", rel)
		if _, err := os.Stat(p); err == nil {
			return p
		}
		if filepath.Dir(dir) == dir {
			break
		}
	}
	msg := "shared data " + rel + " not found above " + wd + " (set HOTLANE_SHARED_DATA to the shared/data directory)"
	if os.Getenv("HOTLANE_REQUIRE_SHARED_DATA") != "" {
		t.Fatal(msg)
	}
	t.Skip("skipping: " + msg)
	return ""
}
