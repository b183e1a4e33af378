package detect

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// The correlation types of the Sigma correlation rules specification 2.0.
const (
	EventCount      = "event_count"
	ValueCount      = "value_count"
	Temporal        = "temporal"
	TemporalOrdered = "temporal_ordered"
)

// Correlation is a Sigma correlation rule: a rule over the matches of
// other rules (base rules, or correlations), grouped by fields, within a
// timespan.
type Correlation struct {
	Title       string
	ID          string
	Name        string
	Description string
	Level       string
	Tags        []string
	// Type is event_count, value_count, temporal or temporal_ordered.
	Type string
	// Rules are the names of the rules correlated.
	Rules []string
	// GroupBy are the fields (or aliases) whose values must be the same
	// in every event correlated.
	GroupBy []string
	// Timespan is how close in time the events must be.
	Timespan time.Duration
	// Condition is when a group matches: a lower bound on the count of
	// events (event_count), of distinct values of Condition.Field
	// (value_count) or of distinct rules (temporal, temporal_ordered;
	// default all of them).
	Condition Condition
	// Aliases name a field differently per rule: alias → rule name →
	// field.
	Aliases map[string]map[string]string
	// Generate is whether the rules correlated also stand alone.
	Generate bool
}

// Condition is a correlation's threshold. The streaming evaluator needs a
// lower bound: gt or gte. lt, lte and eq describe what a window holds at
// its end, which a stream cannot know when an event arrives, and are
// refused.
type Condition struct {
	Field string
	GT    *int
	GTE   *int
}

// min returns the least count that satisfies the condition, or def when
// it sets none.
func (c Condition) min(def int) int {
	switch {
	case c.GTE != nil:
		return *c.GTE
	case c.GT != nil:
		return *c.GT + 1
	}
	return def
}

// correlationFile is a correlation rule's YAML document. Fields that are
// not the specification's are allowed and ignored, as in Sigma rules.
type correlationFile struct {
	Title       string   `yaml:"title"`
	ID          string   `yaml:"id"`
	Name        string   `yaml:"name"`
	Description string   `yaml:"description"`
	Level       string   `yaml:"level"`
	Tags        []string `yaml:"tags"`
	Correlation *struct {
		Type      string                       `yaml:"type"`
		Rules     []string                     `yaml:"rules"`
		GroupBy   []string                     `yaml:"group-by"`
		Timespan  string                       `yaml:"timespan"`
		Condition map[string]yaml.Node         `yaml:"condition"`
		Aliases   map[string]map[string]string `yaml:"aliases"`
		Generate  bool                         `yaml:"generate"`
	} `yaml:"correlation"`
	Rest map[string]any `yaml:",inline"`
}

// IsCorrelation reports whether a YAML document is a correlation rule: it
// has a top-level correlation section.
func IsCorrelation(doc []byte) bool {
	var probe struct {
		Correlation *yaml.Node `yaml:"correlation"`
	}
	return yaml.Unmarshal(doc, &probe) == nil && probe.Correlation != nil
}

// ParseCorrelation parses one correlation rule and checks it is one that
// the evaluator can run.
func ParseCorrelation(doc []byte) (Correlation, error) {
	var f correlationFile
	dec := yaml.NewDecoder(bytes.NewReader(doc))
	if err := dec.Decode(&f); err != nil {
		return Correlation{}, fmt.Errorf("correlation rule: %w", err)
	}
	if f.Correlation == nil {
		return Correlation{}, errors.New("correlation rule: no correlation section")
	}
	s := f.Correlation
	c := Correlation{Title: f.Title, ID: f.ID, Name: f.Name, Description: f.Description, Level: f.Level, Tags: f.Tags,
		Type: s.Type, Rules: s.Rules, GroupBy: s.GroupBy, Aliases: s.Aliases, Generate: s.Generate}
	var problems []string
	bad := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	if c.Title == "" {
		bad("title: required")
	}
	switch c.Type {
	case EventCount, ValueCount, Temporal, TemporalOrdered:
	default:
		bad("correlation.type: %q is not event_count, value_count, temporal or temporal_ordered", c.Type)
	}
	if len(c.Rules) == 0 {
		bad("correlation.rules: required")
	}
	if (c.Type == Temporal || c.Type == TemporalOrdered) && len(c.Rules) < 2 {
		bad("correlation.rules: a %s correlation needs at least two rules", c.Type)
	}
	if len(c.GroupBy) == 0 {
		bad("correlation.group-by: required")
	}
	ts, err := ParseTimespan(s.Timespan)
	if err != nil {
		bad("correlation.timespan: %v", err)
	}
	c.Timespan = ts
	for k, n := range s.Condition {
		switch k {
		case "field":
			c.Condition.Field = n.Value
		case "gt", "gte":
			v, err := strconv.Atoi(n.Value)
			if err != nil || v < 0 {
				bad("correlation.condition.%s: %q is not a count", k, n.Value)
				continue
			}
			if k == "gt" {
				c.Condition.GT = &v
			} else {
				c.Condition.GTE = &v
			}
		case "lt", "lte", "eq":
			bad("correlation.condition.%s: only a lower bound (gt, gte) can be evaluated on a stream of events", k)
		default:
			bad("correlation.condition: %q is not a condition (gt, gte, field)", k)
		}
	}
	if c.Condition.GT != nil && c.Condition.GTE != nil {
		bad("correlation.condition: gt and gte both set")
	}
	switch c.Type {
	case EventCount:
		if c.Condition.GT == nil && c.Condition.GTE == nil {
			bad("correlation.condition: an event_count correlation needs gt or gte")
		}
	case ValueCount:
		if c.Condition.Field == "" || c.Condition.GT == nil && c.Condition.GTE == nil {
			bad("correlation.condition: a value_count correlation needs field and gt or gte")
		}
	}
	for alias, m := range c.Aliases {
		if !slices.Contains(c.GroupBy, alias) {
			bad("correlation.aliases.%s: not used in group-by", alias)
		}
		for rule := range m {
			if !slices.Contains(c.Rules, rule) {
				bad("correlation.aliases.%s.%s: not one of the rules", alias, rule)
			}
		}
	}
	if len(problems) > 0 {
		slices.Sort(problems)
		return Correlation{}, fmt.Errorf("correlation rule %q: %s", c.Title, strings.Join(problems, "; "))
	}
	return c, nil
}

// ParseTimespan parses a Sigma timespan: a number and s, m, h or d.
func ParseTimespan(s string) (time.Duration, error) {
	if len(s) < 2 {
		return 0, fmt.Errorf("%q is not a timespan (a number and s, m, h or d, such as 15m)", s)
	}
	n, err := strconv.Atoi(s[:len(s)-1])
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("%q is not a timespan (a number and s, m, h or d, such as 15m)", s)
	}
	unit := map[byte]time.Duration{'s': time.Second, 'm': time.Minute, 'h': time.Hour, 'd': 24 * time.Hour}[s[len(s)-1]]
	if unit == 0 {
		return 0, fmt.Errorf("%q is not a timespan (a number and s, m, h or d, such as 15m)", s)
	}
	return time.Duration(n) * unit, nil
}
