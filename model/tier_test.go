package model

import (
	"encoding/json"
	"testing"
)

func TestParseTier(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    Tier
		wantErr bool
	}{
		{name: "urgent", in: "urgent", want: TierUrgent},
		{name: "high", in: "high", want: TierHigh},
		{name: "medium", in: "medium", want: TierMedium},
		{name: "low", in: "low", want: TierLow},
		{name: "empty is none", in: "", want: TierNone},
		{name: "case matters", in: "High", wantErr: true},
		{name: "unknown", in: "critical", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseTier(tt.in)
			if (err != nil) != tt.wantErr {
				t.Fatalf("ParseTier(%q) error = %v, want error %v", tt.in, err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("ParseTier(%q) = %v, want %v", tt.in, got, tt.want)
			}
			if !tt.wantErr && got.String() != tt.in {
				t.Errorf("String() = %q, want %q", got.String(), tt.in)
			}
		})
	}
}

func TestTierOrder(t *testing.T) {
	if !(TierNone < TierLow && TierLow < TierMedium && TierMedium < TierHigh && TierHigh < TierUrgent) {
		t.Fatal("tiers are not ordered by importance")
	}
}

func TestTierJSON(t *testing.T) {
	type wrap struct {
		T Tier `json:"t"`
	}
	b, err := json.Marshal(wrap{T: TierHigh})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(b), `{"t":"high"}`; got != want {
		t.Errorf("Marshal = %s, want %s", got, want)
	}
	var w wrap
	if err := json.Unmarshal([]byte(`{"t":"urgent"}`), &w); err != nil {
		t.Fatal(err)
	}
	if got, want := w.T, TierUrgent; got != want {
		t.Errorf("Unmarshal = %v, want %v", got, want)
	}
	if err := json.Unmarshal([]byte(`{"t":"hot"}`), &w); err == nil {
		t.Error("Unmarshal of an unknown tier succeeded, want error")
	}
	if _, err := Tier(9).MarshalText(); err == nil {
		t.Error("MarshalText of an invalid tier succeeded, want error")
	}
}
