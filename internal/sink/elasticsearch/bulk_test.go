package elasticsearch

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseBulk(t *testing.T) {
	body := `{"took":3,"errors":true,"items":[
	 {"create":{"_index":"logs-okta.system-default","_id":"a","status":201,"result":"created"}},
	 {"create":{"_index":"logs-okta.system-default","_id":"b","status":409,"error":{"type":"version_conflict_engine_exception","reason":"[b]: version conflict, document already exists"}}},
	 {"create":{"_id":"c","status":429,"error":{"type":"es_rejected_execution_exception","reason":"rejected execution"}}},
	 {"create":{"_id":"d","status":400,"error":{"type":"document_parsing_exception","reason":"[1:20] failed to parse field [x]","caused_by":{"type":"illegal_argument_exception","reason":"For input string: \"abc\""}}}},
	 {"index":{"_id":"e","status":503,"error":"old style string error"}}]}`
	got, err := parseBulk([]byte(body), 5)
	if err != nil {
		t.Fatal(err)
	}
	want := []itemResult{
		{Status: 201},
		{Status: 409, Reason: "version_conflict_engine_exception: [b]: version conflict, document already exists"},
		{Status: 429, Reason: "es_rejected_execution_exception: rejected execution"},
		{Status: 400, Reason: `document_parsing_exception: [1:20] failed to parse field [x] (caused by illegal_argument_exception: For input string: "abc")`},
		{Status: 503, Reason: "old style string error"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got)\n%s", diff)
	}
}

func TestParseBulkRefuses(t *testing.T) {
	for name, c := range map[string]struct {
		body string
		n    int
		want string
	}{
		"not json":        {`<html>`, 1, "not JSON"},
		"not bulk":        {`{"acknowledged":true}`, 1, "neither errors nor items"},
		"too few items":   {`{"errors":false,"items":[{"create":{"status":201}}]}`, 2, "1 items for 2"},
		"two actions":     {`{"errors":false,"items":[{"create":{"status":201},"index":{"status":201}}]}`, 1, "2 actions"},
		"no status":       {`{"errors":false,"items":[{"create":{}}]}`, 1, "status 0"},
		"filtered, empty": {`{"errors":false}`, 1, "0 items for 1"},
	} {
		_, err := parseBulk([]byte(c.body), c.n)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v, want %q", name, err, c.want)
		}
	}
}

// FuzzParseBulk: any answer either parses into exactly n results with
// valid statuses or is an error; it never panics.
func FuzzParseBulk(f *testing.F) {
	f.Add([]byte(`{"errors":false,"items":[{"create":{"status":201}}]}`), 1)
	f.Add([]byte(`{"errors":true,"items":[{"create":{"status":400,"error":{"type":"t","reason":"r","caused_by":{"type":"c"}}}}]}`), 1)
	f.Add([]byte(`{"errors":true,"items":[{"create":{"status":503,"error":"s"}},{"create":{"status":409}}]}`), 2)
	f.Add([]byte(`{"items":null}`), 0)
	f.Fuzz(func(t *testing.T, b []byte, n int) {
		if n < 0 || n > 1000 {
			return
		}
		res, err := parseBulk(b, n)
		if err != nil {
			return
		}
		if len(res) != n {
			t.Fatalf("%d results for %d", len(res), n)
		}
		for _, r := range res {
			if r.Status < 100 || r.Status > 599 || len(r.Reason) > 500 {
				t.Fatalf("result %+v", r)
			}
		}
	})
}
