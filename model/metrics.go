package model

import (
	"math"
	"sort"
)

// The metrics below take scores (probabilities), labels (0 or 1) and
// optional weights (nil means every row weighs 1) of the same length.
// Rows of weight 0 count for nothing.

// ROCAUC is the area under the ROC curve: the weighted probability that a
// positive scores above a negative, ties counting one half. With only one
// class present the curve is undefined and ROCAUC returns 0.5, the value
// of an uninformative score.
func ROCAUC(scores, labels, weights []float64) float64 {
	order := byScore(scores)
	var negBelow, totalPos, auc float64
	// Ascending by score, one group of tied scores at a time.
	for start := len(order) - 1; start >= 0; {
		end := start
		for end > 0 && scores[order[end-1]] == scores[order[start]] {
			end--
		}
		var pos, neg float64
		for _, i := range order[end : start+1] {
			w := weightAt(weights, i)
			if labels[i] == 1 {
				pos += w
			} else {
				neg += w
			}
		}
		auc += pos * (negBelow + neg/2)
		negBelow += neg
		totalPos += pos
		start = end - 1
	}
	if totalPos == 0 || negBelow == 0 {
		return 0.5
	}
	return auc / (totalPos * negBelow)
}

// PRAUC is the average precision: the sum over score thresholds, highest
// first, of precision times the gain in recall, tied scores forming one
// threshold. Without positives it is 0; with only positives, 1.
func PRAUC(scores, labels, weights []float64) float64 {
	totalPos := positiveWeight(labels, weights)
	if totalPos == 0 {
		return 0
	}
	var ap float64
	walkThresholds(scores, labels, weights, func(_, pos, tp, vol float64) {
		if pos > 0 {
			ap += (pos / totalPos) * (tp / vol)
		}
	})
	return ap
}

// positiveWeight is the total weight of the rows labelled 1.
func positiveWeight(labels, weights []float64) float64 {
	var total float64
	for i := range labels {
		if labels[i] == 1 {
			total += weightAt(weights, i)
		}
	}
	return total
}

// walkThresholds calls fn for each distinct score, highest first, tied
// scores forming one threshold: the positive weight at that score (pos),
// and the positive and total weight at or above it (tp, vol).
func walkThresholds(scores, labels, weights []float64, fn func(threshold, pos, tp, vol float64)) {
	order := byScore(scores)
	var tp, vol float64
	for start := 0; start < len(order); {
		end := start
		var pos float64
		for end < len(order) && scores[order[end]] == scores[order[start]] {
			i := order[end]
			w := weightAt(weights, i)
			vol += w
			if labels[i] == 1 {
				pos += w
			}
			end++
		}
		tp += pos
		fn(scores[order[start]], pos, tp, vol)
		start = end
	}
}

// probClamp keeps log loss finite for scores of exactly 0 or 1.
const probClamp = 1e-15

// LogLoss is the weighted mean negative log-likelihood, with scores
// clamped to [1e-15, 1-1e-15]. It is 0 when the total weight is 0.
func LogLoss(scores, labels, weights []float64) float64 {
	var s, total float64
	for i, p := range scores {
		w := weightAt(weights, i)
		p = min(max(p, probClamp), 1-probClamp)
		if labels[i] == 1 {
			s -= w * math.Log(p)
		} else {
			s -= w * math.Log(1-p)
		}
		total += w
	}
	if total == 0 {
		return 0
	}
	return s / total
}

// Brier is the weighted mean squared difference between score and label;
// 0 when the total weight is 0.
func Brier(scores, labels, weights []float64) float64 {
	var s, total float64
	for i, p := range scores {
		w := weightAt(weights, i)
		d := p - labels[i]
		s += w * d * d
		total += w
	}
	if total == 0 {
		return 0
	}
	return s / total
}

// CalibrationBin is one bin of a reliability diagram.
type CalibrationBin struct {
	// Lo and Hi bound the scores in the bin: Lo <= score < Hi, the last
	// bin including 1.
	Lo float64 `json:"lo"`
	Hi float64 `json:"hi"`
	// Count is the number of rows, Weight their total weight.
	Count  int     `json:"count"`
	Weight float64 `json:"weight"`
	// MeanPredicted is the weighted mean score, ObservedRate the weighted
	// share of positives; both 0 in an empty bin.
	MeanPredicted float64 `json:"mean_predicted"`
	ObservedRate  float64 `json:"observed_rate"`
}

// Calibration sorts scores into bins equal-width bins over [0, 1] (10
// when bins <= 0) and returns them, empty ones included, with the expected
// calibration error: the weight-averaged |MeanPredicted - ObservedRate|.
func Calibration(scores, labels, weights []float64, bins int) ([]CalibrationBin, float64) {
	if bins <= 0 {
		bins = 10
	}
	out := make([]CalibrationBin, bins)
	for b := range out {
		out[b].Lo = float64(b) / float64(bins)
		out[b].Hi = float64(b+1) / float64(bins)
	}
	total := 0.0
	for i, p := range scores {
		w := weightAt(weights, i)
		b := min(max(int(p*float64(bins)), 0), bins-1)
		out[b].Count++
		out[b].Weight += w
		out[b].MeanPredicted += w * p
		out[b].ObservedRate += w * labels[i]
		total += w
	}
	ece := 0.0
	for b := range out {
		if out[b].Weight > 0 {
			out[b].MeanPredicted /= out[b].Weight
			out[b].ObservedRate /= out[b].Weight
			ece += out[b].Weight * math.Abs(out[b].MeanPredicted-out[b].ObservedRate)
		} else {
			out[b].MeanPredicted, out[b].ObservedRate = 0, 0
		}
	}
	if total > 0 {
		ece /= total
	}
	return out, ece
}

// PrecisionRecallAt measures the rows scoring at or above threshold: the
// weighted share of positives among them (0 when there are none), the
// share of all positives they hold (0 without positives), and their total
// weight.
func PrecisionRecallAt(scores, labels, weights []float64, threshold float64) (precision, recall, volume float64) {
	var tp, totalPos float64
	for i, p := range scores {
		w := weightAt(weights, i)
		if labels[i] == 1 {
			totalPos += w
		}
		if p >= threshold {
			volume += w
			if labels[i] == 1 {
				tp += w
			}
		}
	}
	if volume > 0 {
		precision = tp / volume
	}
	if totalPos > 0 {
		recall = tp / totalPos
	}
	return precision, recall, volume
}

// PRPoint is one point of a precision-recall curve: the rows scoring at
// or above Threshold.
type PRPoint struct {
	Threshold float64 `json:"threshold"`
	Precision float64 `json:"precision"`
	Recall    float64 `json:"recall"`
}

// PRCurve is the precision-recall curve of scores, highest threshold
// first, tied scores forming one point, thinned to at most maxPoints
// points (the first and last kept) so a report stores it cheaply. Nil
// without positives.
func PRCurve(scores, labels, weights []float64, maxPoints int) []PRPoint {
	totalPos := positiveWeight(labels, weights)
	if totalPos == 0 {
		return nil
	}
	var all []PRPoint
	walkThresholds(scores, labels, weights, func(threshold, _, tp, vol float64) {
		if vol > 0 {
			all = append(all, PRPoint{Threshold: threshold, Precision: tp / vol, Recall: tp / totalPos})
		}
	})
	if maxPoints < 2 || len(all) <= maxPoints {
		return all
	}
	out := make([]PRPoint, 0, maxPoints)
	for k := range maxPoints {
		out = append(out, all[k*(len(all)-1)/(maxPoints-1)])
	}
	return out
}

// Metrics summarises how well scores predict labels.
type Metrics struct {
	ROCAUC  float64 `json:"roc_auc"`
	PRAUC   float64 `json:"pr_auc"`
	LogLoss float64 `json:"log_loss"`
	Brier   float64 `json:"brier"`
	ECE     float64 `json:"ece"`
	Rows    int     `json:"rows"`
	// Positives is the number of rows labelled 1.
	Positives   int              `json:"positives"`
	Calibration []CalibrationBin `json:"calibration"`
}

// Evaluate computes every metric; bins is the number of calibration bins
// (10 when <= 0).
func Evaluate(scores, labels, weights []float64, bins int) Metrics {
	m := Metrics{
		ROCAUC:  ROCAUC(scores, labels, weights),
		PRAUC:   PRAUC(scores, labels, weights),
		LogLoss: LogLoss(scores, labels, weights),
		Brier:   Brier(scores, labels, weights),
		Rows:    len(scores),
	}
	m.Calibration, m.ECE = Calibration(scores, labels, weights, bins)
	for _, y := range labels {
		if y == 1 {
			m.Positives++
		}
	}
	return m
}

func weightAt(weights []float64, i int) float64 {
	if weights == nil {
		return 1
	}
	return weights[i]
}

// byScore returns row indexes by score, highest first; the order within
// ties does not matter to the callers, which treat ties as one group.
func byScore(scores []float64) []int {
	order := make([]int, len(scores))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return scores[order[a]] > scores[order[b]] })
	return order
}
