package main

import (
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// figure is one quantity a scenario measures.
type figure struct {
	// key names the figure in the values of a run and in JSON.
	key string
	// label and unit are shown in the table.
	label, unit string
	// target describes the target for people, e.g. "≤ 11"; empty when the
	// figure is informational.
	target string
	// met reports whether one run's value meets the target; nil when the
	// figure is informational.
	met func(v float64) bool
}

// report is everything one invocation measured.
type report struct {
	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished"`
	Machine  machine   `json:"machine"`
	Binary   string    `json:"binary"`
	ChildEnv []string  `json:"childEnv,omitempty"`
	// Store says where the children kept their state (never a DSN).
	Store      string           `json:"store"`
	LoadBefore string           `json:"loadavgBefore"`
	LoadAfter  string           `json:"loadavgAfter"`
	Scenarios  []scenarioReport `json:"scenarios"`
	// Failed counts runs that ended in an error.
	Failed int `json:"failed"`
}

// scenarioReport holds the runs of one scenario and its aggregated figures.
type scenarioReport struct {
	Name        string         `json:"name"`
	Description string         `json:"description"`
	Figures     []figureReport `json:"figures"`
	Runs        []runReport    `json:"runs"`
}

// runReport is one run: its values by figure key, or its error.
type runReport struct {
	Run int `json:"run"`
	// Load is the load average when the run started: other work on the
	// machine skews the figures.
	Load    string             `json:"loadavg"`
	Seconds float64            `json:"seconds"`
	Values  map[string]float64 `json:"values,omitempty"`
	Notes   []string           `json:"notes,omitempty"`
	Error   string             `json:"error,omitempty"`
}

// figureReport is one figure over the runs that measured it.
type figureReport struct {
	Key    string  `json:"key"`
	Label  string  `json:"label"`
	Unit   string  `json:"unit"`
	N      int     `json:"runs"`
	Min    float64 `json:"min"`
	Median float64 `json:"median"`
	Max    float64 `json:"max"`
	Target string  `json:"target,omitempty"`
	// Met counts the runs whose value meets the target; nil for an
	// informational figure.
	Met *int `json:"met,omitempty"`
}

// aggregate computes min, median and max of each figure over the runs that
// report it, and how many of them meet its target.
func aggregate(figs []figure, runs []runReport) []figureReport {
	out := make([]figureReport, 0, len(figs))
	for _, f := range figs {
		fr := figureReport{Key: f.key, Label: f.label, Unit: f.unit, Target: f.target}
		var vs []float64
		met := 0
		for _, r := range runs {
			v, ok := r.Values[f.key]
			if !ok || r.Error != "" {
				continue
			}
			vs = append(vs, v)
			if f.met != nil && f.met(v) {
				met++
			}
		}
		if f.met != nil {
			fr.Met = &met
		}
		fr.N = len(vs)
		if len(vs) > 0 {
			slices.Sort(vs)
			fr.Min, fr.Median, fr.Max = vs[0], median(vs), vs[len(vs)-1]
		}
		out = append(out, fr)
	}
	return out
}

// median returns the median of sorted values (the mean of the middle two
// for an even count).
func median(sorted []float64) float64 {
	n := len(sorted)
	if n == 0 {
		return math.NaN()
	}
	if n%2 == 1 {
		return sorted[n/2]
	}
	return (sorted[n/2-1] + sorted[n/2]) / 2
}

// percentile returns the nearest-rank p-th percentile (0 < p ≤ 100) of
// sorted values.
func percentile(sorted []float64, p float64) float64 {
	if len(sorted) == 0 {
		return math.NaN()
	}
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	return sorted[min(max(rank, 1), len(sorted))-1]
}

// printReport writes the machine, then one table row per figure.
func printReport(w io.Writer, rep *report) {
	m := rep.Machine
	fmt.Fprintf(w, "machine: %d CPUs, %s; %s; kernel %s; %s RAM\n", m.NumCPU, m.CPUModel, m.GoVersion, m.Kernel, m.Memory)
	fmt.Fprintf(w, "commit: %s; binary %s\n", m.Commit, rep.Binary)
	if rep.Store != "" {
		fmt.Fprintf(w, "store: %s\n", rep.Store)
	}
	if len(rep.ChildEnv) > 0 {
		fmt.Fprintf(w, "child environment: %s\n", strings.Join(rep.ChildEnv, " "))
	}
	fmt.Fprintf(w, "load average: %s before, %s after; %s to %s\n\n", rep.LoadBefore, rep.LoadAfter,
		rep.Started.Format(time.RFC3339), rep.Finished.Format(time.RFC3339))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "scenario\tfigure\tunit\truns\tmin\tmedian\tmax\ttarget\tmet\t")
	for _, s := range rep.Scenarios {
		for _, f := range s.Figures {
			met := "-"
			if f.Met != nil {
				met = fmt.Sprintf("%d/%d", *f.Met, f.N)
			}
			target := f.Target
			if target == "" {
				target = "-"
			}
			if f.N == 0 {
				fmt.Fprintf(tw, "%s\t%s\t%s\t0\t-\t-\t-\t%s\t%s\t\n", s.Name, f.Label, f.Unit, target, met)
				continue
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\t\n", s.Name, f.Label, f.Unit, f.N,
				formatValue(f.Min), formatValue(f.Median), formatValue(f.Max), target, met)
		}
	}
	tw.Flush()
	for _, s := range rep.Scenarios {
		for _, r := range s.Runs {
			if r.Error != "" {
				fmt.Fprintf(w, "\n%s run %d failed: %s", s.Name, r.Run, r.Error)
			}
		}
	}
	fmt.Fprintln(w)
}

// formatValue prints a figure with the precision it deserves.
func formatValue(v float64) string {
	switch {
	case math.IsNaN(v):
		return "NaN"
	case v == math.Trunc(v) && math.Abs(v) < 1e15:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case math.Abs(v) >= 100:
		return strconv.FormatFloat(v, 'f', 1, 64)
	case math.Abs(v) >= 1:
		return strconv.FormatFloat(v, 'f', 2, 64)
	default:
		return strconv.FormatFloat(v, 'f', 3, 64)
	}
}

// formatValues prints one run's values in figure order, for progress.
func formatValues(figs []figure, vals map[string]float64) string {
	parts := make([]string, 0, len(figs))
	for _, f := range figs {
		if v, ok := vals[f.key]; ok {
			parts = append(parts, f.key+"="+formatValue(v))
		}
	}
	return strings.Join(parts, " ")
}
