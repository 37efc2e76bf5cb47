package store

import (
	"context"
	"encoding/json"
	"errors"
	"testing"

	"github.com/hotlane/hotlane/feedback"
)

func TestAuditLog(t *testing.T) {
	forEachEngine(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		for i, e := range []feedback.AuditEntry{
			{Actor: feedback.UserActor("lead@example.com"), Action: feedback.AuditModelPromote, Subject: "model 2",
				Before: feedback.AuditJSON(map[string]int{"active": 1}), After: feedback.AuditJSON(map[string]int{"active": 2})},
			{Actor: feedback.CLIActor, Action: feedback.AuditUserCreate, Subject: "user ana@example.com", After: []byte(`{"role":"agent"}`)},
			{Actor: feedback.KeyActor("deploy"), Action: feedback.AuditRulesetPublish, Subject: "ruleset 3"},
		} {
			if err := s.Audit(ctx, e); err != nil {
				t.Fatalf("entry %d: %v", i, err)
			}
		}
		if err := s.Audit(ctx, feedback.AuditEntry{Action: "x"}); !errors.Is(err, feedback.ErrInvalid) {
			t.Errorf("no actor: %v", err)
		}
		list, err := s.AuditLog(ctx, feedback.AuditQuery{})
		if err != nil || len(list) != 3 {
			t.Fatalf("AuditLog = %d, %v", len(list), err)
		}
		var after map[string]int
		if err := json.Unmarshal(list[2].After, &after); err != nil || after["active"] != 2 {
			t.Errorf("after = %s, %v", list[2].After, err)
		}
		if list[0].Action != feedback.AuditRulesetPublish || list[0].Before != nil || list[2].Subject != "model 2" {
			t.Errorf("entries %+v", list)
		}
		older, err := s.AuditLog(ctx, feedback.AuditQuery{Before: list[1].ID, Limit: 5})
		if err != nil || len(older) != 1 || older[0].ID != list[2].ID {
			t.Errorf("page before %d = %+v, %v", list[1].ID, older, err)
		}
	})
}
