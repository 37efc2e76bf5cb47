package store

import (
	"context"
	"database/sql/driver"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"github.com/hotlane/hotlane/feedback"
)

type jobRunRow struct {
	ID         string `gorm:"primaryKey"`
	Job        string
	Trigger    string
	Status     string
	StartedAt  time.Time
	FinishedAt *time.Time
	Error      string
	Detail     string
}

func (jobRunRow) TableName() string { return "job_runs" }

func (r jobRunRow) toJobRun() feedback.JobRun {
	return feedback.JobRun{ID: r.ID, Job: r.Job, Trigger: r.Trigger, Status: r.Status, StartedAt: r.StartedAt.UTC(),
		FinishedAt: utcPtr(r.FinishedAt), Error: r.Error, Detail: []byte(r.Detail)}
}

// jobLease is how long a SQLite job lock lasts without renewal: a holder
// that dies frees it after this long.
const jobLease = time.Minute

// TryJobLock takes the job's lock without waiting, so that of several
// processes on one database exactly one runs the job: with PostgreSQL a
// session advisory lock, with SQLite a lease row in job_locks, renewed
// while held. ok is false when another holder has it. release must be
// called when ok.
func (s *Store) TryJobLock(ctx context.Context, job string) (release func(), ok bool, err error) {
	if s.dialect != DialectPostgres {
		return s.tryLease(ctx, job)
	}
	conn, err := s.sqlDB.Conn(ctx)
	if err != nil {
		return nil, false, fmt.Errorf("store: job lock %s: %w", job, translate(err))
	}
	// The key names the schema too: advisory locks are per database, and
	// two installations in two schemas of one database (as the tests are)
	// must not hold each other's jobs back.
	var key int64
	err = conn.QueryRowContext(ctx, `SELECT k, pg_try_advisory_lock(k)
FROM (SELECT hashtextextended('hotlane:job:' || current_schema() || ':' || $1, 0) AS k) AS lock`, job).Scan(&key, &ok)
	if err != nil {
		conn.Close()
		return nil, false, fmt.Errorf("store: job lock %s: %w", job, translate(err))
	}
	if !ok {
		conn.Close()
		return nil, false, nil
	}
	return func() {
		// A lock that cannot be released explicitly is released with its
		// session: closing a connection whose unlock failed discards it.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if _, err := conn.ExecContext(ctx, "SELECT pg_advisory_unlock($1)", key); err != nil {
			_ = conn.Raw(func(any) error { return driver.ErrBadConn }) // discards the connection
		}
		conn.Close()
	}, true, nil
}

// tryLease takes job's lease row when it is free or expired, and renews it
// every third of the lease until released.
func (s *Store) tryLease(ctx context.Context, job string) (func(), bool, error) {
	holder := uuid.Must(uuid.NewV7()).String()
	t := now()
	res := s.db.WithContext(ctx).Exec(`INSERT INTO job_locks (job, holder, expires_at) VALUES (?, ?, ?)
ON CONFLICT (job) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
WHERE job_locks.expires_at < ?`, job, holder, t.Add(jobLease), t)
	if res.Error != nil {
		return nil, false, fmt.Errorf("store: job lock %s: %w", job, translate(res.Error))
	}
	if res.RowsAffected == 0 {
		return nil, false, nil
	}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(jobLease / 3)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				err := s.db.Exec(`UPDATE job_locks SET expires_at = ? WHERE job = ? AND holder = ?`,
					now().Add(jobLease), job, holder).Error
				if err != nil {
					s.log.Warn("renewing a job lock failed", "job", job, "err", err)
				}
			}
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() {
			close(stop)
			<-done
			if err := s.db.Exec(`DELETE FROM job_locks WHERE job = ? AND holder = ?`, job, holder).Error; err != nil {
				s.log.Warn("releasing a job lock failed; it expires on its own", "job", job, "err", err)
			}
		})
	}, true, nil
}

// jobTickMemory is how long claimed ticks are kept: a tick older than this
// can no longer fire anywhere.
const jobTickMemory = 7 * 24 * time.Hour

// ClaimJobTick claims the scheduled tick of job for this process: it
// returns true for the first process to ask about that tick and false for
// every other, so that a schedule shared by several processes runs once per
// tick. Ticks older than a week are forgotten on the way.
func (s *Store) ClaimJobTick(ctx context.Context, job string, tick time.Time) (bool, error) {
	tick = tick.UTC()
	var claimed bool
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		res := tx.Exec(`INSERT INTO job_ticks (job, tick, claimed_at) VALUES (?, ?, ?) ON CONFLICT (job, tick) DO NOTHING`,
			job, tick, now())
		if res.Error != nil {
			return res.Error
		}
		claimed = res.RowsAffected == 1
		return tx.Exec(`DELETE FROM job_ticks WHERE job = ? AND tick < ?`, job, tick.Add(-jobTickMemory)).Error
	})
	if err != nil {
		return false, fmt.Errorf("store: claim job tick %s %s: %w", job, tick.Format(time.RFC3339), translate(err))
	}
	return claimed, nil
}

// StartJobRun records that a run of job starts now. Runs of the job still
// marked running are closed as failed first: the caller holds the job's
// lock, so they belong to processes that died mid-run.
func (s *Store) StartJobRun(ctx context.Context, job, trigger string) (feedback.JobRun, error) {
	t := now()
	row := jobRunRow{ID: uuid.Must(uuid.NewV7()).String(), Job: job, Trigger: trigger, Status: feedback.RunRunning, StartedAt: t, Detail: "{}"}
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := tx.Model(&jobRunRow{}).Where("job = ? AND status = ?", job, feedback.RunRunning).
			Updates(map[string]any{"status": feedback.RunFailed, "finished_at": t, "error": "interrupted: the process running it stopped"}).Error; err != nil {
			return err
		}
		return tx.Create(&row).Error
	})
	if err != nil {
		return feedback.JobRun{}, fmt.Errorf("store: start job run: %w", translate(err))
	}
	return row.toJobRun(), nil
}

// FinishJobRun records the end of a run: status RunSucceeded or RunFailed,
// the error message of a failure, and a JSON detail (nil for {}).
func (s *Store) FinishJobRun(ctx context.Context, id, status, errMsg string, detail []byte) (feedback.JobRun, error) {
	if status != feedback.RunSucceeded && status != feedback.RunFailed {
		return feedback.JobRun{}, fmt.Errorf("store: finish job run: %w: status %q", feedback.ErrInvalid, status)
	}
	if len(detail) == 0 {
		detail = []byte("{}")
	}
	if !json.Valid(detail) {
		return feedback.JobRun{}, fmt.Errorf("store: finish job run: %w: detail is not valid JSON", feedback.ErrInvalid)
	}
	var row jobRunRow
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		res := tx.Model(&jobRunRow{}).Where("id = ?", id).
			Updates(map[string]any{"status": status, "finished_at": now(), "error": errMsg, "detail": string(detail)})
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected == 0 {
			return gorm.ErrRecordNotFound
		}
		return tx.Where("id = ?", id).Take(&row).Error
	})
	if err != nil {
		return feedback.JobRun{}, fmt.Errorf("store: finish job run %s: %w", id, translate(err))
	}
	return row.toJobRun(), nil
}

// JobRuns returns the latest runs of job (every job when empty), newest
// first; limit 0 means 50.
func (s *Store) JobRuns(ctx context.Context, job string, limit int) ([]feedback.JobRun, error) {
	if limit <= 0 {
		limit = 50
	}
	q := s.db.WithContext(ctx).Order("started_at DESC, id DESC").Limit(limit)
	if job != "" {
		q = q.Where("job = ?", job)
	}
	var rows []jobRunRow
	if err := q.Find(&rows).Error; err != nil {
		return nil, fmt.Errorf("store: job runs: %w", translate(err))
	}
	out := make([]feedback.JobRun, len(rows))
	for i, r := range rows {
		out[i] = r.toJobRun()
	}
	return out, nil
}
