package normalize

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"maps"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// This file is an ECS document checker built from ECS 9.4.0's fields.csv
// and allowed_values.json (testdata/ecs-9.4.0, Apache-2.0, see its
// LICENSE.txt): every leaf field must be an ECS field with a compatible
// JSON type or sit under a vendor namespace, and event.kind, category,
// type and outcome must hold allowed values, each type one that a
// category of the event expects.

const ecsRoot = "testdata/ecs-9.4.0"

// ecsVendorNamespaces are the top-level objects the normalizers keep
// provider fields under.
var ecsVendorNamespaces = []string{"ping_one", "cyberark", "okta", "azure"}

type ecsSchema struct {
	fields   map[string]string // field → ECS type
	allowed  map[string][]string
	expected map[string][]string // category → expected event types
}

var loadECSOnce = sync.OnceValues(func() (*ecsSchema, error) { return loadECS(ecsRoot) })

func ecsSchemaForTest(t testing.TB) *ecsSchema {
	t.Helper()
	s, err := loadECSOnce()
	if err != nil {
		t.Fatalf("load ECS: %v", err)
	}
	return s
}

func loadECS(root string) (*ecsSchema, error) {
	f, err := os.Open(filepath.Join(root, "fields.csv"))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		return nil, fmt.Errorf("fields.csv: %w", err)
	}
	s := &ecsSchema{fields: map[string]string{}}
	for _, r := range rows[1:] {
		s.fields[r[3]] = r[4]
	}
	b, err := os.ReadFile(filepath.Join(root, "allowed_values.json"))
	if err != nil {
		return nil, err
	}
	var av map[string]json.RawMessage
	if err := json.Unmarshal(b, &av); err != nil {
		return nil, err
	}
	s.allowed = map[string][]string{}
	for _, k := range []string{"event.kind", "event.category", "event.type", "event.outcome"} {
		var l []string
		if err := json.Unmarshal(av[k], &l); err != nil {
			return nil, fmt.Errorf("allowed_values %s: %w", k, err)
		}
		s.allowed[k] = l
	}
	if err := json.Unmarshal(av["expected_event_types"], &s.expected); err != nil {
		return nil, err
	}
	return s, nil
}

// Check returns every problem of the ECS document doc.
func (s *ecsSchema) Check(doc []byte) []string {
	var m map[string]any
	d := json.NewDecoder(bytes.NewReader(doc))
	d.UseNumber()
	if err := d.Decode(&m); err != nil {
		return []string{"not a JSON object: " + err.Error()}
	}
	var errs []string
	add := func(format string, args ...any) { errs = append(errs, fmt.Sprintf(format, args...)) }
	leaves := map[string][]any{}
	var walk func(prefix string, v any)
	walk = func(prefix string, v any) {
		switch x := v.(type) {
		case map[string]any:
			if t := s.fields[prefix]; t == "geo_point" || t == "object" || t == "flattened" || t == "nested" {
				leaves[prefix] = append(leaves[prefix], v)
				return
			}
			for _, k := range slices.Sorted(maps.Keys(x)) {
				p := k
				if prefix != "" {
					p = prefix + "." + k
				}
				if prefix == "" && slices.Contains(ecsVendorNamespaces, k) {
					continue
				}
				walk(p, x[k])
			}
		case []any:
			for _, e := range x {
				if _, ok := e.(map[string]any); ok && s.fields[prefix] == "" {
					walk(prefix, e)
					continue
				}
				leaves[prefix] = append(leaves[prefix], e)
			}
		default:
			leaves[prefix] = append(leaves[prefix], v)
		}
	}
	walk("", m)
	for _, p := range slices.Sorted(maps.Keys(leaves)) {
		typ, ok := s.fields[p]
		if !ok {
			add("%s: not an ECS 9.4.0 field, and not under a vendor namespace %v", p, ecsVendorNamespaces)
			continue
		}
		for _, v := range leaves[p] {
			if msg := ecsTypeProblem(typ, v); msg != "" {
				add("%s: %s", p, msg)
			}
		}
	}
	strs := func(p string) []string {
		var out []string
		for _, v := range leaves[p] {
			if s, ok := v.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	for _, k := range []string{"event.kind", "event.category", "event.type", "event.outcome"} {
		for _, v := range strs(k) {
			if !slices.Contains(s.allowed[k], v) {
				add("%s: %q is not an allowed value", k, v)
			}
		}
	}
	if len(strs("event.kind")) != 1 {
		add("event.kind: want exactly one value, got %v", strs("event.kind"))
	}
	cats := strs("event.category")
	for _, typ := range strs("event.type") {
		if !slices.ContainsFunc(cats, func(c string) bool { return slices.Contains(s.expected[c], typ) }) {
			add("event.type %q is expected by none of the categories %v", typ, cats)
		}
	}
	for _, c := range cats {
		if !slices.ContainsFunc(strs("event.type"), func(t string) bool { return slices.Contains(s.expected[c], t) }) {
			add("event.category %q has none of its expected types %v among %v", c, s.expected[c], strs("event.type"))
		}
	}
	return errs
}

// ecsTypeProblem describes how the JSON value v does not fit the ECS type
// typ, or returns "".
func ecsTypeProblem(typ string, v any) string {
	switch typ {
	case "keyword", "constant_keyword", "wildcard", "text", "match_only_text":
		if _, ok := v.(string); !ok {
			return fmt.Sprintf("%v is not a string (%s)", v, typ)
		}
	case "long", "integer", "short", "byte", "unsigned_long":
		n, ok := v.(json.Number)
		if _, err := n.Int64(); !ok || err != nil {
			return fmt.Sprintf("%v is not an integer (%s)", v, typ)
		}
	case "float", "double", "scaled_float", "half_float":
		if _, ok := v.(json.Number); !ok {
			return fmt.Sprintf("%v is not a number (%s)", v, typ)
		}
	case "boolean":
		if _, ok := v.(bool); !ok {
			return fmt.Sprintf("%v is not a boolean", v)
		}
	case "date":
		str, ok := v.(string)
		if _, err := time.Parse(time.RFC3339Nano, str); !ok || err != nil {
			return fmt.Sprintf("%v is not an RFC 3339 date", v)
		}
	case "ip":
		str, _ := v.(string)
		if net.ParseIP(str) == nil {
			return fmt.Sprintf("%v is not an IP address", v)
		}
	case "geo_point":
		m, ok := v.(map[string]any)
		_, lat := m["lat"].(json.Number)
		_, lon := m["lon"].(json.Number)
		if !ok || !lat || !lon || len(m) != 2 {
			return fmt.Sprintf("%v is not a geo_point {lat, lon}", v)
		}
	case "object", "flattened", "nested":
		if _, ok := v.(map[string]any); !ok {
			return fmt.Sprintf("%v is not an object", v)
		}
	default:
		return "type " + typ + " unknown to the checker"
	}
	return ""
}

// TestECSCheckerCatches makes sure the checker can fail.
func TestECSCheckerCatches(t *testing.T) {
	s := ecsSchemaForTest(t)
	good := `{"@timestamp":"2026-01-01T00:00:00.000Z","event":{"kind":"event","category":["iam","authentication"],"type":["user","start"],"outcome":"success"},` +
		`"user":{"name":"a"},"source":{"ip":"192.0.2.1","geo":{"location":{"lat":1.5,"lon":2}}},"ping_one":{"anything":[1,{"x":2}]}}`
	if errs := s.Check([]byte(good)); len(errs) != 0 {
		t.Fatalf("a valid document fails: %v", errs)
	}
	tests := []struct{ name, from, to, want string }{
		{"unknown field", `"user":{"name":"a"}`, `"user":{"login":"a"}`, "user.login: not an ECS"},
		{"unknown namespace", `"ping_one":`, `"pingone":`, "pingone.anything"},
		{"type", `"user":{"name":"a"}`, `"user":{"name":1}`, "user.name: 1 is not a string"},
		{"ip", `"ip":"192.0.2.1"`, `"ip":"nope"`, "source.ip: nope is not an IP"},
		{"date", `"2026-01-01T00:00:00.000Z"`, `"yesterday"`, "not an RFC 3339 date"},
		{"geo_point", `{"lat":1.5,"lon":2}`, `{"lat":1.5}`, "not a geo_point"},
		{"kind", `"kind":"event"`, `"kind":"evt"`, `event.kind: "evt" is not an allowed value`},
		{"category value", `"iam","authentication"`, `"iam","login"`, `event.category: "login"`},
		{"pair", `"type":["user","start"]`, `"type":["user","start","denied"]`, `event.type "denied" is expected by none`},
		{"category without its type", `"type":["user","start"]`, `"type":["user"]`, `event.category "authentication" has none`},
		{"outcome", `"outcome":"success"`, `"outcome":"ok"`, `event.outcome: "ok"`},
	}
	for _, tt := range tests {
		doc := strings.Replace(good, tt.from, tt.to, 1)
		if doc == good {
			t.Fatalf("%s: %q not found", tt.name, tt.from)
		}
		errs := s.Check([]byte(doc))
		if !slices.ContainsFunc(errs, func(e string) bool { return strings.Contains(e, tt.want) }) {
			t.Errorf("%s: got %q, want a problem containing %q", tt.name, errs, tt.want)
		}
	}
}
