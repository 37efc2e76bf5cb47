package store

import (
	"context"
	"errors"
	"testing"

	"github.com/hotlane/hotlane/feedback"
)

func TestPolicyDrafts(t *testing.T) {
	forEachEngine(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		doc := []byte(`{"base":-3,"rules":[],"thresholds":{}}`)
		if _, err := s.PublishPolicy(ctx, doc, "base: -3", "ana", ""); err != nil {
			t.Fatal(err)
		}
		d, err := s.CreateDraft(ctx, doc, "base: -3\n# draft", "ana", "try")
		if err != nil || d.Version != 2 || d.Status != feedback.PolicyDraft || d.Live || d.ActivatedAt != nil {
			t.Fatalf("CreateDraft = %+v, %v", d, err)
		}
		if p, v, err := s.LiveVersions(ctx); err != nil || p != 1 || v != 0 {
			t.Errorf("LiveVersions with a draft = %d %d %v, want ruleset 1", p, v, err)
		}
		if _, err := s.ActivatePolicy(ctx, 2); !errors.Is(err, feedback.ErrDraftNotPublished) || !errors.Is(err, feedback.ErrConflict) {
			t.Errorf("ActivatePolicy(draft) = %v", err)
		}
		if _, err := s.UpdateDraft(ctx, 1, doc, "x", "bo", ""); !errors.Is(err, feedback.ErrPublishedImmutable) {
			t.Errorf("UpdateDraft(published) = %v", err)
		}
		if _, err := s.UpdateDraft(ctx, 7, doc, "x", "bo", ""); !errors.Is(err, feedback.ErrNotFound) {
			t.Errorf("UpdateDraft(missing) = %v", err)
		}
		if _, err := s.UpdateDraft(ctx, 2, []byte("{"), "x", "bo", ""); !errors.Is(err, feedback.ErrInvalid) {
			t.Errorf("UpdateDraft(bad JSON) = %v", err)
		}
		u, err := s.UpdateDraft(ctx, 2, doc, "base: -2", "bo", "edited")
		if err != nil || u.Source != "base: -2" || u.Author != "bo" || u.Note != "edited" || u.Status != feedback.PolicyDraft {
			t.Fatalf("UpdateDraft = %+v, %v", u, err)
		}
		list, err := s.ListPolicies(ctx)
		if err != nil || len(list) != 2 || list[0].Status != feedback.PolicyDraft || list[1].Status != feedback.PolicyPublished {
			t.Fatalf("ListPolicies = %+v, %v", list, err)
		}
		p, err := s.PublishDraft(ctx, 2)
		if err != nil || !p.Live || p.Status != feedback.PolicyPublished || p.ActivatedAt == nil {
			t.Fatalf("PublishDraft = %+v, %v", p, err)
		}
		if live, err := s.LivePolicy(ctx); err != nil || live.Version != 2 || live.Source != "base: -2" {
			t.Errorf("LivePolicy = %+v, %v", live, err)
		}
		if _, err := s.PublishDraft(ctx, 2); !errors.Is(err, feedback.ErrPublishedImmutable) {
			t.Errorf("PublishDraft twice = %v", err)
		}
		if err := s.DeleteDraft(ctx, 2); !errors.Is(err, feedback.ErrPublishedImmutable) {
			t.Errorf("DeleteDraft(published) = %v", err)
		}
		d, _ = s.CreateDraft(ctx, doc, "", "ana", "")
		if err := s.DeleteDraft(ctx, d.Version); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Policy(ctx, d.Version); !errors.Is(err, feedback.ErrNotFound) {
			t.Errorf("deleted draft = %v", err)
		}
		if list, _ := s.ListPolicies(ctx); len(list) != 2 {
			t.Errorf("the deleted draft is listed: %d versions", len(list))
		}
		for _, err := range []error{s.DeleteDraft(ctx, d.Version), func() error { _, err := s.PublishDraft(ctx, d.Version); return err }(),
			func() error { _, err := s.ActivatePolicy(ctx, d.Version); return err }()} {
			if !errors.Is(err, feedback.ErrNotFound) {
				t.Errorf("a deleted draft = %v, want ErrNotFound", err)
			}
		}
		// Its number is never given to another document.
		if d2, err := s.CreateDraft(ctx, doc, "", "ana", ""); err != nil || d2.Version != d.Version+1 {
			t.Errorf("draft after a deleted one = %d, %v; want %d", d2.Version, err, d.Version+1)
		}
		if _, err := s.ActivatePolicy(ctx, 1); err != nil {
			t.Errorf("rollback to 1: %v", err)
		}
	})
}
