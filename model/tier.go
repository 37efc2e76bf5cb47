package model

import "fmt"

// Tier is a conversation's priority. The four named tiers are the same
// values as Chatwoot's conversation priority; the order of the constants is
// the order of importance, so tiers compare with < and >.
type Tier uint8

// The tiers, least important first. TierNone means "no tier", for example
// a rule without a tier floor or a route that matches any tier.
const (
	TierNone Tier = iota
	TierLow
	TierMedium
	TierHigh
	TierUrgent
)

var tierNames = [...]string{TierNone: "", TierLow: "low", TierMedium: "medium", TierHigh: "high", TierUrgent: "urgent"}

// ParseTier reads a tier name. The empty string is TierNone so optional
// fields such as tier_floor can be parsed without a special case.
func ParseTier(s string) (Tier, error) {
	for t, name := range tierNames {
		if name == s {
			return Tier(t), nil
		}
	}
	return TierNone, fmt.Errorf("parse tier: unknown tier %q (want urgent, high, medium or low)", s)
}

// String returns the tier's name, or "" for TierNone.
func (t Tier) String() string {
	if int(t) < len(tierNames) {
		return tierNames[t]
	}
	return fmt.Sprintf("Tier(%d)", uint8(t))
}

// MarshalText encodes the tier as its name, so tiers read naturally in JSON.
func (t Tier) MarshalText() ([]byte, error) {
	if int(t) >= len(tierNames) {
		return nil, fmt.Errorf("marshal tier: invalid tier %d", uint8(t))
	}
	return []byte(tierNames[t]), nil
}

// UnmarshalText decodes a tier name as ParseTier does.
func (t *Tier) UnmarshalText(text []byte) error {
	v, err := ParseTier(string(text))
	if err != nil {
		return err
	}
	*t = v
	return nil
}
