package main

import (
	"reflect"
	"strings"
	"testing"
)

func TestCSVSnakeCase(t *testing.T) {
	tests := map[string]string{
		"ProductRelated_Duration": "product_related_duration",
		"Revenue":                 "revenue",
		"Page Values":             "page_values",
		"PageValues":              "page_values",
		"HTTPStatus":              "http_status",
		"deal_size":               "deal_size",
		"  Wait (seconds) ":       "wait_seconds",
		"utm-source":              "utm_source",
		"Visits30d":               "visits30d",
		"OS2Version":              "os2_version",
	}
	for in, want := range tests {
		if got := snakeCase(in); got != want {
			t.Errorf("snakeCase(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestCSVParseCell(t *testing.T) {
	tests := []struct {
		in   string
		want any
	}{
		{"", nil},
		{"  ", nil},
		{"42", 42.0},
		{"-0.5", -0.5},
		{"1e3", 1000.0},
		{"TRUE", true},
		{"false", false},
		{"False", false},
		{"Returning_Visitor", "Returning_Visitor"},
		{" Feb ", "Feb"},
		{"NaN", nil},
	}
	for _, tt := range tests {
		if got := parseCell(tt.in); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("parseCell(%q) = %#v, want %#v", tt.in, got, tt.want)
		}
	}
}

func TestCSVRead(t *testing.T) {
	src := "Deal Size,Plan,Returning,Note,Revenue\n" +
		"100,pro,TRUE,x,TRUE\n" +
		",free,false,,FALSE\n" +
		"5.5,,True,y,yes\n"
	got, err := readLabelledCSV(strings.NewReader(src), csvOptions{Label: "Revenue", Ignore: []string{"Note"}})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"deal_size", "plan", "returning"}; !reflect.DeepEqual(got.Signals, want) {
		t.Errorf("Signals = %v, want %v", got.Signals, want)
	}
	wantRows := []map[string]any{
		{"deal_size": 100.0, "plan": "pro", "returning": true},
		{"plan": "free", "returning": false},
		{"deal_size": 5.5, "returning": true},
	}
	if !reflect.DeepEqual(got.Rows, wantRows) {
		t.Errorf("Rows = %v, want %v", got.Rows, wantRows)
	}
	if want := []bool{true, false, true}; !reflect.DeepEqual(got.Labels, want) {
		t.Errorf("Labels = %v, want %v", got.Labels, want)
	}
	if got.Positives != 2 || !reflect.DeepEqual(got.Lines, []int{2, 3, 4}) {
		t.Errorf("Positives = %d, Lines = %v; want 2, [2 3 4]", got.Positives, got.Lines)
	}

	// A chosen positive value, and the label named in snake_case.
	got, err = readLabelledCSV(strings.NewReader("x,Outcome\n1,won\n2,lost\n3,WON\n"), csvOptions{Label: "outcome", Positive: "won"})
	if err != nil {
		t.Fatal(err)
	}
	if want := []bool{true, false, true}; !reflect.DeepEqual(got.Labels, want) {
		t.Errorf("--positive won: Labels = %v, want %v", got.Labels, want)
	}
}

func TestCSVErrors(t *testing.T) {
	tests := []struct {
		name, src, label string
		want             string
	}{
		{"no label column", "a,b\n1,TRUE\n", "Revenue", `line 1: no label column "Revenue"`},
		{"ragged row", "a,Revenue\n1,TRUE\n2,FALSE\n3\n", "Revenue", "line 4: 1 fields, want 2"},
		{"one class", "a,Revenue\n1,FALSE\n2,no\n", "Revenue", "one class"},
		{"empty label", "a,Revenue\n1,TRUE\n2,\n", "Revenue", "line 3: empty label"},
		{"empty file", "", "Revenue", "empty file"},
		{"no rows", "a,Revenue\n", "Revenue", "no data rows"},
		{"name clash", "Page Values,PageValues,Revenue\n1,2,TRUE\n", "Revenue", "both become signal"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := readLabelledCSV(strings.NewReader(tt.src), csvOptions{Label: tt.label})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want one containing %q", err, tt.want)
			}
		})
	}
}
