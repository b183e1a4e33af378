package emulator

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"path"
	"regexp"
	"sort"
	"strings"
	"sync"
)

// Elasticsearch emulates the parts of an Elasticsearch (or, with
// ElasticsearchOptions.OpenSearch, an OpenSearch) cluster a log shipper
// uses:
//
//	GET  /                                   cluster info (X-Elastic-Product: Elasticsearch unless OpenSearch)
//	POST /_bulk, /{index}/_bulk              NDJSON create/index actions → {"errors", "items": [...]}
//	POST /_security/user/_has_privileges     index privileges of the caller (400 "no handler" on OpenSearch)
//	GET  /emulator/stats                     ElasticsearchStats as JSON
//
// Every request needs Authorization: ApiKey <encoded> of a known key, or
// Basic of a known user (401 security_exception otherwise). Bodies may be
// gzipped; one over MaxContentLength is answered 413. Items fail
// independently with HTTP 200 for the request: create of an _id the index
// holds is 409 version_conflict_engine_exception; a name of the form
// logs-*-* (metrics, traces) is a data stream, which takes only create and
// needs @timestamp (400 otherwise); every index maps each field by the
// first JSON type it sees and refuses a document whose field has another
// (400 document_parsing_exception), as dynamic mapping does; an index
// outside the writable patterns is 403 security_exception. Injected faults
// answer items 429 es_rejected_execution_exception or whole requests 503.
// Docs and IDCounts read what was indexed.
type Elasticsearch struct {
	opts ElasticsearchOptions
	mux  *http.ServeMux

	mu      sync.Mutex
	indices map[string]*esIndex
	faults  ElasticsearchFaults
	down    bool
	rng     *rand.Rand
	bulks   [][]string
	stats   ElasticsearchStats
}

// ElasticsearchOptions configure an Elasticsearch emulator.
type ElasticsearchOptions struct {
	// APIKeys are the accepted encoded API keys (base64 of id:key).
	APIKeys []string
	// Users are the accepted basic-auth users and their passwords.
	Users map[string]string
	// Writable are the index patterns (path.Match, such as "logs-*") the
	// credentials may create documents in; empty: every index.
	Writable []string
	// MaxContentLength is the largest request body (after gzip) accepted;
	// default 100 MiB, Elasticsearch's http.max_content_length.
	MaxContentLength int
	// OpenSearch makes the emulator answer as OpenSearch: no product
	// header, no _security API.
	OpenSearch bool
	// Seed seeds fault injection.
	Seed uint64
}

// ElasticsearchFaults are the fractions (0..1) of faults injected: bulk
// items answered 429, and whole requests answered 503.
type ElasticsearchFaults struct {
	ThrottleItems float64
	ServerError   float64
}

// ElasticsearchStats count what an Elasticsearch emulator has done.
type ElasticsearchStats struct {
	Requests      int64 `json:"requests"`
	Items         int64 `json:"items"`
	Created       int64 `json:"created"`
	Conflicts     int64 `json:"conflicts"`
	Throttled     int64 `json:"throttled"`
	MappingErrors int64 `json:"mappingErrors"`
	Forbidden     int64 `json:"forbidden"`
	TooLarge      int64 `json:"tooLarge"`
	Unauthorized  int64 `json:"unauthorized"`
	Faults        int64 `json:"faults"`
	Gzip          int64 `json:"gzip"`
}

// ElasticsearchDoc is one indexed document.
type ElasticsearchDoc struct {
	ID     string
	Source json.RawMessage
}

type esIndex struct {
	docs    []ElasticsearchDoc
	byID    map[string]int
	mapping map[string]string // dotted field path → JSON type
}

var esDataStream = regexp.MustCompile(`^(logs|metrics|traces)-[^-]+-[^-]+$`)

// NewElasticsearch returns an empty cluster.
func NewElasticsearch(opts ElasticsearchOptions) *Elasticsearch {
	if opts.MaxContentLength <= 0 {
		opts.MaxContentLength = 100 << 20
	}
	e := &Elasticsearch{opts: opts, indices: map[string]*esIndex{}, rng: rand.New(rand.NewPCG(opts.Seed, 0xe1a5))}
	e.mux = http.NewServeMux()
	e.mux.HandleFunc("GET /{$}", e.auth(e.handleInfo))
	e.mux.HandleFunc("POST /_bulk", e.auth(e.handleBulk))
	e.mux.HandleFunc("PUT /_bulk", e.auth(e.handleBulk))
	e.mux.HandleFunc("POST /{index}/_bulk", e.auth(e.handleBulk))
	e.mux.HandleFunc("POST /_security/user/_has_privileges", e.auth(e.handlePrivileges))
	e.mux.HandleFunc("GET /emulator/stats", func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, http.StatusOK, e.Stats()) })
	e.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		e.esError(w, http.StatusBadRequest, "", fmt.Sprintf("no handler found for uri [%s] and method [%s]", r.URL.Path, r.Method))
	})
	return e
}

// ServeHTTP serves the cluster.
func (e *Elasticsearch) ServeHTTP(w http.ResponseWriter, r *http.Request) { e.mux.ServeHTTP(w, r) }

// Docs returns the documents of an index, in the order they were created.
func (e *Elasticsearch) Docs(index string) []ElasticsearchDoc {
	e.mu.Lock()
	defer e.mu.Unlock()
	if ix := e.indices[index]; ix != nil {
		return append([]ElasticsearchDoc(nil), ix.docs...)
	}
	return nil
}

// Indices returns the names of the indices and data streams holding
// documents, sorted.
func (e *Elasticsearch) Indices() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []string
	for n := range e.indices {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// IDCounts returns, per index and _id, how many documents hold that _id:
// with create, never more than one.
func (e *Elasticsearch) IDCounts() map[string]map[string]int {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := map[string]map[string]int{}
	for n, ix := range e.indices {
		m := map[string]int{}
		for _, d := range ix.docs {
			m[d.ID]++
		}
		out[n] = m
	}
	return out
}

// Bulks returns the _id of every item of every _bulk request received, one
// slice per request, in order.
func (e *Elasticsearch) Bulks() [][]string {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([][]string, len(e.bulks))
	for i, b := range e.bulks {
		out[i] = append([]string(nil), b...)
	}
	return out
}

// SetFaults sets the faults injected from now on.
func (e *Elasticsearch) SetFaults(f ElasticsearchFaults) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.faults = f
}

// SetDown makes every request fail with 503 while down is true.
func (e *Elasticsearch) SetDown(down bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.down = down
}

// Stats returns the counters.
func (e *Elasticsearch) Stats() ElasticsearchStats {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.stats
}

// esError writes an Elasticsearch error answer.
func (e *Elasticsearch) esError(w http.ResponseWriter, status int, typ, reason string) {
	if typ == "" {
		writeJSON(w, status, map[string]any{"error": reason, "status": status})
		return
	}
	writeJSON(w, status, map[string]any{"error": map[string]any{"type": typ, "reason": reason,
		"root_cause": []map[string]string{{"type": typ, "reason": reason}}}, "status": status})
}

// auth checks the caller's credentials before h.
func (e *Elasticsearch) auth(h func(http.ResponseWriter, *http.Request, string)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		e.mu.Lock()
		e.stats.Requests++
		down := e.down || e.rng.Float64() < e.faults.ServerError
		if down {
			e.stats.Faults++
		}
		e.mu.Unlock()
		if !e.opts.OpenSearch {
			w.Header().Set("X-Elastic-Product", "Elasticsearch")
		}
		if down {
			e.esError(w, http.StatusServiceUnavailable, "cluster_block_exception", "blocked by: [SERVICE_UNAVAILABLE/2/no master]")
			return
		}
		who, ok := e.principal(r.Header.Get("Authorization"))
		if !ok {
			e.mu.Lock()
			e.stats.Unauthorized++
			e.mu.Unlock()
			w.Header().Set("WWW-Authenticate", `Basic realm="security", charset="UTF-8", ApiKey`)
			e.esError(w, http.StatusUnauthorized, "security_exception", "unable to authenticate with provided credentials and anonymous access is not allowed for this request")
			return
		}
		h(w, r, who)
	}
}

// principal returns the user an Authorization header authenticates.
func (e *Elasticsearch) principal(h string) (string, bool) {
	scheme, cred, _ := strings.Cut(h, " ")
	switch strings.ToLower(scheme) {
	case "apikey":
		for _, k := range e.opts.APIKeys {
			if cred == k {
				d, _ := base64.StdEncoding.DecodeString(k)
				id, _, _ := strings.Cut(string(d), ":")
				return "apikey:" + id, true
			}
		}
	case "basic":
		d, err := base64.StdEncoding.DecodeString(cred)
		if err != nil {
			return "", false
		}
		u, p, _ := strings.Cut(string(d), ":")
		if want, ok := e.opts.Users[u]; ok && want == p {
			return u, true
		}
	}
	return "", false
}

func (e *Elasticsearch) writable(index string) bool {
	if len(e.opts.Writable) == 0 {
		return true
	}
	for _, p := range e.opts.Writable {
		if ok, _ := path.Match(p, index); ok {
			return true
		}
	}
	return false
}

func (e *Elasticsearch) handleInfo(w http.ResponseWriter, _ *http.Request, _ string) {
	v := map[string]any{"number": "8.15.0", "build_flavor": "default"}
	tag := "You Know, for Search"
	if e.opts.OpenSearch {
		v = map[string]any{"number": "2.17.0", "distribution": "opensearch"}
		tag = "The OpenSearch Project: https://opensearch.org/"
	}
	writeJSON(w, http.StatusOK, map[string]any{"name": "emulator", "cluster_name": "auditrelay-emulator", "version": v, "tagline": tag})
}

func (e *Elasticsearch) handlePrivileges(w http.ResponseWriter, r *http.Request, who string) {
	if e.opts.OpenSearch {
		e.esError(w, http.StatusBadRequest, "", fmt.Sprintf("no handler found for uri [%s] and method [%s]", r.URL.Path, r.Method))
		return
	}
	var req struct {
		Index []struct {
			Names      []string `json:"names"`
			Privileges []string `json:"privileges"`
		} `json:"index"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&req); err != nil {
		e.esError(w, http.StatusBadRequest, "parse_exception", "request body is required")
		return
	}
	all := true
	index := map[string]map[string]bool{}
	for _, ip := range req.Index {
		for _, n := range ip.Names {
			if index[n] == nil {
				index[n] = map[string]bool{}
			}
			for _, p := range ip.Privileges {
				ok := e.writable(n)
				index[n][p] = ok
				all = all && ok
			}
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"username": who, "has_all_requested": all,
		"cluster": map[string]bool{}, "index": index, "application": map[string]any{}})
}

// esItem is one _bulk result.
type esItem struct {
	Index  string         `json:"_index,omitempty"`
	ID     string         `json:"_id,omitempty"`
	Status int            `json:"status"`
	Result string         `json:"result,omitempty"`
	Error  map[string]any `json:"error,omitempty"`
}

func itemError(status int, typ, reason string) esItem {
	return esItem{Status: status, Error: map[string]any{"type": typ, "reason": reason}}
}

func (e *Elasticsearch) handleBulk(w http.ResponseWriter, r *http.Request, _ string) {
	var body io.Reader = io.LimitReader(r.Body, int64(e.opts.MaxContentLength)+1)
	if strings.EqualFold(r.Header.Get("Content-Encoding"), "gzip") {
		zr, err := gzip.NewReader(body)
		if err != nil {
			e.esError(w, http.StatusBadRequest, "parse_exception", "invalid gzip body")
			return
		}
		e.mu.Lock()
		e.stats.Gzip++
		e.mu.Unlock()
		body = io.LimitReader(zr, int64(e.opts.MaxContentLength)+1)
	}
	b, err := io.ReadAll(body)
	if err != nil {
		e.esError(w, http.StatusBadRequest, "parse_exception", "cannot read the body")
		return
	}
	if len(b) > e.opts.MaxContentLength {
		e.mu.Lock()
		e.stats.TooLarge++
		e.mu.Unlock()
		e.esError(w, http.StatusRequestEntityTooLarge, "", fmt.Sprintf("Request Entity Too Large: content length over %d bytes", e.opts.MaxContentLength))
		return
	}
	if len(b) > 0 && b[len(b)-1] != '\n' {
		e.esError(w, http.StatusBadRequest, "illegal_argument_exception", "The bulk request must be terminated by a newline [\\n]")
		return
	}
	defIndex := r.PathValue("index")
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, len(b)+1)
	type op struct {
		op, index, id string
		doc           json.RawMessage
	}
	var ops []op
	for sc.Scan() {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		var action map[string]struct {
			Index string `json:"_index"`
			ID    string `json:"_id"`
		}
		if err := json.Unmarshal(line, &action); err != nil || len(action) != 1 {
			e.esError(w, http.StatusBadRequest, "illegal_argument_exception", "Malformed action/metadata line: expected one of [create, delete, index, update]")
			return
		}
		var name string
		for k := range action {
			name = k
		}
		if name != "create" && name != "index" {
			e.esError(w, http.StatusBadRequest, "illegal_argument_exception", "Action/metadata line ["+name+"] is not supported by the emulator")
			return
		}
		if !sc.Scan() {
			e.esError(w, http.StatusBadRequest, "illegal_argument_exception", "The bulk request must be terminated by a newline [\\n]")
			return
		}
		o := op{op: name, index: action[name].Index, id: action[name].ID,
			doc: append(json.RawMessage(nil), bytes.TrimSpace(sc.Bytes())...)}
		if o.index == "" {
			o.index = defIndex
		}
		ops = append(ops, o)
	}
	if len(ops) == 0 {
		e.esError(w, http.StatusBadRequest, "action_request_validation_exception", "Validation Failed: 1: no requests added;")
		return
	}
	items := make([]map[string]esItem, len(ops))
	ids := make([]string, len(ops))
	errs := false
	e.mu.Lock()
	for i, o := range ops {
		e.stats.Items++
		ids[i] = o.id
		it := e.apply(o.op, o.index, o.id, o.doc)
		it.Index = o.index
		if it.ID == "" {
			it.ID = o.id
		}
		errs = errs || it.Status >= 300
		items[i] = map[string]esItem{o.op: it}
	}
	e.bulks = append(e.bulks, ids)
	e.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{"took": 1, "errors": errs, "items": items})
}

// apply indexes one document; e.mu is held.
func (e *Elasticsearch) apply(op, index, id string, doc json.RawMessage) esItem {
	if index == "" {
		return itemError(http.StatusBadRequest, "action_request_validation_exception", "Validation Failed: 1: index is missing;")
	}
	if !e.writable(index) {
		e.stats.Forbidden++
		return itemError(http.StatusForbidden, "security_exception",
			fmt.Sprintf("action [indices:data/write/bulk[s]] is unauthorized for API key or user on indices [%s]", index))
	}
	if e.rng.Float64() < e.faults.ThrottleItems {
		e.stats.Throttled++
		return itemError(http.StatusTooManyRequests, "es_rejected_execution_exception",
			"rejected execution of coordinating operation [coordinating_and_primary_bytes=0, replica_bytes=0, all_bytes=0, coordinating_operation_bytes=1, max_coordinating_and_primary_bytes=1]")
	}
	var src map[string]any
	if err := json.Unmarshal(doc, &src); err != nil {
		e.stats.MappingErrors++
		return itemError(http.StatusBadRequest, "document_parsing_exception", "[1:1] failed to parse: "+err.Error())
	}
	stream := esDataStream.MatchString(index)
	if stream {
		if op != "create" {
			return itemError(http.StatusBadRequest, "illegal_argument_exception",
				"only write ops with an op_type of create are allowed in data streams")
		}
		if _, ok := src["@timestamp"]; !ok {
			e.stats.MappingErrors++
			return itemError(http.StatusBadRequest, "document_parsing_exception",
				"[1:1] failed to parse: data stream timestamp field [@timestamp] is missing")
		}
	}
	ix := e.indices[index]
	if ix == nil {
		ix = &esIndex{byID: map[string]int{}, mapping: map[string]string{}}
	}
	if id != "" {
		if _, ok := ix.byID[id]; ok && op == "create" {
			e.stats.Conflicts++
			return itemError(http.StatusConflict, "version_conflict_engine_exception",
				fmt.Sprintf("[%s]: version conflict, document already exists (current version [1])", id))
		}
	} else {
		id = newUUID()
	}
	fields := map[string]string{}
	flatten("", src, fields)
	for f, t := range fields {
		if have, ok := ix.mapping[f]; ok && have != t {
			e.stats.MappingErrors++
			return itemError(http.StatusBadRequest, "document_parsing_exception",
				fmt.Sprintf("[1:2] failed to parse field [%s] of type [%s] in document with id '%s'. Preview of field's value: '%s'", f, have, id, t))
		}
	}
	for f, t := range fields {
		ix.mapping[f] = t
	}
	e.indices[index] = ix
	if i, ok := ix.byID[id]; ok { // index op over an existing document
		ix.docs[i].Source = doc
		return esItem{Status: http.StatusOK, Result: "updated"}
	}
	ix.byID[id] = len(ix.docs)
	ix.docs = append(ix.docs, ElasticsearchDoc{ID: id, Source: doc})
	e.stats.Created++
	return esItem{ID: id, Status: http.StatusCreated, Result: "created"}
}

// flatten records the JSON type of every leaf field under its dotted path;
// objects are "object", arrays take their elements' type.
func flatten(prefix string, v any, out map[string]string) {
	switch x := v.(type) {
	case map[string]any:
		if prefix != "" {
			out[prefix] = "object"
		}
		for k, c := range x {
			p := k
			if prefix != "" {
				p = prefix + "." + k
			}
			flatten(p, c, out)
		}
	case []any:
		for _, c := range x {
			flatten(prefix, c, out)
		}
	case string:
		out[prefix] = "text"
	case float64:
		out[prefix] = "long"
	case bool:
		out[prefix] = "boolean"
	}
}
