package detect

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// Alert is a correlation that matched.
type Alert struct {
	// Correlation is the rule that matched.
	Correlation *Correlation
	// Group holds the group-by fields (or aliases) and their values.
	Group map[string]string
	// Time is when it matched.
	Time time.Time
}

// Engine evaluates correlation rules over a stream of base-rule matches.
// Time is the arrival time of each match, read from the clock (time.Now):
// feed matches as they happen. Correlations may refer to correlations
// (chaining): a correlation that matches is itself a match of its name,
// with its group as the event's fields.
//
// A group's state is reset when it matches, so that one burst gives one
// alert. An Engine is not safe for concurrent use.
type Engine struct {
	corrs  []*Correlation
	byRule map[string][]int
	state  map[stateKey]*groupState
	swept  int // len(state) after the last sweep
}

type stateKey struct {
	corr  int
	group string
}

type groupState struct {
	last   time.Time
	times  []time.Time  // event_count
	values []timedValue // value_count
	seen   []time.Time  // temporal: when each rule was last seen
	start  []time.Time  // temporal_ordered: start of the newest in-order run ending at each rule
}

type timedValue struct {
	at time.Time
	v  string
}

// NewEngine returns an engine of the correlations. Every correlation must
// have a name or an id when another refers to it; references to rules
// that are not correlations are base rules, whose matches the caller
// reports to Observe by the same name.
func NewEngine(corrs []Correlation) (*Engine, error) {
	e := &Engine{byRule: map[string][]int{}, state: map[stateKey]*groupState{}}
	names := map[string]bool{}
	for i := range corrs {
		c := &corrs[i]
		for _, n := range []string{c.Name, c.ID} {
			if n == "" {
				continue
			}
			if names[n] {
				return nil, fmt.Errorf("detect: correlation %q: the name or id %q is used twice", c.Title, n)
			}
			names[n] = true
		}
		e.corrs = append(e.corrs, c)
		for _, r := range c.Rules {
			e.byRule[r] = append(e.byRule[r], i)
		}
	}
	// A chain that loops would never settle.
	for i := range e.corrs {
		if e.loops(i, map[int]bool{}) {
			return nil, fmt.Errorf("detect: correlation %q refers to itself through its rules", e.corrs[i].Title)
		}
	}
	return e, nil
}

func (e *Engine) loops(i int, visiting map[int]bool) bool {
	if visiting[i] {
		return true
	}
	visiting[i] = true
	defer delete(visiting, i)
	c := e.corrs[i]
	for _, n := range []string{c.Name, c.ID} {
		if n == "" {
			continue
		}
		for _, j := range e.byRule[n] {
			if e.loops(j, visiting) {
				return true
			}
		}
	}
	return false
}

// Observe reports that the base rule named rule matched an event with
// fields f, now, and returns the correlations that matched because of it,
// innermost first.
func (e *Engine) Observe(rule string, f Fields) []Alert {
	now := time.Now()
	var alerts []Alert
	e.observe(rule, f, now, &alerts)
	if len(e.state) > 2*e.swept+1024 {
		e.sweep(now)
	}
	return alerts
}

func (e *Engine) observe(rule string, f Fields, now time.Time, alerts *[]Alert) {
	for _, ci := range e.byRule[rule] {
		c := e.corrs[ci]
		for _, g := range groups(c, rule, f) {
			key := stateKey{ci, g.key}
			st := e.state[key]
			if st == nil {
				st = &groupState{}
				e.state[key] = st
			}
			if !st.add(c, rule, f, now) {
				continue
			}
			delete(e.state, key)
			a := Alert{Correlation: c, Group: g.values, Time: now}
			*alerts = append(*alerts, a)
			chained := Fields{}
			for k, v := range g.values {
				chained[k] = v
			}
			for _, n := range []string{c.Name, c.ID} {
				if n != "" {
					e.observe(n, chained, now, alerts)
				}
			}
		}
	}
}

// add records a match in the group's state and reports whether the
// correlation now matches.
func (st *groupState) add(c *Correlation, rule string, f Fields, now time.Time) bool {
	st.last = now
	from := now.Add(-c.Timespan)
	switch c.Type {
	case EventCount:
		st.times = append(dropBefore(st.times, from), now)
		return len(st.times) >= c.Condition.min(1)
	case ValueCount:
		kept := st.values[:0]
		for _, v := range st.values {
			if !v.at.Before(from) {
				kept = append(kept, v)
			}
		}
		st.values = kept
		for _, v := range f.Values(c.Condition.Field) {
			st.values = append(st.values, timedValue{now, fmt.Sprint(v)})
		}
		distinct := map[string]bool{}
		for _, v := range st.values {
			distinct[v.v] = true
		}
		return len(distinct) >= c.Condition.min(1)
	case Temporal:
		if st.seen == nil {
			st.seen = make([]time.Time, len(c.Rules))
		}
		n := 0
		for i, r := range c.Rules {
			if r == rule {
				st.seen[i] = now
			}
			if !st.seen[i].IsZero() && !st.seen[i].Before(from) {
				n++
			}
		}
		return n >= c.Condition.min(len(c.Rules))
	default: // TemporalOrdered
		if st.start == nil {
			st.start = make([]time.Time, len(c.Rules))
		}
		// Later positions first, so that one match never counts for two
		// steps of the same run.
		for i := len(c.Rules) - 1; i >= 0; i-- {
			if c.Rules[i] != rule {
				continue
			}
			if i == 0 {
				st.start[0] = now
				continue
			}
			if prev := st.start[i-1]; !prev.IsZero() && !prev.Before(from) && prev.After(st.start[i]) {
				st.start[i] = prev
			}
		}
		last := st.start[len(c.Rules)-1]
		return !last.IsZero() && !last.Before(from)
	}
}

func dropBefore(ts []time.Time, from time.Time) []time.Time {
	i := 0
	for i < len(ts) && ts[i].Before(from) {
		i++
	}
	return ts[i:]
}

// sweep forgets the groups whose newest match is older than their
// correlation's timespan: they can no longer match.
func (e *Engine) sweep(now time.Time) {
	for k, st := range e.state {
		if st.last.Before(now.Add(-e.corrs[k.corr].Timespan)) {
			delete(e.state, k)
		}
	}
	e.swept = len(e.state)
}

// group is one combination of group-by values.
type group struct {
	key    string
	values map[string]string
}

// groups returns the groups an event of rule belongs to: one per
// combination of its group-by values (a field with several values puts
// the event in several groups). A field the event lacks has the value "".
func groups(c *Correlation, rule string, f Fields) []group {
	out := []group{{values: map[string]string{}}}
	for _, name := range c.GroupBy {
		field := name
		if a, ok := c.Aliases[name][rule]; ok {
			field = a
		}
		vals := f.Values(field)
		if len(vals) == 0 {
			vals = []any{""}
		}
		var next []group
		seen := map[string]bool{}
		for _, v := range vals {
			s := fmt.Sprint(v)
			if seen[s] {
				continue
			}
			seen[s] = true
			for _, g := range out {
				m := make(map[string]string, len(g.values)+1)
				for k, x := range g.values {
					m[k] = x
				}
				m[name] = s
				next = append(next, group{values: m})
			}
		}
		out = next
	}
	for i := range out {
		parts := make([]string, 0, len(c.GroupBy))
		for _, name := range c.GroupBy {
			parts = append(parts, out[i].values[name])
		}
		out[i].key = strings.Join(parts, "\x00")
	}
	slices.SortFunc(out, func(a, b group) int { return strings.Compare(a.key, b.key) })
	return out
}
