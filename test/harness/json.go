package harness

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/big"
	"slices"
	"sort"
)

// DecodeJSON decodes b keeping every number as the json.Number it was
// written as, so that no digit is lost before comparing.
func DecodeJSON(b []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("decode JSON: %w", err)
	}
	return v, nil
}

// JSONDiff lists where got differs from want, as "path: want X, got Y".
// Numbers are equal when their exact decimal values are (2 and 2.0 are equal,
// 7072517835517712850 and 7072517835517712000 are not); object keys are
// compared regardless of order.
func JSONDiff(path string, want, got any) []string {
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			return []string{fmt.Sprintf("%s: want an object, got %s", path, brief(got))}
		}
		var diffs []string
		for _, k := range unionKeys(w, g) {
			wv, inW := w[k]
			gv, inG := g[k]
			switch {
			case !inW:
				diffs = append(diffs, fmt.Sprintf("%s.%s: unexpected, got %s", path, k, brief(gv)))
			case !inG:
				diffs = append(diffs, fmt.Sprintf("%s.%s: missing, want %s", path, k, brief(wv)))
			default:
				diffs = append(diffs, JSONDiff(path+"."+k, wv, gv)...)
			}
		}
		return diffs
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) != len(w) {
			return []string{fmt.Sprintf("%s: want %s, got %s", path, brief(want), brief(got))}
		}
		var diffs []string
		for i := range w {
			diffs = append(diffs, JSONDiff(fmt.Sprintf("%s[%d]", path, i), w[i], g[i])...)
		}
		return diffs
	case json.Number:
		g, ok := got.(json.Number)
		if !ok || !sameNumber(w, g) {
			return []string{fmt.Sprintf("%s: want %s, got %s", path, w, brief(got))}
		}
		return nil
	default:
		if want != got {
			return []string{fmt.Sprintf("%s: want %s, got %s", path, brief(want), brief(got))}
		}
		return nil
	}
}

func sameNumber(a, b json.Number) bool {
	x, okX := new(big.Rat).SetString(string(a))
	y, okY := new(big.Rat).SetString(string(b))
	return okX && okY && x.Cmp(y) == 0
}

func unionKeys(a, b map[string]any) []string {
	keys := make([]string, 0, len(a)+len(b))
	for k := range a {
		keys = append(keys, k)
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	return slices.Compact(keys)
}

func brief(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	if len(b) > 80 {
		return string(b[:80]) + "…"
	}
	return string(b)
}
