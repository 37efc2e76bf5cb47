package loadgen

import (
	"strings"
	"testing"
	"time"
)

func TestConfigValidate(t *testing.T) {
	valid := Config{URL: "http://127.0.0.1:8080", Key: "hl_abc", Duration: time.Second}
	tests := []struct {
		name    string
		edit    func(c *Config)
		wantErr []string // substrings; none means valid
	}{
		{name: "valid", edit: func(*Config) {}},
		{name: "https with path", edit: func(c *Config) { c.URL = "https://hotlane.example.com/v1/score" }},
		{name: "negative warmup disables it", edit: func(c *Config) { c.Warmup = -1 }},
		{name: "missing url", edit: func(c *Config) { c.URL = "" }, wantErr: []string{"url is required"}},
		{name: "no scheme", edit: func(c *Config) { c.URL = "127.0.0.1:8080" }, wantErr: []string{"http://"}},
		{name: "ftp", edit: func(c *Config) { c.URL = "ftp://x" }, wantErr: []string{"http://"}},
		{name: "query", edit: func(c *Config) { c.URL = "http://x/?a=b" }, wantErr: []string{"query"}},
		{name: "missing key", edit: func(c *Config) { c.Key = "" }, wantErr: []string{"key is required"}},
		{name: "key with newline", edit: func(c *Config) { c.Key = "a\nb" }, wantErr: []string{"line breaks"}},
		{name: "zero duration", edit: func(c *Config) { c.Duration = 0 }, wantErr: []string{"duration must be positive"}},
		{name: "negative concurrency", edit: func(c *Config) { c.Concurrency = -1 }, wantErr: []string{"concurrency"}},
		{name: "huge concurrency", edit: func(c *Config) { c.Concurrency = maxConcurrency + 1 }, wantErr: []string{"concurrency"}},
		{name: "negative rounds", edit: func(c *Config) { c.Rounds = -2 }, wantErr: []string{"rounds"}},
		{name: "negative conversations", edit: func(c *Config) { c.Conversations = -5 }, wantErr: []string{"conversations"}},
		{name: "every problem listed", edit: func(c *Config) { *c = Config{Concurrency: -1} },
			wantErr: []string{"url is required", "key is required", "duration", "concurrency"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := valid
			tt.edit(&c)
			err := c.Validate()
			if len(tt.wantErr) == 0 {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate() = nil, want an error mentioning %q", tt.wantErr)
			}
			for _, want := range tt.wantErr {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("Validate() = %q, want it to mention %q", err, want)
				}
			}
		})
	}
}

func TestConfigDefaults(t *testing.T) {
	tests := []struct {
		name string
		in   Config
		want Config
	}{
		{
			name: "without baseline",
			in:   Config{},
			want: Config{Concurrency: 32, Rounds: 1, Conversations: 5000, Warmup: 2 * time.Second},
		},
		{
			name: "with baseline",
			in:   Config{Baseline: true},
			want: Config{Baseline: true, Concurrency: 32, Rounds: 3, Conversations: 5000, Warmup: 2 * time.Second},
		},
		{
			name: "explicit values kept, negative warmup off",
			in:   Config{Concurrency: 128, Rounds: 5, Conversations: 10, Warmup: -1},
			want: Config{Concurrency: 128, Rounds: 5, Conversations: 10, Warmup: 0},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.in.withDefaults(); got != tt.want {
				t.Errorf("withDefaults() = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestScoreURL(t *testing.T) {
	tests := []struct{ in, want string }{
		{"http://127.0.0.1:8080", "http://127.0.0.1:8080/v1/score"},
		{"http://127.0.0.1:8080/", "http://127.0.0.1:8080/v1/score"},
		{"https://h.example.com/hotlane", "https://h.example.com/hotlane/v1/score"},
		{"http://h/v1/score", "http://h/v1/score"},
	}
	for _, tt := range tests {
		if got := scoreURL(tt.in); got != tt.want {
			t.Errorf("scoreURL(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
