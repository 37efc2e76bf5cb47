package feedback

import (
	"encoding/json"
	"reflect"
	"testing"
)

// decodeSignals must give exactly what json.Unmarshal gives: the same map,
// or an error when it errs.
func checkDecodeSignals(t *testing.T, data []byte, reuse map[string]any) {
	t.Helper()
	var want map[string]any
	wantErr := json.Unmarshal(data, &want)
	got, err := decodeSignals(data, reuse, &stringCache{})
	if (err != nil) != (wantErr != nil) {
		t.Fatalf("%q: error %v, json.Unmarshal %v", data, err, wantErr)
	}
	if err == nil && !reflect.DeepEqual(got, want) {
		t.Fatalf("%q: %#v, json.Unmarshal %#v", data, got, want)
	}
}

var decodeSeeds = []string{
	`{}`, ` { } `, `{"deal_size":12000,"plan":"pro","returning":true,"owner":null}`,
	`{"a":-0.5e+3,"b":0,"c":1E2,"d":"héllo","e":false}`, `{"a":1,"a":2}`,
	`{"nested":{"x":1}}`, `{"list":[1,2]}`, `{"esc":"a\"b"}`, `{"k\u00e9":1}`, `{"bad":"\xff"}`,
	`{"big":1e400}`, `{"lead":01}`, `{"x":1.}`, `{"x":-}`, `{"x":1,}`, `{"x" 1}`, `{"x":1} x`, `[]`, `null`, ``, `{`,
	`{"x":tru}`, `{"x":"tab	in"}`, `{"x":1}` + "\n",
}

func TestDecodeSignalsMatchesEncodingJSON(t *testing.T) {
	reuse := map[string]any{"stale": 1}
	for _, s := range decodeSeeds {
		checkDecodeSignals(t, []byte(s), reuse)
		checkDecodeSignals(t, []byte(s), nil)
	}
}

func FuzzDecodeSignals(f *testing.F) {
	for _, s := range decodeSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		checkDecodeSignals(t, data, map[string]any{"stale": true})
	})
}
