package emulator

import (
	"cmp"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"sync"
	"time"
)

// entry is one stored activity with its sort key precomputed.
type entry struct {
	ms  int64 // RecordedAt, Unix milliseconds
	id  string
	vis int64 // VisibleAt, Unix nanoseconds (math.MinInt64 when zero)
	act Activity

	typeOnce   sync.Once
	actionType string // action.type, decoded on first use
}

// typ returns the activity's action.type, decoding it once.
func (e *entry) typ() string {
	e.typeOnce.Do(func() {
		var v struct {
			Action struct {
				Type string `json:"type"`
			} `json:"action"`
		}
		if json.Unmarshal(e.act.JSON, &v) == nil {
			e.actionType = v.Action.Type
		}
	})
	return e.actionType
}

// compareKey orders activities by (recordedAt, id) ascending.
func compareKey(ams int64, aid string, bms int64, bid string) int {
	if c := cmp.Compare(ams, bms); c != 0 {
		return c
	}
	return cmp.Compare(aid, bid)
}

func compareEntries(a, b *entry) int { return compareKey(a.ms, a.id, b.ms, b.id) }

// nanos converts a visibility instant to Unix nanoseconds, saturating at the
// ends of the representable range (the zero time means "always visible").
func nanos(t time.Time) int64 {
	switch {
	case t.IsZero() || t.Year() < 1678:
		return math.MinInt64
	case t.Year() > 2261:
		return math.MaxInt64
	}
	return t.UnixNano()
}

// envState is one environment: its configuration and its activities.
// The PingOne's mu guards everything but served, which servedMu guards.
type envState struct {
	env        Environment
	configured bool // AddEnvironment was called

	acts []*entry         // sorted by (ms, id) ascending
	byID map[string]int64 // id -> ms of the stored activity

	// pending holds the entries that were not visible at watermark; every
	// other entry has vis <= watermark. Queries at now >= watermark only
	// need pending to know which entries are still hidden.
	pending   []*entry
	watermark int64

	servedMu sync.Mutex
	served   map[string]int
}

func newEnvState() *envState {
	return &envState{byID: map[string]int64{}, served: map[string]int{}, watermark: math.MinInt64}
}

// search returns the index of the first entry with key >= (ms, id).
func (s *envState) search(ms int64, id string) int {
	i, _ := slices.BinarySearchFunc(s.acts, &entry{ms: ms, id: id}, compareEntries)
	return i
}

// searchMs returns the index of the first entry recorded at or after ms.
func (s *envState) searchMs(ms int64) int {
	i, _ := slices.BinarySearchFunc(s.acts, ms, func(e *entry, ms int64) int { return cmp.Compare(e.ms, ms) })
	return i
}

// newEntry validates and normalizes an activity for storage.
func newEntry(a Activity) *entry {
	if a.ID == "" {
		panic("emulator: Add: activity without ID")
	}
	a.RecordedAt = a.RecordedAt.UTC().Truncate(time.Millisecond)
	if len(a.JSON) == 0 {
		b, err := json.Marshal(struct {
			ID         string `json:"id"`
			RecordedAt string `json:"recordedAt"`
		}{a.ID, a.RecordedAt.Format(timeFormat)})
		if err != nil {
			panic(fmt.Sprintf("emulator: Add: %v", err))
		}
		a.JSON = b
	} else if !json.Valid(a.JSON) {
		panic(fmt.Sprintf("emulator: Add: activity %q: JSON is not valid", a.ID))
	}
	return &entry{ms: a.RecordedAt.UnixMilli(), id: a.ID, vis: nanos(a.VisibleAt), act: a}
}

// add stores entries, replacing stored activities with the same id. now is
// the current instant in Unix nanoseconds.
func (s *envState) add(es []*entry, now int64) {
	if len(es) == 0 {
		return
	}
	// Within one call the last activity with an id wins.
	if len(es) > 1 {
		seen := make(map[string]int, len(es))
		out := es[:0]
		for _, e := range es {
			if i, ok := seen[e.id]; ok {
				out[i] = e
				continue
			}
			seen[e.id] = len(out)
			out = append(out, e)
		}
		es = out
	}
	for _, e := range es {
		if ms, ok := s.byID[e.id]; ok {
			s.remove(ms, e.id)
		}
		s.byID[e.id] = e.ms
		if e.vis > s.watermark {
			s.pending = append(s.pending, e)
		}
	}
	slices.SortFunc(es, compareEntries)
	switch {
	case len(s.acts) == 0 || compareEntries(s.acts[len(s.acts)-1], es[0]) < 0:
		s.acts = append(s.acts, es...)
	case len(es) <= 16:
		for _, e := range es {
			s.acts = slices.Insert(s.acts, s.search(e.ms, e.id), e)
		}
	default:
		s.acts = mergeSorted(s.acts, es)
	}
	if now > s.watermark {
		s.pending = slices.DeleteFunc(s.pending, func(e *entry) bool { return e.vis <= now })
		s.watermark = now
	}
}

// remove deletes the stored entry with key (ms, id).
func (s *envState) remove(ms int64, id string) {
	i := s.search(ms, id)
	if i < len(s.acts) && s.acts[i].id == id && s.acts[i].ms == ms {
		s.acts = slices.Delete(s.acts, i, i+1)
	}
	s.pending = slices.DeleteFunc(s.pending, func(e *entry) bool { return e.id == id })
	delete(s.byID, id)
}

// mergeSorted merges two sorted slices into a new one.
func mergeSorted(a, b []*entry) []*entry {
	out := make([]*entry, 0, len(a)+len(b))
	i, j := 0, 0
	for i < len(a) && j < len(b) {
		if compareEntries(a[i], b[j]) <= 0 {
			out = append(out, a[i])
			i++
		} else {
			out = append(out, b[j])
			j++
		}
	}
	out = append(out, a[i:]...)
	return append(out, b[j:]...)
}

// lookup returns the stored entry with the given id, or nil.
func (s *envState) lookup(id string) *entry {
	ms, ok := s.byID[id]
	if !ok {
		return nil
	}
	i := s.search(ms, id)
	if i < len(s.acts) && s.acts[i].id == id {
		return s.acts[i]
	}
	return nil
}

// result is one page of a query.
type result struct {
	items []*entry // newest first
	more  bool     // further matching activities exist after items
	count int      // matching activities of the whole query (all pages)
}

// query returns up to limit visible activities matching f, newest first,
// strictly older than the cursor position (ms, id) when after is set.
// It costs O(log n + limit + hidden activities skipped); counting the whole
// query costs O(log n + pending) unless f names action types.
func (s *envState) query(f filter, limit int, after *cursor, now int64) result {
	lo, hi := s.searchMs(f.lo), s.searchMs(f.hi)
	hi = max(hi, lo) // an empty range such as ge B and lt A with A < B
	var r result
	r.count = s.count(f, lo, hi, now)
	end := hi
	if after != nil {
		end = min(end, s.search(after.Ms, after.ID))
	}
	for i := end - 1; i >= lo; i-- {
		e := s.acts[i]
		if e.vis > now || (len(f.actionTypes) > 0 && !f.matchesType(e.typ())) {
			continue
		}
		if len(r.items) == limit {
			r.more = true
			break
		}
		r.items = append(r.items, e)
	}
	return r
}

// count returns how many activities in acts[lo:hi] are visible at now and
// match f's action types.
func (s *envState) count(f filter, lo, hi int, now int64) int {
	if len(f.actionTypes) > 0 || now < s.watermark {
		n := 0
		for _, e := range s.acts[lo:hi] {
			if e.vis <= now && (len(f.actionTypes) == 0 || f.matchesType(e.typ())) {
				n++
			}
		}
		return n
	}
	n := hi - lo
	for _, e := range s.pending {
		if e.vis > now && e.ms >= f.lo && e.ms < f.hi {
			n--
		}
	}
	return n
}
