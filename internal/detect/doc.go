// Package detect holds what auditrelay's detection content needs in Go:
// the loader of the Microsoft Sentinel analytics rules and hunting queries
// under detections/sentinel, the flattening of a raw provider event into
// the dotted field names the Sigma rules under detections/sigma use, and a
// small streaming evaluator of Sigma correlation rules (event_count,
// value_count, temporal, temporal_ordered) over the matches of their base
// rules.
//
// Single-event Sigma rules are evaluated by a Sigma engine (the tests use
// github.com/bradleyjkemp/sigma-go); this package only says which base
// rule matched which event to the correlation evaluator, so it does not
// depend on one.
package detect
