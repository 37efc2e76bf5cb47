package main

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"unicode"
)

// csvOptions say how to read a labelled CSV file.
type csvOptions struct {
	// Label is the label column, by its name in the header or its
	// snake_case form.
	Label string
	// Positive is the label value that means positive, compared without
	// case; "" accepts TRUE, 1 and YES.
	Positive string
	// Ignore lists columns to leave out, by header name or snake_case.
	Ignore []string
	// Progress, when set, is told every csvProgressRows rows how many
	// were read.
	Progress func(rows int)
}

// csvProgressRows is how often readLabelledCSV tells how far it is.
const csvProgressRows = 1000

// labelledCSV is a labelled CSV file read into signals.
type labelledCSV struct {
	// Columns is the header as written.
	Columns []string
	// Signals are the snake_case names of the columns that became
	// signals, in column order.
	Signals []string
	// Rows holds one signal map per data row: numbers as float64,
	// TRUE/FALSE as bool, other text as string; empty cells are absent.
	Rows   []map[string]any
	Labels []bool
	// Lines are the 1-based line numbers where each row starts.
	Lines []int
	// Positives counts the rows labelled positive.
	Positives int
}

// readLabelledCSV reads a CSV file with a header line: the label column
// becomes Labels, every other column not ignored becomes a signal. It
// fails, naming the line, on a ragged row or an empty label, and fails
// when the label column is absent or holds a single class.
func readLabelledCSV(r io.Reader, opt csvOptions) (labelledCSV, error) {
	var out labelledCSV
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1 // checked below, for a clearer message
	cr.ReuseRecord = true
	header, err := cr.Read()
	if errors.Is(err, io.EOF) {
		return out, errors.New("csv: empty file, want a header line")
	}
	if err != nil {
		return out, fmt.Errorf("csv: %w", err)
	}
	out.Columns = slices.Clone(header)
	if len(out.Columns) > 0 {
		out.Columns[0] = strings.TrimPrefix(out.Columns[0], "\ufeff")
	}
	ignore := map[string]bool{}
	for _, c := range opt.Ignore {
		if c = strings.TrimSpace(c); c != "" {
			ignore[c], ignore[snakeCase(c)] = true, true
		}
	}
	labelCol := -1
	names := make([]string, len(out.Columns)) // "" for columns not read
	seen := map[string]string{}
	for j, c := range out.Columns {
		name := snakeCase(c)
		if c == opt.Label || (labelCol < 0 && name == snakeCase(opt.Label) && name != "") {
			labelCol = j
			continue
		}
		if ignore[c] || ignore[name] {
			continue
		}
		if name == "" {
			return out, fmt.Errorf("csv: line 1: column %d has no usable name", j+1)
		}
		if prev, ok := seen[name]; ok {
			return out, fmt.Errorf("csv: line 1: columns %q and %q both become signal %q", prev, c, name)
		}
		seen[name] = c
		names[j] = name
		out.Signals = append(out.Signals, name)
	}
	if labelCol < 0 {
		return out, fmt.Errorf("csv: line 1: no label column %q (columns: %s)", opt.Label, strings.Join(out.Columns, ", "))
	}
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return out, fmt.Errorf("csv: %w", err)
		}
		line, _ := cr.FieldPos(0)
		if len(rec) == 1 && strings.TrimSpace(rec[0]) == "" && len(out.Columns) > 1 {
			continue // a blank line
		}
		if len(rec) != len(out.Columns) {
			return out, fmt.Errorf("csv: line %d: %d fields, want %d as in the header", line, len(rec), len(out.Columns))
		}
		lv := strings.TrimSpace(rec[labelCol])
		if lv == "" {
			return out, fmt.Errorf("csv: line %d: empty label in column %q", line, out.Columns[labelCol])
		}
		pos := isPositive(lv, opt.Positive)
		row := make(map[string]any, len(out.Signals))
		for j, cell := range rec {
			if names[j] == "" {
				continue
			}
			if v := parseCell(cell); v != nil {
				row[names[j]] = v
			}
		}
		out.Rows = append(out.Rows, row)
		out.Labels = append(out.Labels, pos)
		out.Lines = append(out.Lines, line)
		if pos {
			out.Positives++
		}
		if opt.Progress != nil && len(out.Rows)%csvProgressRows == 0 {
			opt.Progress(len(out.Rows))
		}
	}
	if len(out.Rows) == 0 {
		return out, errors.New("csv: no data rows after the header")
	}
	if out.Positives == 0 || out.Positives == len(out.Rows) {
		want := "positive (" + positiveDesc(opt.Positive) + ")"
		if out.Positives > 0 {
			want = "not positive"
		}
		return out, fmt.Errorf("csv: label column %q has one class only: no row in %d is %s", out.Columns[labelCol], len(out.Rows), want)
	}
	return out, nil
}

func positiveDesc(positive string) string {
	if positive == "" {
		return "TRUE, 1 or YES"
	}
	return strconv.Quote(positive)
}

// isPositive reads a label value.
func isPositive(v, positive string) bool {
	if positive != "" {
		return strings.EqualFold(v, strings.TrimSpace(positive))
	}
	switch strings.ToLower(v) {
	case "true", "1", "yes":
		return true
	}
	x, err := strconv.ParseFloat(v, 64)
	return err == nil && x == 1
}

// parseCell reads one cell: nil when empty, a float64 for a finite
// number, a bool for TRUE or FALSE in any case, else the trimmed text.
func parseCell(cell string) any {
	s := strings.TrimSpace(cell)
	if s == "" {
		return nil
	}
	if x, err := strconv.ParseFloat(s, 64); err == nil {
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return nil
		}
		return x
	}
	switch strings.ToLower(s) {
	case "true":
		return true
	case "false":
		return false
	}
	return s
}

// snakeCase normalises a column name to a signal name:
// "ProductRelated_Duration" is "product_related_duration", "Page Values"
// is "page_values", "HTTPStatus" is "http_status".
func snakeCase(s string) string {
	rs := []rune(strings.TrimSpace(s))
	var b strings.Builder
	sep := false
	for i, r := range rs {
		if !unicode.IsLetter(r) && !unicode.IsDigit(r) {
			sep = b.Len() > 0
			continue
		}
		if unicode.IsUpper(r) && i > 0 && b.Len() > 0 {
			prev := rs[i-1]
			nextLower := i+1 < len(rs) && unicode.IsLower(rs[i+1])
			if unicode.IsLower(prev) || unicode.IsDigit(prev) || (unicode.IsUpper(prev) && nextLower) {
				sep = true
			}
		}
		if sep {
			b.WriteByte('_')
			sep = false
		}
		b.WriteRune(unicode.ToLower(r))
	}
	return b.String()
}
