package server

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/hotlane/hotlane/feedback"
	"github.com/hotlane/hotlane/model"
	"github.com/hotlane/hotlane/templates"
)

// The leads' pages: the weekly tuning reports and the model registry.

// Below these a holdout is too small to judge a model by, and a report
// says so instead of claiming anything.
const (
	minJudgeHoldout   = 200
	minJudgePositives = 20
)

type reportRowView struct {
	URL, Ago, Candidate, Promoted, Applied string
	AsOf                                   time.Time
}

type reportsPage struct {
	pageBase
	Verdict string
	Rows    []reportRowView
}

func (s *Server) handleReportsPage(c *gin.Context) {
	list, err := s.tuning.ListReports(c.Request.Context(), 52)
	if err != nil {
		s.pageError(c, err)
		return
	}
	p := reportsPage{pageBase: s.base(c, "Reports", "reports")}
	now := s.now()
	for _, r := range list {
		row := reportRowView{URL: "/reports/" + url.PathEscape(r.ID), Ago: templates.Ago(now, r.CreatedAt), AsOf: r.AsOf,
			Candidate: "none trained", Promoted: "no", Applied: "not applied"}
		if r.CandidateModel != 0 {
			row.Candidate = "model " + strconv.Itoa(r.CandidateModel)
		}
		if r.Promoted {
			row.Promoted = "yes"
		}
		if r.AppliedPolicy != 0 {
			row.Applied = "applied as ruleset " + strconv.Itoa(r.AppliedPolicy)
		}
		p.Rows = append(p.Rows, row)
	}
	switch {
	case len(list) == 0:
		p.Verdict = "No tuning report yet."
	default:
		p.Verdict = fmt.Sprintf("%s; the latest is from %s.", plural(len(list), "report", "reports"), templates.Ago(now, list[0].CreatedAt))
	}
	s.render(c, http.StatusOK, "reports", p)
}

type metricView struct {
	Name, Definition, Live, Candidate, Delta, Class string
}

type ruleView struct {
	Name, Precision, HandSet, Live, Tuned, Verdict, Why string
	Hits, Labelled                                      int
}

type thresholdView struct {
	Channel, Urgent, High, Medium string
	// The expected precision, recall and alerts a week of each tier.
	UrgentDetail, HighDetail, MediumDetail string
	Rows                                   int
}

// tierDetail says what a proposed tier is expected to give.
func tierDetail(p model.ThresholdProposal, tier model.Tier) string {
	for _, tp := range p.Tiers {
		if tp.Tier != tier {
			continue
		}
		d := fmt.Sprintf("precision %.2f (target %.2f), recall %.2f", tp.Precision, tp.Target, tp.Recall)
		if tp.AlertsPerWeek > 0 {
			d += fmt.Sprintf(", %.0f a week", tp.AlertsPerWeek)
		}
		if tp.Note != "" {
			d += "; " + tp.Note
		}
		return d
	}
	return ""
}

type kpiWeekView struct {
	Week, Precision, Response, Conversion, ValueConversion, Accuracy, Fired string
}

type calibrationRowView struct {
	Bin, LivePredicted, LiveObserved, LiveCount, CandPredicted, CandObserved, CandCount string
}

type prRowView struct {
	Recall, Live, Candidate string
}

type reportPage struct {
	pageBase
	ID, URL, Verdict, Warning, Flash, HoldoutText, LiveName, CandidateName, PromotionText, ApplyText string
	AsOf                                                                                             time.Time
	CandidateVersion                                                                                 int
	CanPromote, CanApply, TooLittle                                                                  bool
	Metrics                                                                                          []metricView
	Rules                                                                                            []ruleView
	Thresholds                                                                                       []thresholdView
	KPIs                                                                                             []kpiWeekView
	Notes                                                                                            []string
	PRChart, CalibrationChart, AlertsChart                                                           template.HTML
	PRRows                                                                                           []prRowView
	CalibrationRows                                                                                  []calibrationRowView
	KPICharts                                                                                        []kpiChart
	// ContribText says which signals move the candidate's scores most;
	// Contribs are their contribution charts.
	ContribText string
	Contribs    []contribView
}

// contribView is one signal's contribution chart with the numbers behind
// it.
type contribView struct {
	ID, Signal, Caption, ShareHead string
	SVG                            template.HTML
	HasShare                       bool
	Rows                           []contribRowView
}

type contribRowView struct {
	Value, Contribution, Share string
}

func fmtPtr(f *float64, format string) string {
	if f == nil {
		return "–"
	}
	return fmt.Sprintf(format, *f)
}

func (s *Server) handleReportPage(c *gin.Context) {
	ctx := c.Request.Context()
	sr, err := s.storedReport(ctx, c.Param("id"))
	if err != nil {
		s.pageError(c, err)
		return
	}
	var r feedback.Report
	if err := json.Unmarshal(sr.Body, &r); err != nil {
		s.pageError(c, fmt.Errorf("report %s: %w", sr.ID, err))
		return
	}
	p := reportPage{pageBase: s.base(c, "Report", "reports"), ID: sr.ID, URL: "/reports/" + url.PathEscape(sr.ID), AsOf: sr.AsOf,
		CandidateVersion: r.CandidateModelVersion, Notes: r.Notes, LiveName: "rules only", CandidateName: "none"}
	switch c.Query("done") {
	case "promoted":
		p.Flash = fmt.Sprintf("Model %d is live. The models page rolls it back.", r.CandidateModelVersion)
	case "applied":
		p.Flash = "The proposal is live as a new ruleset version."
	}
	if r.LiveModelVersion != 0 {
		p.LiveName = "model " + strconv.Itoa(r.LiveModelVersion)
	}
	if r.CandidateModelVersion != 0 {
		p.CandidateName = "model " + strconv.Itoa(r.CandidateModelVersion)
	}
	d := r.Data
	p.HoldoutText = fmt.Sprintf("%d labelled conversations of which %d positive (trained on %d)", d.Holdout, d.HoldoutPositives, d.Train)
	small := d.Holdout < minJudgeHoldout || d.HoldoutPositives < minJudgePositives
	p.TooLittle = !r.Judged()
	switch {
	case p.TooLittle:
		p.Warning = "Too little data" + strings.TrimPrefix(r.Evidence.Reason, model.TooLittleData) +
			". The models were not measured, no thresholds were proposed and nothing was promoted."
	case small:
		p.Warning = fmt.Sprintf("The holdout is too small to judge the models: %d conversations and %d positives, where at least %d and %d are needed. Read the numbers below as a hint, not a verdict.",
			d.Holdout, d.HoldoutPositives, minJudgeHoldout, minJudgePositives)
	}
	if r.Live != nil && r.Candidate != nil {
		type m struct {
			name, def      string
			live, cand     float64
			higherIsBetter bool
		}
		rows := []m{
			{"ROC-AUC", "how well the scores rank converting chats above the others; 0.5 is chance, 1 perfect", r.Live.ROCAUC, r.Candidate.ROCAUC, true},
			{"PR-AUC", "precision averaged over every recall; what matters when few chats convert", r.Live.PRAUC, r.Candidate.PRAUC, true},
			{"Log loss", "how far the scores are from what happened; lower is better", r.Live.LogLoss, r.Candidate.LogLoss, false},
			{"Calibration error (ECE)", "how far a score of 0.3 is from 30 % of such chats converting; lower is better", r.Live.ECE, r.Candidate.ECE, false},
		}
		for _, x := range rows {
			delta := x.cand - x.live
			mv := metricView{Name: x.name, Definition: x.def, Live: fmt.Sprintf("%.3f", x.live), Candidate: fmt.Sprintf("%.3f", x.cand),
				Delta: fmt.Sprintf("%+.3f", delta)}
			if !small && math.Abs(delta) >= 0.001 {
				if (delta > 0) == x.higherIsBetter {
					mv.Class = "better"
				} else {
					mv.Class = "worse"
				}
			}
			p.Metrics = append(p.Metrics, mv)
		}
		p.Metrics = append(p.Metrics, metricView{Name: "Alert precision", Definition: "of the holdout chats that fired a tier alert, the share that converted or were labelled useful",
			Live: fmtPtr(r.Live.AlertTruePositiveRate, "%.3f"), Candidate: fmtPtr(r.Candidate.AlertTruePositiveRate, "%.3f")})
		switch {
		case small:
			p.Verdict = fmt.Sprintf("Candidate %s against %s: the holdout is too small to tell.", p.CandidateName, p.LiveName)
		case r.Candidate.PRAUC > r.Live.PRAUC:
			p.Verdict = fmt.Sprintf("%s ranks converting chats better than %s: PR-AUC %.3f against %.3f.", titleCase(p.CandidateName), p.LiveName, r.Candidate.PRAUC, r.Live.PRAUC)
		default:
			p.Verdict = fmt.Sprintf("%s does not beat %s: PR-AUC %.3f against %.3f.", titleCase(p.CandidateName), p.LiveName, r.Candidate.PRAUC, r.Live.PRAUC)
		}
	} else if p.TooLittle && r.CandidateModelVersion != 0 {
		p.Verdict = fmt.Sprintf("Too little data to judge %s against %s.", p.CandidateName, p.LiveName)
	} else if p.TooLittle {
		p.Verdict = "Too little data: this run trained no candidate."
	} else {
		p.Verdict = "This run trained no candidate: " + r.Promotion.Reason
	}
	p.PromotionText = r.Promotion.Reason
	if r.Promotion.Promoted {
		p.PromotionText = "Promoted: " + r.Promotion.Reason
	}
	if r.CandidateModelVersion != 0 && !r.Promotion.Promoted && sessionOf(c).User.Role.AtLeast(feedback.RoleLead) {
		if mv, err := s.models.Model(ctx, r.CandidateModelVersion); err == nil && mv.Status != feedback.ModelActive {
			p.CanPromote = true
		}
	}
	for _, rr := range r.Rules {
		rv := ruleView{Name: rr.Name, Hits: rr.Hits, Labelled: rr.LabelledHits, Precision: fmtPtr(rr.Precision, "%.2f"),
			HandSet: templates.Signed(rr.HandSetWeight), Live: templates.Signed(rr.LiveWeight), Tuned: "–", Verdict: rr.Verdict, Why: rr.Why}
		if rr.TunedWeight != nil {
			rv.Tuned = templates.Signed(*rr.TunedWeight)
		}
		p.Rules = append(p.Rules, rv)
	}
	changed := 0
	for _, t := range r.Thresholds {
		cell := func(cur, prop float64) string {
			if cur == prop {
				return fmt.Sprintf("%.2f (kept)", cur)
			}
			changed++
			return fmt.Sprintf("%.2f → %.2f", cur, prop)
		}
		p.Thresholds = append(p.Thresholds, thresholdView{Channel: t.Channel, Rows: t.Rows,
			Urgent: cell(t.Current.Urgent, t.Proposal.Thresholds.Urgent), High: cell(t.Current.High, t.Proposal.Thresholds.High),
			Medium:       cell(t.Current.Medium, t.Proposal.Thresholds.Medium),
			UrgentDetail: tierDetail(t.Proposal, model.TierUrgent), HighDetail: tierDetail(t.Proposal, model.TierHigh),
			MediumDetail: tierDetail(t.Proposal, model.TierMedium)})
	}
	switch {
	case sr.AppliedPolicy != 0:
		p.ApplyText = fmt.Sprintf("This proposal was applied as ruleset version %d.", sr.AppliedPolicy)
	case changed == 0:
		p.ApplyText = "Nothing to apply: every threshold is kept."
	default:
		p.ApplyText = fmt.Sprintf("%d threshold changes shown above", changed)
		if r.CandidateModelVersion != 0 {
			p.ApplyText += fmt.Sprintf(" (they are tuned for model %d's scores)", r.CandidateModelVersion)
		}
		p.CanApply = sessionOf(c).User.Role.AtLeast(feedback.RoleLead)
	}
	p.modelCharts(&r)
	p.contribCharts(&r)
	p.kpiCharts(r.KPIs)
	for _, k := range r.KPIs {
		kv := kpiWeekView{Week: k.Week, Precision: "–", Response: "–", Conversion: "–", Accuracy: "–", Fired: strconv.Itoa(k.FiredAlerts)}
		if k.TruePositiveRate != nil {
			kv.Precision = fmt.Sprintf("%.2f, of %d", *k.TruePositiveRate, k.LabelledAlerts)
		}
		if k.ResponseMedianSeconds != nil {
			kv.Response = "median " + templates.Duration(time.Duration(*k.ResponseMedianSeconds*float64(time.Second)))
		}
		if k.Conversion != nil {
			kv.Conversion = fmt.Sprintf("%.2f, of %d", *k.Conversion, k.TopConversations)
		}
		if k.Accuracy != nil {
			kv.Accuracy = fmt.Sprintf("%.2f, of %d", *k.Accuracy, k.Reviewed)
		}
		p.KPIs = append(p.KPIs, kv)
	}
	s.render(c, http.StatusOK, "report", p)
}

// contribCharts draws the candidate's contribution curves, each with a
// caption that reads its shape in words and the numbers in a table.
func (p *reportPage) contribCharts(r *feedback.Report) {
	if len(r.Contributions) == 0 {
		return
	}
	where := "the holdout"
	if r.Data.Holdout == 0 {
		where = "the window"
	}
	names := make([]string, 0, 3)
	for i, c := range r.Contributions {
		if i < 3 {
			names = append(names, c.Signal)
		}
		v := contribView{ID: "contrib-" + strconv.Itoa(i+1), Signal: c.Signal, SVG: contribChart(c)}
		var hiLabel, loLabel string
		hiV, loV := math.Inf(-1), math.Inf(1)
		note := func(label string, x float64) {
			if x > hiV {
				hiV, hiLabel = x, label
			}
			if x < loV {
				loV, loLabel = x, label
			}
		}
		share := func(s *float64) string {
			switch {
			case s == nil:
				return "–"
			case *s > 0 && *s < 0.005:
				return "under 1 %"
			}
			return fmt.Sprintf("%.0f %%", *s*100)
		}
		switch c.Kind {
		case model.ContribNumber:
			for k, pt := range c.Grid {
				note(fmtNum(pt.Value), pt.Contribution)
				// Every fourth point, and the last: enough to read the
				// chart by, short enough to scan.
				if k%4 == 0 || k == len(c.Grid)-1 {
					v.Rows = append(v.Rows, contribRowView{Value: fmtNum(pt.Value), Contribution: signedContrib(pt.Contribution)})
				}
			}
		default:
			v.HasShare, v.ShareHead = true, "Share of "+where
			bars := slices.Clone(c.Bars)
			if c.Kind == model.ContribCategory {
				// As the chart: highest first, the other bucket last.
				slices.SortStableFunc(bars, func(a, b model.ContribBar) int {
					if a.Other != b.Other {
						return cmp.Compare(b2i(a.Other), b2i(b.Other))
					}
					return cmp.Compare(b.Contribution, a.Contribution)
				})
			}
			for _, b := range bars {
				note(contribLabel(b), b.Contribution)
				v.Rows = append(v.Rows, contribRowView{Value: contribLabel(b), Contribution: signedContrib(b.Contribution), Share: share(b.Share)})
			}
		}
		if m := c.Missing; m != nil {
			note("missing", m.Contribution)
			v.Rows = append(v.Rows, contribRowView{Value: "missing", Contribution: signedContrib(m.Contribution), Share: share(m.Share)})
		}
		switch c.Kind {
		case model.ContribNumber:
			v.Caption = fmt.Sprintf("From %s to %s, the range the model reads (values beyond count as the ends). Highest at %s (%s), lowest at %s (%s).",
				fmtNum(c.Grid[0].Value), fmtNum(c.Grid[len(c.Grid)-1].Value), hiLabel, signedContrib(hiV), loLabel, signedContrib(loV))
			if m := c.Missing; m != nil {
				v.Caption += fmt.Sprintf(" Missing: %s", signedContrib(m.Contribution))
				if m.Share != nil {
					v.Caption += fmt.Sprintf(", %s of %s", share(m.Share), where)
				}
				v.Caption += "."
			}
		default:
			v.Caption = fmt.Sprintf("Highest for %s (%s), lowest for %s (%s).", hiLabel, signedContrib(hiV), loLabel, signedContrib(loV))
		}
		v.Caption += fmt.Sprintf(" Moves a chat's logit by %.2f on average across %s.", c.Spread, where)
		p.Contribs = append(p.Contribs, v)
	}
	p.ContribText = fmt.Sprintf("The candidate's scores move most with %s.", joinAnd(names))
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// joinAnd joins words as a sentence does: "a", "a and b", "a, b and c".
func joinAnd(words []string) string {
	if len(words) < 2 {
		return strings.Join(words, "")
	}
	return strings.Join(words[:len(words)-1], ", ") + " and " + words[len(words)-1]
}

func titleCase(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// handleApplyReportForm applies a report's threshold proposal as the
// signed-in lead.
func (s *Server) handleApplyReportForm(c *gin.Context) {
	id := c.Param("id")
	if s.tuner == nil {
		s.pageError(c, errNoTuning)
		return
	}
	ctx := c.Request.Context()
	_, err := s.tuner.ApplyReport(ctx, id, sessionOf(c).User.Email)
	if errors.Is(err, feedback.ErrConflict) {
		s.render(c, http.StatusConflict, "error", errorPage{pageBase: s.base(c, "Not applied", "reports"),
			Heading: "The proposal was not applied", Message: err.Error()})
		return
	}
	if err != nil {
		s.pageError(c, err)
		return
	}
	s.changed(c, feedback.AuditReportApply, "report "+id, nil)
	c.Redirect(http.StatusSeeOther, "/reports/"+url.PathEscape(id)+"?done=applied")
}

type modelRowView struct {
	Version                                        int
	Status, Trainer, Window, PRAUC, Ago, ReportURL string
	ROCAUC, ECE, Holdout                           string
	CreatedAt                                      time.Time
	CanPromote, SmallHoldout                       bool
}

type modelsPage struct {
	pageBase
	Verdict, Flash, RollbackTo string
	Active                     int
	Rows                       []modelRowView
}

func (s *Server) handleModelsPage(c *gin.Context) {
	list, err := s.models.ListModels(c.Request.Context())
	if err != nil {
		s.pageError(c, err)
		return
	}
	p := modelsPage{pageBase: s.base(c, "Models", "models"), RollbackTo: "the model active before it (the rules alone if there was none)"}
	switch c.Query("done") {
	case "promoted":
		p.Flash = "The model is live."
	case "rolledback":
		p.Flash = "Rolled back."
	}
	now := s.now()
	for _, m := range list {
		row := modelRowView{Version: m.Version, Status: m.Status, Trainer: m.Trainer, PRAUC: "–", ROCAUC: "–", ECE: "–", Holdout: "–", CreatedAt: m.CreatedAt,
			Ago: templates.Ago(now, m.CreatedAt), CanPromote: m.Status != feedback.ModelActive}
		if row.Trainer == "" {
			row.Trainer = "stored by hand"
		}
		if m.WindowStart != nil && m.WindowEnd != nil {
			row.Window = m.WindowStart.Format("2006-01-02") + " to " + m.WindowEnd.Format("2006-01-02")
		}
		var metrics struct {
			PRAUC     *float64 `json:"pr_auc"`
			ROCAUC    *float64 `json:"roc_auc"`
			ECE       *float64 `json:"ece"`
			Rows      int      `json:"rows"`
			Positives int      `json:"positives"`
		}
		if json.Unmarshal(m.Metrics, &metrics) == nil && metrics.PRAUC != nil {
			row.PRAUC, row.ROCAUC, row.ECE = fmtPtr(metrics.PRAUC, "%.3f"), fmtPtr(metrics.ROCAUC, "%.3f"), fmtPtr(metrics.ECE, "%.3f")
			row.Holdout = fmt.Sprintf("%d chats, %d positive", metrics.Rows, metrics.Positives)
		}
		if m.ReportID != "" {
			row.ReportURL = "/reports/" + url.PathEscape(m.ReportID)
		}
		if row.CanPromote {
			if row.SmallHoldout, err = s.smallHoldout(c, m); err != nil {
				s.pageError(c, err)
				return
			}
		}
		if m.Status == feedback.ModelActive {
			p.Active = m.Version
		}
		p.Rows = append(p.Rows, row)
	}
	switch {
	case len(list) == 0:
		p.Verdict = "No model yet: the rules alone score."
	case p.Active != 0:
		p.Verdict = fmt.Sprintf("Model %d scores every conversation; %s in the registry.", p.Active, plural(len(list), "version", "versions"))
	default:
		p.Verdict = "No model is active: the rules alone score."
	}
	s.render(c, http.StatusOK, "models", p)
}

// smallHoldout reports whether the report that judged model m did so on a
// holdout too small to judge by; false for a model without a report.
func (s *Server) smallHoldout(c *gin.Context, m feedback.ModelVersion) (bool, error) {
	if m.ReportID == "" {
		return false, nil
	}
	sr, err := s.tuning.Report(c.Request.Context(), m.ReportID)
	if errors.Is(err, feedback.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	var r feedback.Report
	if err := json.Unmarshal(sr.Body, &r); err != nil {
		return false, err
	}
	return !r.Judged() || r.Data.Holdout < minJudgeHoldout || r.Data.HoldoutPositives < minJudgePositives, nil
}

// handlePromoteModelForm makes a model live as the signed-in lead. A model
// judged on a holdout too small to judge by needs the lead to confirm it.
func (s *Server) handlePromoteModelForm(c *gin.Context) {
	v, err := versionParam(c)
	if err != nil {
		s.pageError(c, feedback.ErrNotFound)
		return
	}
	ctx := c.Request.Context()
	m, err := s.models.Model(ctx, v)
	if err != nil {
		s.pageError(c, err)
		return
	}
	small, err := s.smallHoldout(c, m)
	if err != nil {
		s.pageError(c, err)
		return
	}
	if small && c.PostForm("confirm") != "small-holdout" {
		s.render(c, http.StatusUnprocessableEntity, "error", errorPage{pageBase: s.base(c, "Confirm the promotion", "models"),
			Heading: "Confirm the promotion",
			Message: fmt.Sprintf("Model %d was judged on a holdout too small to judge by (under %d conversations or %d positives). Tick the confirmation beside the Promote button to promote it anyway.", v, minJudgeHoldout, minJudgePositives)})
		return
	}
	if _, err := s.models.ActivateModel(ctx, v); err != nil {
		s.pageError(c, err)
		return
	}
	detail := map[string]any{}
	if small {
		detail["confirmed_small_holdout"] = true
	}
	s.changed(c, feedback.AuditModelPromote, fmt.Sprintf("model %d", v), detail)
	back := localPath(c.PostForm("return"))
	if strings.HasPrefix(back, "/reports/") {
		c.Redirect(http.StatusSeeOther, back+"?done=promoted")
		return
	}
	c.Redirect(http.StatusSeeOther, "/models?done=promoted")
}

// handleRollbackModelForm rolls the active model back as the signed-in
// lead.
func (s *Server) handleRollbackModelForm(c *gin.Context) {
	ctx := c.Request.Context()
	if _, err := s.tuning.RollbackModel(ctx); err != nil {
		if errors.Is(err, feedback.ErrNotFound) {
			s.render(c, http.StatusConflict, "error", errorPage{pageBase: s.base(c, "Nothing to roll back", "models"),
				Heading: "Nothing to roll back", Message: "No model is active: scoring already uses the rules alone."})
			return
		}
		s.pageError(c, err)
		return
	}
	s.changed(c, feedback.AuditModelRollback, "model", nil)
	c.Redirect(http.StatusSeeOther, "/models?done=rolledback")
}

// modelCharts draws the live and candidate models on the holdout: the
// precision-recall curves on one chart, the calibration plots on another,
// with the numbers behind both.
func (p *reportPage) modelCharts(r *feedback.Report) {
	type side struct {
		name  string
		color string
		dash  bool
		ev    *model.ModelEval
	}
	sides := []side{{"live, " + p.LiveName, colorLive, true, r.Live}, {"candidate, " + p.CandidateName, colorCandidate, false, r.Candidate}}
	var pr, cal []chartSeries
	for _, sd := range sides {
		if sd.ev == nil {
			continue
		}
		if len(sd.ev.PRCurve) > 0 {
			cs := chartSeries{Name: sd.name, Color: sd.color, Dash: sd.dash}
			for _, pt := range sd.ev.PRCurve {
				cs.X, cs.Y = append(cs.X, pt.Recall), append(cs.Y, pt.Precision)
				cs.Tips = append(cs.Tips, fmt.Sprintf("recall %.2f, precision %.2f at score %.3f", pt.Recall, pt.Precision, pt.Threshold))
			}
			pr = append(pr, cs)
		}
		cs := chartSeries{Name: sd.name, Color: sd.color, Dash: sd.dash}
		for _, b := range sd.ev.Calibration {
			if b.Count == 0 {
				continue
			}
			cs.X, cs.Y = append(cs.X, b.MeanPredicted), append(cs.Y, b.ObservedRate)
			cs.Tips = append(cs.Tips, fmt.Sprintf("scores %.1f-%.1f: predicted %.2f, observed %.2f, %d conversations", b.Lo, b.Hi, b.MeanPredicted, b.ObservedRate, b.Count))
		}
		if len(cs.X) > 0 {
			cal = append(cal, cs)
		}
	}
	if len(pr) > 0 {
		p.PRChart = xyChart("Precision against recall on the holdout", "recall (share of positive chats caught)", "precision (share useful)", pr, false)
		for _, rec := range []float64{0.1, 0.25, 0.5, 0.75, 0.9} {
			row := prRowView{Recall: fmt.Sprintf("%.2f", rec), Live: "–", Candidate: "–"}
			if r.Live != nil {
				row.Live = precisionAt(r.Live.PRCurve, rec)
			}
			if r.Candidate != nil {
				row.Candidate = precisionAt(r.Candidate.PRCurve, rec)
			}
			p.PRRows = append(p.PRRows, row)
		}
	}
	if len(cal) > 0 {
		p.CalibrationChart = xyChart("Observed conversion against predicted score on the holdout", "mean predicted score", "observed share positive", cal, true)
		var live, cand []model.CalibrationBin
		if r.Live != nil {
			live = r.Live.Calibration
		}
		if r.Candidate != nil {
			cand = r.Candidate.Calibration
		}
		for i := range max(len(live), len(cand)) {
			row := calibrationRowView{LivePredicted: "–", LiveObserved: "–", LiveCount: "0", CandPredicted: "–", CandObserved: "–", CandCount: "0"}
			if i < len(live) {
				b := live[i]
				row.Bin = fmt.Sprintf("%.1f–%.1f", b.Lo, b.Hi)
				if b.Count > 0 {
					row.LivePredicted, row.LiveObserved = fmt.Sprintf("%.2f", b.MeanPredicted), fmt.Sprintf("%.2f", b.ObservedRate)
				}
				row.LiveCount = strconv.Itoa(b.Count)
			}
			if i < len(cand) {
				b := cand[i]
				row.Bin = fmt.Sprintf("%.1f–%.1f", b.Lo, b.Hi)
				if b.Count > 0 {
					row.CandPredicted, row.CandObserved = fmt.Sprintf("%.2f", b.MeanPredicted), fmt.Sprintf("%.2f", b.ObservedRate)
				}
				row.CandCount = strconv.Itoa(b.Count)
			}
			p.CalibrationRows = append(p.CalibrationRows, row)
		}
	}
}

// precisionAt is the best precision a curve reaches at a recall of at
// least rec, as a number with its threshold.
func precisionAt(curve []model.PRPoint, rec float64) string {
	best := -1
	for i, pt := range curve {
		if pt.Recall >= rec && (best < 0 || pt.Precision > curve[best].Precision) {
			best = i
		}
	}
	if best < 0 {
		return "–"
	}
	return fmt.Sprintf("%.2f at score %.3f", curve[best].Precision, curve[best].Threshold)
}

// kpiCharts draws the report's weeks: fired alerts and alert precision on
// one chart, then the four KPIs as trend charts.
func (p *reportPage) kpiCharts(weeks []feedback.ReportKPIWeek) {
	if len(weeks) == 0 {
		return
	}
	var names []string
	var fired []int
	var prec []*float64
	var precision, response, conversion, accuracy []point
	for _, k := range weeks {
		names = append(names, k.Week)
		fired = append(fired, k.FiredAlerts)
		prec = append(prec, k.TruePositiveRate)
		precision = append(precision, point{k.Week, k.TruePositiveRate})
		response = append(response, point{k.Week, k.ResponseMedianSeconds})
		conversion = append(conversion, point{k.Week, k.Conversion})
		accuracy = append(accuracy, point{k.Week, k.Accuracy})
	}
	p.AlertsChart = weekBarsChart("Alerts fired and alert precision by week", names, fired, "alerts fired", prec, "alert precision")
	p.KPICharts = []kpiChart{
		{"Alert precision", "Of the tier alerts agents labelled, the share labelled useful.", lineChart(precision, "share useful", true, nil)},
		{"Response to priority chats", "Median time from the first urgent or high decision to the first human response.", lineChart(response, "seconds", false, nil)},
		{"Priority conversion", "Of the conversations that reached urgent or high, the share that converted.", lineChart(conversion, "share converted", true, nil)},
		{"Classification accuracy", "Of the conversations agents reviewed, the share whose tier they confirmed.", lineChart(accuracy, "share confirmed", true, nil)},
	}
}
