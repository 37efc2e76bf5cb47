package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"
)

// docBlock is a shell example of the documentation and the JSON answer
// printed under it, if any.
type docBlock struct {
	where  string // file:line
	script string
	answer string // the ```json block that follows, "" when none
}

// runnableMarker, on the line before a docs page's ```sh block, says the
// example runs on a fresh `serve --demo` as printed; the README's quick
// start runs whole.
const runnableMarker = "<!-- runs on the demo -->"

// docBlocks extracts the shell examples of path: every ```sh block of the
// sections (level-2 headings) named in from, or, when from is empty,
// every block marked runnable.
func docBlocks(t *testing.T, path string, from ...string) []docBlock {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(raw), "\n")
	var out []docBlock
	all := len(from) == 0
	in := all
	for i := 0; i < len(lines); i++ {
		l := lines[i]
		if !all && strings.HasPrefix(l, "## ") {
			in = slices.Contains(from, l)
			continue
		}
		if !in || l != "```sh" || (all && (i == 0 || lines[i-1] != runnableMarker)) {
			continue
		}
		b := docBlock{where: fmt.Sprintf("%s:%d", filepath.Base(path), i+1)}
		var body []string
		for i++; i < len(lines) && lines[i] != "```"; i++ {
			body = append(body, lines[i])
		}
		b.script = strings.Join(body, "\n")
		// The answer is a ```json block separated from it by blank lines
		// only.
		j := i + 1
		for j < len(lines) && strings.TrimSpace(lines[j]) == "" {
			j++
		}
		if j < len(lines) && lines[j] == "```json" {
			var ans []string
			for j++; j < len(lines) && lines[j] != "```"; j++ {
				ans = append(ans, lines[j])
			}
			b.answer = strings.Join(ans, "\n")
		}
		out = append(out, b)
	}
	return out
}

// adaptLine turns a documented command into what the test runs: the
// server and the build are the test's own, the tests are what runs this,
// and the key and address are the demo server's. ok is false for a line
// the test does itself.
func adaptLine(line, addr, key string) (string, bool) {
	cmd := strings.TrimSpace(line)
	if i := strings.Index(cmd, "  #"); i >= 0 {
		cmd = strings.TrimSpace(cmd[:i])
	}
	switch cmd {
	case "go run ./cmd/hotlane serve --demo", "go test ./...", "go build -o hotlane ./cmd/hotlane":
		return "", false
	case "export HOTLANE_KEY=hl_...":
		return "export HOTLANE_KEY=" + key, true
	}
	return strings.ReplaceAll(line, "localhost:8080", addr), true
}

// TestDocsExamplesRunOnTheDemo runs, as a new user would, every shell
// example of the README's quick start (and its "Try it on the demo"
// section) and every example of the docs
// pages marked to run on the demo, in order, against a fresh
// `serve --demo`, with the hotlane command at ./hotlane and on the PATH. Each must exit 0
// and print something that is not an error, and an example shown with a
// JSON answer must answer JSON of the same shape: the same keys at every
// level, values of the same kinds.
func TestDocsExamplesRunOnTheDemo(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a demo server")
	}
	blocks := docBlocks(t, "../../README.md", "## Quick start", "## Try it on the demo")
	if len(blocks) < 5 {
		t.Fatalf("the README's quick start has %d shell examples; the test expects at least 5", len(blocks))
	}
	for _, page := range []string{"integration.md", "tuning.md", "operations.md", "web-ui.md", "architecture.md"} {
		blocks = append(blocks, docBlocks(t, filepath.Join("../../docs", page))...)
	}

	dir := t.TempDir()
	srv := startServe(t, "--db", filepath.Join(dir, "hotlane.db"), "--demo", "--log-level", "error")
	defer srv.stop(t)
	if srv.key == "" {
		t.Fatalf("serve --demo printed no key:\n%s", srv.out)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	wrapper := fmt.Sprintf("#!/bin/sh\nHOTLANE_TEST_MAIN=1 exec '%s' -- \"$@\"\n", self)
	if err := os.WriteFile(filepath.Join(dir, "hotlane"), []byte(wrapper), 0o755); err != nil {
		t.Fatal(err)
	}

	for _, b := range blocks {
		var lines []string
		for _, l := range strings.Split(b.script, "\n") {
			if l, ok := adaptLine(l, srv.addr, srv.key); ok {
				lines = append(lines, l)
			}
		}
		script := strings.Join(lines, "\n")
		if strings.TrimSpace(script) == "" {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		cmd := exec.CommandContext(ctx, "bash", "-eo", "pipefail", "-c", script)
		cmd.Dir = dir
		// The user's shell: no test settings, the key exported.
		cmd.Env = []string{"HOTLANE_KEY=" + srv.key, "PATH=" + dir + string(os.PathListSeparator) + os.Getenv("PATH")}
		for _, kv := range os.Environ() {
			if !strings.HasPrefix(kv, "HOTLANE_") && !strings.HasPrefix(kv, "CI=") && !strings.HasPrefix(kv, "PATH=") {
				cmd.Env = append(cmd.Env, kv)
			}
		}
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		cancel()
		out := stdout.String()
		switch {
		case err != nil:
			t.Errorf("%s: %v\n%s\nstdout:\n%s\nstderr:\n%s", b.where, err, script, out, stderr.String())
			continue
		case strings.TrimSpace(out) == "" && (strings.Contains(script, "curl") || strings.Contains(script, "./hotlane")):
			t.Errorf("%s printed nothing:\n%s\nstderr:\n%s", b.where, script, stderr.String())
			continue
		case strings.Contains(out, `{"error":`):
			t.Errorf("%s answered an error:\n%s\n%s", b.where, script, out)
			continue
		}
		if b.answer == "" {
			continue
		}
		var doc, got any
		if err := json.Unmarshal([]byte(b.answer), &doc); err != nil {
			t.Errorf("%s: the documented answer is not JSON: %v", b.where, err)
			continue
		}
		if err := json.Unmarshal([]byte(out), &got); err != nil {
			t.Errorf("%s: the answer is not JSON: %v\n%s", b.where, err, out)
			continue
		}
		if diffs := shapeDiffs(doc, got, "$"); len(diffs) > 0 {
			t.Errorf("%s: the answer differs from the documented one:\n%s\ngot %s", b.where, strings.Join(diffs, "\n"), out)
		}
	}
}

// shapeDiffs compares a documented JSON answer with a real one: objects
// must have the same keys, values the same kinds (null matches anything,
// since a nullable field may be null in one and set in the other), and
// every element of an array only keys that some documented element has.
func shapeDiffs(doc, got any, path string) []string {
	if doc == nil || got == nil {
		return nil
	}
	switch d := doc.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			return []string{fmt.Sprintf("%s is %s, documented as an object", path, kindOf(got))}
		}
		var diffs []string
		for _, k := range sortedKeys(d) {
			if _, ok := g[k]; !ok {
				diffs = append(diffs, fmt.Sprintf("%s.%s is documented but missing", path, k))
				continue
			}
			diffs = append(diffs, shapeDiffs(d[k], g[k], path+"."+k)...)
		}
		for _, k := range sortedKeys(g) {
			if _, ok := d[k]; !ok {
				diffs = append(diffs, fmt.Sprintf("%s.%s is not documented", path, k))
			}
		}
		return diffs
	case []any:
		g, ok := got.([]any)
		if !ok {
			return []string{fmt.Sprintf("%s is %s, documented as an array", path, kindOf(got))}
		}
		known := map[string]bool{}
		for _, e := range d {
			if m, ok := e.(map[string]any); ok {
				for k := range m {
					known[k] = true
				}
			}
		}
		var diffs []string
		for i, e := range g {
			m, ok := e.(map[string]any)
			if !ok || len(known) == 0 {
				continue
			}
			for _, k := range sortedKeys(m) {
				if !known[k] {
					diffs = append(diffs, fmt.Sprintf("%s[%d].%s is not documented", path, i, k))
				}
			}
		}
		return diffs
	}
	if kindOf(doc) != kindOf(got) {
		return []string{fmt.Sprintf("%s is %s, documented as %s", path, kindOf(got), kindOf(doc))}
	}
	return nil
}

func kindOf(v any) string {
	switch v.(type) {
	case map[string]any:
		return "an object"
	case []any:
		return "an array"
	case string:
		return "a string"
	case float64:
		return "a number"
	case bool:
		return "a boolean"
	}
	return "null"
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// The shape comparison catches what it must: a renamed key, a missing
// one, an undocumented one, a value of another kind.
func TestShapeDiffs(t *testing.T) {
	doc := `{"a": 1, "b": {"c": "x", "d": null}, "e": [{"f": 1, "g": true}]}`
	tests := []struct {
		got  string
		want []string
	}{
		{`{"a": 2, "b": {"c": "y", "d": 3}, "e": [{"f": 1}, {"g": false}]}`, nil},
		{`{"a": 2, "b": null, "e": []}`, nil},
		{`{"a": "2", "b": {"c": "y", "d": 3}, "e": []}`, []string{"$.a is a string, documented as a number"}},
		{`{"b": {"c": "y", "d": 3, "x": 1}, "e": [{"h": 1}]}`, []string{"$.a is documented but missing", "$.b.x is not documented", "$.e[0].h is not documented"}},
	}
	var d any
	_ = json.Unmarshal([]byte(doc), &d)
	for _, tt := range tests {
		var g any
		_ = json.Unmarshal([]byte(tt.got), &g)
		if got := shapeDiffs(d, g, "$"); !slices.Equal(got, tt.want) {
			t.Errorf("shapeDiffs(%s) = %q, want %q", tt.got, got, tt.want)
		}
	}
}

// Every relative link of the README and the docs pages reaches a file,
// and every #anchor a heading of its page.
func TestDocsLinks(t *testing.T) {
	pages, _ := filepath.Glob("../../docs/*.md")
	pages = append(pages, "../../README.md", "../../BENCHMARKS.md")
	link := regexp.MustCompile(`\]\(([^)\s]+)\)`)
	for _, page := range pages {
		raw, err := os.ReadFile(page)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range link.FindAllStringSubmatch(string(raw), -1) {
			target := m[1]
			if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
				continue
			}
			file, anchor, _ := strings.Cut(target, "#")
			path := page
			if file != "" {
				path = filepath.Join(filepath.Dir(page), file)
				if _, err := os.Stat(path); err != nil {
					t.Errorf("%s links to %s, which does not exist", filepath.Base(page), target)
					continue
				}
			}
			if anchor != "" && strings.HasSuffix(path, ".md") && !slices.Contains(anchors(t, path), anchor) {
				t.Errorf("%s links to %s, but %s has no such heading", filepath.Base(page), target, filepath.Base(path))
			}
		}
	}
}

// anchors are the ids GitHub gives the headings of a Markdown file.
func anchors(t *testing.T, path string) []string {
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	inCode := false
	for _, l := range strings.Split(string(raw), "\n") {
		if strings.HasPrefix(l, "```") {
			inCode = !inCode
		}
		if inCode || !strings.HasPrefix(l, "#") {
			continue
		}
		h := strings.ToLower(strings.TrimSpace(strings.TrimLeft(l, "#")))
		var b strings.Builder
		for _, r := range h {
			switch {
			case r == ' ':
				b.WriteRune('-')
			case r == '-' || r == '_' || (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9'):
				b.WriteRune(r)
			}
		}
		out = append(out, b.String())
	}
	return out
}
