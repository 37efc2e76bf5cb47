package feedback

import (
	"context"
	"database/sql/driver"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"sync"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"
)

// Job run statuses.
const (
	RunRunning   = "running"
	RunSucceeded = "succeeded"
	RunFailed    = "failed"
)

// ErrLocked is returned by TryJobLock's callers when another process holds
// the job's lock.
var ErrLocked = errors.New("another run of this job holds its lock")

// JobRun is one recorded run of a background job.
type JobRun struct {
	ID         string
	Job        string
	Trigger    string // schedule, api or cli
	Status     string // RunRunning, RunSucceeded or RunFailed
	StartedAt  time.Time
	FinishedAt *time.Time
	Error      string
	Detail     []byte // JSON
}

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

func (r jobRunRow) toJobRun() JobRun {
	return JobRun{ID: r.ID, Job: r.Job, Trigger: r.Trigger, Status: r.Status, StartedAt: r.StartedAt.UTC(),
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
		return nil, false, fmt.Errorf("feedback: job lock %s: %w", job, translate(err))
	}
	key := advisoryKey(job)
	if err := conn.QueryRowContext(ctx, "SELECT pg_try_advisory_lock($1)", key).Scan(&ok); err != nil {
		conn.Close()
		return nil, false, fmt.Errorf("feedback: job lock %s: %w", job, translate(err))
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
		return nil, false, fmt.Errorf("feedback: job lock %s: %w", job, translate(res.Error))
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

// advisoryKey maps a job name to the 64-bit key of its advisory lock.
func advisoryKey(job string) int64 {
	h := fnv.New64a()
	h.Write([]byte("hotlane:job:" + job))
	return int64(h.Sum64())
}

// StartJobRun records that a run of job starts now. Runs of the job still
// marked running are closed as failed first: the caller holds the job's
// lock, so they belong to processes that died mid-run.
func (s *Store) StartJobRun(ctx context.Context, job, trigger string) (JobRun, error) {
	t := now()
	row := jobRunRow{ID: uuid.Must(uuid.NewV7()).String(), Job: job, Trigger: trigger, Status: RunRunning, StartedAt: t, Detail: "{}"}
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := tx.Model(&jobRunRow{}).Where("job = ? AND status = ?", job, RunRunning).
			Updates(map[string]any{"status": RunFailed, "finished_at": t, "error": "interrupted: the process running it stopped"}).Error; err != nil {
			return err
		}
		return tx.Create(&row).Error
	})
	if err != nil {
		return JobRun{}, fmt.Errorf("feedback: start job run: %w", translate(err))
	}
	return row.toJobRun(), nil
}

// FinishJobRun records the end of a run: status RunSucceeded or RunFailed,
// the error message of a failure, and a JSON detail (nil for {}).
func (s *Store) FinishJobRun(ctx context.Context, id, status, errMsg string, detail []byte) (JobRun, error) {
	if status != RunSucceeded && status != RunFailed {
		return JobRun{}, fmt.Errorf("feedback: finish job run: %w: status %q", ErrInvalid, status)
	}
	if len(detail) == 0 {
		detail = []byte("{}")
	}
	if !json.Valid(detail) {
		return JobRun{}, fmt.Errorf("feedback: finish job run: %w: detail is not valid JSON", ErrInvalid)
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
		return JobRun{}, fmt.Errorf("feedback: finish job run %s: %w", id, translate(err))
	}
	return row.toJobRun(), nil
}

// JobRuns returns the latest runs of job (every job when empty), newest
// first; limit 0 means 50.
func (s *Store) JobRuns(ctx context.Context, job string, limit int) ([]JobRun, error) {
	if limit <= 0 {
		limit = 50
	}
	q := s.db.WithContext(ctx).Order("started_at DESC, id DESC").Limit(limit)
	if job != "" {
		q = q.Where("job = ?", job)
	}
	var rows []jobRunRow
	if err := q.Find(&rows).Error; err != nil {
		return nil, fmt.Errorf("feedback: job runs: %w", translate(err))
	}
	out := make([]JobRun, len(rows))
	for i, r := range rows {
		out[i] = r.toJobRun()
	}
	return out, nil
}

// StoredReport is one stored tuning report; Body is the report as JSON.
type StoredReport struct {
	ID             string
	RunID          string
	AsOf           time.Time
	CandidateModel int // 0 when the run trained no candidate
	Promoted       bool
	AppliedPolicy  int // 0 until its proposal is applied
	Body           []byte
	CreatedAt      time.Time
}

type reportRow struct {
	ID             string `gorm:"primaryKey"`
	RunID          string
	AsOf           time.Time
	CandidateModel *int
	Promoted       bool
	AppliedPolicy  *int
	Body           string
	CreatedAt      time.Time
}

func (reportRow) TableName() string { return "reports" }

func (r reportRow) toReport() StoredReport {
	out := StoredReport{ID: r.ID, RunID: r.RunID, AsOf: r.AsOf.UTC(), Promoted: r.Promoted, Body: []byte(r.Body), CreatedAt: r.CreatedAt.UTC()}
	if r.CandidateModel != nil {
		out.CandidateModel = *r.CandidateModel
	}
	if r.AppliedPolicy != nil {
		out.AppliedPolicy = *r.AppliedPolicy
	}
	return out
}

// SaveReport stores a tuning report; an empty ID gets a new one, and the
// stored report is returned.
func (s *Store) SaveReport(ctx context.Context, r StoredReport) (StoredReport, error) {
	if !json.Valid(r.Body) {
		return StoredReport{}, fmt.Errorf("feedback: save report: %w: body is not valid JSON", ErrInvalid)
	}
	if r.ID == "" {
		r.ID = uuid.Must(uuid.NewV7()).String()
	}
	row := reportRow{ID: r.ID, RunID: r.RunID, AsOf: normTime(r.AsOf), Promoted: r.Promoted, Body: string(r.Body), CreatedAt: now()}
	if r.CandidateModel > 0 {
		v := r.CandidateModel
		row.CandidateModel = &v
	}
	if err := s.db.WithContext(ctx).Create(&row).Error; err != nil {
		return StoredReport{}, fmt.Errorf("feedback: save report: %w", translate(err))
	}
	return row.toReport(), nil
}

// Report returns one report; ErrNotFound when it does not exist.
func (s *Store) Report(ctx context.Context, id string) (StoredReport, error) {
	var row reportRow
	if err := s.db.WithContext(ctx).Where("id = ?", id).Take(&row).Error; err != nil {
		return StoredReport{}, fmt.Errorf("feedback: report %s: %w", id, translate(err))
	}
	return row.toReport(), nil
}

// LatestReport returns the newest report; ErrNotFound before any.
func (s *Store) LatestReport(ctx context.Context) (StoredReport, error) {
	var row reportRow
	if err := s.db.WithContext(ctx).Order("created_at DESC, id DESC").Take(&row).Error; err != nil {
		return StoredReport{}, fmt.Errorf("feedback: latest report: %w", translate(err))
	}
	return row.toReport(), nil
}

// ListReports returns the newest reports without their bodies; limit 0
// means 50.
func (s *Store) ListReports(ctx context.Context, limit int) ([]StoredReport, error) {
	if limit <= 0 {
		limit = 50
	}
	var rows []reportRow
	err := s.db.WithContext(ctx).Select("id, run_id, as_of, candidate_model, promoted, applied_policy, '{}' AS body, created_at").
		Order("created_at DESC, id DESC").Limit(limit).Find(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("feedback: list reports: %w", translate(err))
	}
	out := make([]StoredReport, len(rows))
	for i, r := range rows {
		out[i] = r.toReport()
	}
	return out, nil
}

// MarkReportApplied records the policy version a report's proposal was
// published as.
func (s *Store) MarkReportApplied(ctx context.Context, id string, policyVersion int) error {
	res := s.db.WithContext(ctx).Model(&reportRow{}).Where("id = ?", id).Update("applied_policy", policyVersion)
	if res.Error != nil {
		return fmt.Errorf("feedback: mark report %s applied: %w", id, translate(res.Error))
	}
	if res.RowsAffected == 0 {
		return fmt.Errorf("feedback: mark report %s applied: %w", id, ErrNotFound)
	}
	return nil
}
