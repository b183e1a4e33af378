package normalize

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// This file is an OCSF event checker built from the schema source in
// testdata/ocsf-1.8.0 (Apache-2.0, see its LICENSE and NOTICE). It
// resolves extends, $include and profiles the way the OCSF server does
// and checks an event against its class: required attributes, types,
// enum membership and the agreement of each *_id with its caption,
// type_uid arithmetic, at_least_one and just_one constraints, timestamps
// in milliseconds, and that no attribute outside unmapped is unknown.

const ocsfRoot = "testdata/ocsf-1.8.0"

// ocsfAttr is one resolved attribute of a class or object.
type ocsfAttr struct {
	typ         string
	isArray     bool
	requirement string
	enum        map[string]string // id (as JSON text) → caption
	sibling     string
	profile     string // "" when the attribute belongs to no profile
}

// ocsfType is a resolved class or object.
type ocsfType struct {
	name, caption string
	uid, category int
	attrs         map[string]ocsfAttr
	atLeastOne    []string
	justOne       []string
}

type ocsfSchema struct {
	version    string
	dict       map[string]map[string]any
	types      map[string]map[string]any
	regex      map[string]*regexp.Regexp
	objects    map[string]*ocsfType
	classes    map[int]*ocsfType
	categories map[int]string
}

var loadOnce = sync.OnceValues(func() (*ocsfSchema, error) { return loadOCSF(ocsfRoot) })

// ocsfSchemaForTest loads the schema once per test binary.
func ocsfSchemaForTest(t testing.TB) *ocsfSchema {
	t.Helper()
	s, err := loadOnce()
	if err != nil {
		t.Fatalf("load OCSF schema: %v", err)
	}
	return s
}

func readJSONFile(path string) (map[string]any, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return m, nil
}

// rawDef is a class, object or profile definition file as written.
type rawDef struct {
	path string
	m    map[string]any
}

func loadOCSF(root string) (*ocsfSchema, error) {
	s := &ocsfSchema{objects: map[string]*ocsfType{}, classes: map[int]*ocsfType{}, categories: map[int]string{}, regex: map[string]*regexp.Regexp{}}
	ver, err := readJSONFile(filepath.Join(root, "version.json"))
	if err != nil {
		return nil, err
	}
	s.version, _ = ver["version"].(string)
	dict, err := readJSONFile(filepath.Join(root, "dictionary.json"))
	if err != nil {
		return nil, err
	}
	s.dict = map[string]map[string]any{}
	for k, v := range dict["attributes"].(map[string]any) {
		s.dict[k] = v.(map[string]any)
	}
	s.types = map[string]map[string]any{}
	for k, v := range dict["types"].(map[string]any)["attributes"].(map[string]any) {
		s.types[k] = v.(map[string]any)
		if re, ok := s.types[k]["regex"].(string); ok {
			if c, err := regexp.Compile(re); err == nil {
				s.regex[k] = c
			}
		}
	}
	cats, err := readJSONFile(filepath.Join(root, "categories.json"))
	if err != nil {
		return nil, err
	}
	catUID := map[string]int{}
	for name, v := range cats["attributes"].(map[string]any) {
		c := v.(map[string]any)
		uid := int(c["uid"].(float64))
		catUID[name] = uid
		s.categories[uid] = c["caption"].(string)
	}
	load := func(dir string) (map[string]rawDef, error) {
		defs := map[string]rawDef{}
		err := filepath.WalkDir(filepath.Join(root, dir), func(p string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() || !strings.HasSuffix(p, ".json") {
				return err
			}
			m, err := readJSONFile(p)
			if err != nil {
				return err
			}
			defs[m["name"].(string)] = rawDef{path: p, m: m}
			return nil
		})
		return defs, err
	}
	events, err := load("events")
	if err != nil {
		return nil, err
	}
	objects, err := load("objects")
	if err != nil {
		return nil, err
	}
	// merged returns a definition's attributes (as written, not yet
	// overlaid on the dictionary) with extends and $include resolved,
	// and its constraints, category and caption, inherited when unset.
	type merged struct {
		attrs               map[string]map[string]any
		atLeastOne, justOne []string
		category            string
	}
	var resolve func(defs map[string]rawDef, name string, depth int) (merged, error)
	resolve = func(defs map[string]rawDef, name string, depth int) (merged, error) {
		d, ok := defs[name]
		if !ok || depth > 20 {
			return merged{}, fmt.Errorf("definition %q not found", name)
		}
		var out merged
		out.attrs = map[string]map[string]any{}
		if parent, ok := d.m["extends"].(string); ok {
			p, err := resolve(defs, parent, depth+1)
			if err != nil {
				return merged{}, fmt.Errorf("%s extends: %w", name, err)
			}
			out = p
			out.attrs = maps.Clone(p.attrs)
		}
		if c, ok := d.m["category"].(string); ok {
			out.category = c
		}
		attrs, _ := d.m["attributes"].(map[string]any)
		if inc, ok := attrs["$include"]; ok {
			var files []string
			switch v := inc.(type) {
			case string:
				files = []string{v}
			case []any:
				for _, f := range v {
					files = append(files, f.(string))
				}
			}
			for _, f := range files {
				m, err := readJSONFile(filepath.Join(root, f))
				if err != nil {
					return merged{}, fmt.Errorf("%s $include: %w", name, err)
				}
				profile := ""
				if m["meta"] == "profile" {
					profile = m["name"].(string)
				}
				pa, _ := m["attributes"].(map[string]any)
				for k, v := range pa {
					a := maps.Clone(v.(map[string]any))
					if _, set := a["profile"]; !set && profile != "" {
						a["profile"] = profile
					}
					out.attrs[k] = overlay(out.attrs[k], a)
				}
			}
		}
		for k, v := range attrs {
			if k == "$include" {
				continue
			}
			out.attrs[k] = overlay(out.attrs[k], v.(map[string]any))
		}
		if c, ok := d.m["constraints"].(map[string]any); ok {
			out.atLeastOne, out.justOne = strList(c["at_least_one"]), strList(c["just_one"])
		}
		return out, nil
	}
	build := func(defs map[string]rawDef, name string) (*ocsfType, error) {
		m, err := resolve(defs, name, 0)
		if err != nil {
			return nil, err
		}
		t := &ocsfType{name: name, attrs: map[string]ocsfAttr{}, atLeastOne: m.atLeastOne, justOne: m.justOne}
		t.caption, _ = defs[name].m["caption"].(string)
		if uid, ok := defs[name].m["uid"].(float64); ok {
			t.uid = int(uid)
		}
		t.category = catUID[m.category]
		for k, a := range m.attrs {
			base, ok := s.dict[k]
			if !ok {
				return nil, fmt.Errorf("%s: attribute %s is not in the dictionary", name, k)
			}
			full := overlay(maps.Clone(base), a)
			at := ocsfAttr{enum: map[string]string{}}
			at.typ, _ = full["type"].(string)
			at.isArray, _ = full["is_array"].(bool)
			at.requirement, _ = full["requirement"].(string)
			at.sibling, _ = full["sibling"].(string)
			at.profile, _ = full["profile"].(string)
			if e, ok := full["enum"].(map[string]any); ok {
				for id, v := range e {
					at.enum[id], _ = v.(map[string]any)["caption"].(string)
				}
			}
			t.attrs[k] = at
		}
		return t, nil
	}
	for name := range objects {
		t, err := build(objects, name)
		if err != nil {
			return nil, err
		}
		s.objects[name] = t
	}
	for name, d := range events {
		if _, ok := d.m["uid"]; !ok {
			continue // base_event and the category bases
		}
		t, err := build(events, name)
		if err != nil {
			return nil, err
		}
		if t.category == 0 {
			return nil, fmt.Errorf("class %s has no category", name)
		}
		t.uid = t.category*1000 + t.uid
		s.classes[t.uid] = t
	}
	return s, nil
}

// overlay returns base with the members of over set on it; enums are
// merged, so that a class adds its activities to the dictionary's 0 and 99.
func overlay(base, over map[string]any) map[string]any {
	out := maps.Clone(base)
	if out == nil {
		out = map[string]any{}
	}
	for k, v := range over {
		if k == "enum" {
			be, _ := out["enum"].(map[string]any)
			e := maps.Clone(be)
			if e == nil {
				e = map[string]any{}
			}
			maps.Copy(e, v.(map[string]any))
			out["enum"] = e
			continue
		}
		out[k] = v
	}
	return out
}

func strList(v any) []string {
	l, _ := v.([]any)
	var out []string
	for _, x := range l {
		out = append(out, x.(string))
	}
	return out
}

// Check returns every problem of the OCSF event ev (one JSON object).
func (s *ocsfSchema) Check(ev []byte) []string {
	var m map[string]any
	d := json.NewDecoder(bytes.NewReader(ev))
	d.UseNumber()
	if err := d.Decode(&m); err != nil {
		return []string{"not a JSON object: " + err.Error()}
	}
	var errs []string
	add := func(format string, args ...any) { errs = append(errs, fmt.Sprintf(format, args...)) }
	uid, ok := intOf(m["class_uid"])
	if !ok {
		return []string{"class_uid: missing or not an integer"}
	}
	c, ok := s.classes[int(uid)]
	if !ok {
		return []string{fmt.Sprintf("class_uid: %d is not an OCSF %s class", uid, s.version)}
	}
	if cat, _ := intOf(m["category_uid"]); int(cat) != c.category {
		add("category_uid: %v, class %d is in category %d", m["category_uid"], c.uid, c.category)
	}
	if v, ok := m["class_name"]; ok && v != c.caption {
		add("class_name: %q, want %q", v, c.caption)
	}
	if v, ok := m["category_name"]; ok && v != s.categories[c.category] {
		add("category_name: %q, want %q", v, s.categories[c.category])
	}
	act, _ := intOf(m["activity_id"])
	if tu, ok := intOf(m["type_uid"]); !ok || tu != uid*100+act {
		add("type_uid: %v, want class_uid*100+activity_id = %d", m["type_uid"], uid*100+act)
	}
	if v, ok := m["type_name"]; ok {
		want := c.caption + ": " + c.attrs["activity_id"].enum[strconv.FormatInt(act, 10)]
		if v != want {
			add("type_name: %q, want %q", v, want)
		}
	}
	md, _ := m["metadata"].(map[string]any)
	if v := md["version"]; v != s.version {
		add("metadata.version: %v, want %s", v, s.version)
	}
	profiles := map[string]bool{}
	if l, ok := md["profiles"].([]any); ok {
		for _, p := range l {
			if ps, ok := p.(string); ok {
				profiles[ps] = true
			}
		}
	}
	s.checkObject(&errs, "", m, c, profiles, true)
	return errs
}

// checkObject checks the members of obj against t.
func (s *ocsfSchema) checkObject(errs *[]string, path string, obj map[string]any, t *ocsfType, profiles map[string]bool, top bool) {
	add := func(format string, args ...any) { *errs = append(*errs, fmt.Sprintf(format, args...)) }
	for _, k := range slices.Sorted(maps.Keys(obj)) {
		v := obj[k]
		p := path + k
		if top && k == "unmapped" {
			if _, ok := v.(map[string]any); !ok {
				add("unmapped: not an object")
			}
			continue
		}
		a, ok := t.attrs[k]
		if !ok {
			add("%s: not an attribute of %s (move it to unmapped)", p, t.name)
			continue
		}
		if a.profile != "" && !profiles[a.profile] {
			add("%s: belongs to profile %s, which metadata.profiles does not list", p, a.profile)
		}
		if v == nil {
			add("%s: null", p)
			continue
		}
		if a.isArray {
			l, ok := v.([]any)
			if !ok {
				add("%s: not an array", p)
				continue
			}
			for i, e := range l {
				s.checkValue(errs, fmt.Sprintf("%s[%d]", p, i), e, a, profiles)
			}
		} else {
			s.checkValue(errs, p, v, a, profiles)
		}
		if len(a.enum) > 0 && !a.isArray && !(top && (k == "class_uid" || k == "category_uid")) { // checked by Check
			id := fmt.Sprint(v)
			caption, ok := a.enum[id]
			switch {
			case !ok:
				add("%s: %s is not one of %v", p, id, sortedKeys(a.enum))
			case a.sibling != "":
				sib, has := obj[a.sibling]
				switch {
				case id == "99" && !has:
					add("%s: 99 (Other) without %s holding the source's value", p, path+a.sibling)
				case id != "99" && has && sib != caption:
					add("%s%s: %q, want %q, the caption of %s %s", path, a.sibling, sib, caption, k, id)
				}
			}
		}
	}
	for k, a := range t.attrs {
		if a.requirement != "required" || (a.profile != "" && !profiles[a.profile]) {
			continue
		}
		if _, ok := obj[k]; !ok {
			add("%s%s: required by %s", path, k, t.name)
		}
	}
	count := func(keys []string) int {
		n := 0
		for _, k := range keys {
			if _, ok := obj[k]; ok {
				n++
			}
		}
		return n
	}
	if len(t.atLeastOne) > 0 && count(t.atLeastOne) == 0 {
		add("%s: %s needs at least one of %v", strings.TrimSuffix(path, "."), t.name, t.atLeastOne)
	}
	if len(t.justOne) > 0 && count(t.justOne) != 1 {
		add("%s: %s needs exactly one of %v", strings.TrimSuffix(path, "."), t.name, t.justOne)
	}
}

// checkValue checks one (non-array) value of attribute a.
func (s *ocsfSchema) checkValue(errs *[]string, p string, v any, a ocsfAttr, profiles map[string]bool) {
	add := func(format string, args ...any) { *errs = append(*errs, fmt.Sprintf(format, args...)) }
	if o, ok := s.objects[a.typ]; ok {
		m, ok := v.(map[string]any)
		if !ok {
			add("%s: not an object (%s)", p, a.typ)
			return
		}
		if a.typ == "object" {
			return // free-form
		}
		s.checkObject(errs, p+".", m, o, profiles, false)
		return
	}
	base := a.typ
	for i := 0; i < 5; i++ {
		next, _ := s.types[base]["type"].(string)
		if next == "" {
			break
		}
		base = next
	}
	switch base {
	case "string_t":
		str, ok := v.(string)
		if !ok {
			add("%s: not a string (%s)", p, a.typ)
			return
		}
		if re := s.regex[a.typ]; re != nil && !re.MatchString(str) {
			add("%s: %q does not match the %s pattern", p, str, a.typ)
		}
	case "integer_t", "long_t":
		n, ok := intOf(v)
		if !ok {
			add("%s: not an integer (%s)", p, a.typ)
			return
		}
		if a.typ == "timestamp_t" && (n < 946684800000 || n > 4102444800000) {
			add("%s: %d is not a time in milliseconds between 2000 and 2100", p, n)
		}
	case "float_t":
		if _, ok := v.(json.Number); !ok {
			add("%s: not a number", p)
		}
	case "boolean_t":
		if _, ok := v.(bool); !ok {
			add("%s: not a boolean", p)
		}
	case "json_t":
	default:
		add("%s: type %s unknown to the checker", p, a.typ)
	}
}

func intOf(v any) (int64, bool) {
	n, ok := v.(json.Number)
	if !ok {
		return 0, false
	}
	i, err := strconv.ParseInt(string(n), 10, 64)
	return i, err == nil
}

func sortedKeys(m map[string]string) []string {
	k := slices.Collect(maps.Keys(m))
	sort.Slice(k, func(i, j int) bool {
		a, _ := strconv.Atoi(k[i])
		b, _ := strconv.Atoi(k[j])
		return a < b
	})
	return k
}

// TestOCSFCheckerCatches makes sure the checker can fail: each broken
// event must give the problem named.
func TestOCSFCheckerCatches(t *testing.T) {
	s := ocsfSchemaForTest(t)
	good := `{"class_uid":3002,"class_name":"Authentication","category_uid":3,"category_name":"Identity & Access Management",` +
		`"activity_id":1,"activity_name":"Logon","type_uid":300201,"type_name":"Authentication: Logon","severity_id":1,"severity":"Informational",` +
		`"time":1767225600000,"metadata":{"product":{"name":"PingOne","vendor_name":"Ping Identity"},"version":"1.8.0"},` +
		`"status_id":1,"status":"Success","user":{"name":"a"},"service":{"name":"app"},"unmapped":{"x.y":1}}`
	if errs := s.Check([]byte(good)); len(errs) != 0 {
		t.Fatalf("a valid event fails: %v", errs)
	}
	tests := []struct{ name, from, to, want string }{
		{"type_uid", `"type_uid":300201`, `"type_uid":300202`, "type_uid"},
		{"required user", `"user":{"name":"a"},`, ``, "user: required"},
		{"at_least_one of the class", `,"service":{"name":"app"}`, ``, "at least one of [service dst_endpoint]"},
		{"at_least_one of an object", `"user":{"name":"a"}`, `"user":{"email_addr":"a@example.com"}`, "at least one of [account name uid]"},
		{"enum membership", `"status_id":1,"status":"Success"`, `"status_id":7,"status":"Success"`, "status_id: 7 is not one of"},
		{"caption agreement", `"status":"Success"`, `"status":"success"`, `status: "success", want "Success"`},
		{"other needs its text", `"severity_id":1,"severity":"Informational"`, `"severity_id":99`, "99 (Other) without severity"},
		{"seconds", `"time":1767225600000`, `"time":1767225600`, "not a time in milliseconds"},
		{"unknown attribute", `"unmapped":{"x.y":1}`, `"tags":["x"]`, "tags: not an attribute"},
		{"unknown nested attribute", `"user":{"name":"a"}`, `"user":{"name":"a","login":"a"}`, "user.login: not an attribute"},
		{"type", `"user":{"name":"a"}`, `"user":{"name":1}`, "user.name: not a string"},
		{"pattern", `"user":{"name":"a"}`, `"user":{"name":"a","email_addr":"nope"}`, "does not match the email_t pattern"},
		{"class caption", `"class_name":"Authentication"`, `"class_name":"Auth"`, `class_name: "Auth"`},
		{"type_name", `"type_name":"Authentication: Logon"`, `"type_name":"Authentication: Logoff"`, "type_name"},
		{"metadata.version", `"version":"1.8.0"`, `"version":"1.7.0"`, "metadata.version"},
		{"profile", `"unmapped":{"x.y":1}`, `"cloud":{"provider":"aws"}`, "belongs to profile cloud"},
		{"api activity needs actor", `"class_uid":3002`, `"class_uid":6003`, "actor: required by api_activity"},
	}
	for _, tt := range tests {
		ev := strings.Replace(good, tt.from, tt.to, 1)
		if ev == good {
			t.Fatalf("%s: replacement %q not found", tt.name, tt.from)
		}
		errs := s.Check([]byte(ev))
		if !slices.ContainsFunc(errs, func(e string) bool { return strings.Contains(e, tt.want) }) {
			t.Errorf("%s: got %q, want a problem containing %q", tt.name, errs, tt.want)
		}
	}
}
