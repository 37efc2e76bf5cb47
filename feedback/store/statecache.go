package store

import (
	"time"

	"github.com/hotlane/hotlane/feedback"
	"github.com/hotlane/hotlane/model"
)

// stateCache is what a PostgreSQL decision writer remembers between its
// batches: the state of the conversations it wrote recently and the tier
// alerts each team fired in the budget window. With it a batch is planned
// without reading the database first and committed in one round trip whose
// statements check, under their locks, that the database still holds what
// the cache says (see flushPostgresCached). A writer owns its cache; nothing
// else touches it.
//
// Conversations are kept in two generations: lookups promote an entry into
// the current one, and when the current one is full it becomes the old one
// and the previous old one is dropped, so the cache holds between size/2
// and size of the most recently used conversations.
type stateCache struct {
	half     int
	cur, old map[string]cachedConversation
	teams    map[string]*teamFired

	// staleRate is a moving average of the batches that found the cache
	// out of date; lockedFor counts down the batches committed on the
	// locking path without trying the cache (see useCache).
	staleRate float64
	lockedFor int
}

// When most batches find the cache out of date, as when several processes
// write the same conversations without routing each conversation to one of
// them, trying it first only adds a round trip: the writer then commits
// lockedBatches batches on the locking path, which keeps the cache up to
// date, before trying it again.
const (
	staleRateLimit = 0.5
	staleRateGain  = 1.0 / 16
	lockedBatches  = 256
)

// useCache reports whether the next batch should be planned from the cache.
func (c *stateCache) useCache() bool {
	if c.lockedFor > 0 {
		c.lockedFor--
		return false
	}
	return true
}

// observe records whether a batch planned from the cache found it out of
// date.
func (c *stateCache) observe(stale bool) {
	x := 0.0
	if stale {
		x = 1
	}
	c.staleRate += (x - c.staleRate) * staleRateGain
	if c.staleRate > staleRateLimit {
		c.staleRate, c.lockedFor = 0, lockedBatches
	}
}

// cachedConversation is a conversation as the database holds it after the
// writer's last batch that touched it.
type cachedConversation struct {
	tier      model.Tier
	alert     feedback.AlertState
	decisions int64 // the row's decision count: the version the batch checks
}

// teamFired is every tier alert the team fired after from (exclusive), as
// the database held them when they were loaded, plus those the writer fired
// since.
type teamFired struct {
	from time.Time
	at   []time.Time
}

// teamLoadMargin is how much further back than a batch needs the fired
// alerts of a team are loaded, so that the next batches, whose budget
// windows start a little earlier or later, find them cached.
const teamLoadMargin = 5 * time.Minute

func newStateCache(size int) *stateCache {
	half := max(size/2, 1)
	return &stateCache{
		half:  half,
		cur:   make(map[string]cachedConversation),
		old:   make(map[string]cachedConversation),
		teams: make(map[string]*teamFired),
	}
}

// conversation returns the cached state of id.
func (c *stateCache) conversation(id string) (cachedConversation, bool) {
	if e, ok := c.cur[id]; ok {
		return e, true
	}
	e, ok := c.old[id]
	if ok {
		delete(c.old, id)
		c.put(id, e)
	}
	return e, ok
}

func (c *stateCache) put(id string, e cachedConversation) {
	if _, ok := c.cur[id]; !ok && len(c.cur) >= c.half {
		c.old, c.cur = c.cur, make(map[string]cachedConversation, c.half)
	}
	delete(c.old, id)
	c.cur[id] = e
}

// forget drops what the cache holds about the conversations of plans and
// about teams.
func (c *stateCache) forget(plans []convPlan, teams []string) {
	for _, p := range plans {
		delete(c.cur, p.row.ID)
		delete(c.old, p.row.ID)
	}
	for _, t := range teams {
		delete(c.teams, t)
	}
}

// missingTeams returns the teams whose fired alerts after since are not all
// cached.
func (c *stateCache) missingTeams(teams []string, since time.Time) []string {
	var missing []string
	for _, t := range teams {
		if f := c.teams[t]; f == nil || since.Before(f.from) {
			missing = append(missing, t)
		}
	}
	return missing
}

// setTeam replaces the cached fired alerts of team.
func (c *stateCache) setTeam(team string, from time.Time, at []time.Time) {
	c.teams[team] = &teamFired{from: from, at: at}
}

// firedSince counts each team's cached fired alerts after since; every team
// must be cached (missingTeams is empty).
func (c *stateCache) firedSince(teams []string, since time.Time) (map[string]int, []int64) {
	fired := make(map[string]int, len(teams))
	counts := make([]int64, len(teams))
	for i, t := range teams {
		n := 0
		for _, at := range c.teams[t].at {
			if at.After(since) {
				n++
			}
		}
		fired[t], counts[i] = n, int64(n)
	}
	return fired, counts
}

// committed records a batch the database has committed: each conversation's
// new state (version is its decision count before the batch) and the tier
// alerts fired, which are added to the teams the cache holds. Fired alerts
// older than the oldest window the writer can still need are dropped.
func (c *stateCache) committed(plans []convPlan, version []int64, final map[string]feedback.AlertState, alerts []feedback.Alert) {
	for i, p := range plans {
		c.put(p.row.ID, cachedConversation{
			tier: parseTier(p.row.Tier), alert: final[p.row.ID], decisions: version[i] + p.row.Decisions,
		})
	}
	for _, a := range alerts {
		if a.Kind != feedback.AlertKindTier || a.Status != feedback.AlertStatusFired {
			continue
		}
		if f := c.teams[a.Team]; f != nil {
			f.at = append(f.at, a.CreatedAt)
		}
	}
}

// prune drops the fired alerts of every team that are at or before from;
// the team keeps only what a window starting after from can count.
func (c *stateCache) prune(from time.Time) {
	for _, f := range c.teams {
		if !f.from.Before(from) {
			continue
		}
		kept := f.at[:0]
		for _, at := range f.at {
			if at.After(from) {
				kept = append(kept, at)
			}
		}
		f.at, f.from = kept, from
	}
}
