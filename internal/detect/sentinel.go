package detect

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Analytic is a Microsoft Sentinel scheduled analytics rule, in the YAML
// shape of Sentinel's own rule templates, plus Table (the table the query
// reads), Sigma (the Sigma rules it implements) and Triage.
type Analytic struct {
	ID          string `yaml:"id"`
	Name        string `yaml:"name"`
	Description string `yaml:"description"`
	// Triage says how to investigate an alert.
	Triage   string `yaml:"triage"`
	Severity string `yaml:"severity"`
	// Table is the table the query reads, as created by
	// `auditrelay sentinel template`.
	Table string `yaml:"table"`
	// Sigma names the Sigma rules (their name attribute) the query
	// implements.
	Sigma              []string      `yaml:"sigma"`
	QueryFrequency     string        `yaml:"queryFrequency"`
	QueryPeriod        string        `yaml:"queryPeriod"`
	TriggerOperator    string        `yaml:"triggerOperator"`
	TriggerThreshold   int           `yaml:"triggerThreshold"`
	Tactics            []string      `yaml:"tactics"`
	RelevantTechniques []string      `yaml:"relevantTechniques"`
	Query              string        `yaml:"query"`
	EntityMappings     []EntityMap   `yaml:"entityMappings"`
	Version            string        `yaml:"version"`
	Kind               string        `yaml:"kind"`
	Frequency          time.Duration `yaml:"-"`
	Period             time.Duration `yaml:"-"`
	// File is the file it was read from.
	File string `yaml:"-"`
}

// EntityMap maps a query column to a Sentinel entity of an alert.
type EntityMap struct {
	EntityType    string `yaml:"entityType" json:"entityType"`
	FieldMappings []struct {
		Identifier string `yaml:"identifier" json:"identifier"`
		ColumnName string `yaml:"columnName" json:"columnName"`
	} `yaml:"fieldMappings" json:"fieldMappings"`
}

// Hunting is a Sentinel hunting query: a saved search in the Hunting
// Queries category.
type Hunting struct {
	ID                 string   `yaml:"id"`
	Name               string   `yaml:"name"`
	Description        string   `yaml:"description"`
	Triage             string   `yaml:"triage"`
	Table              string   `yaml:"table"`
	Sigma              []string `yaml:"sigma"`
	Tactics            []string `yaml:"tactics"`
	RelevantTechniques []string `yaml:"relevantTechniques"`
	Query              string   `yaml:"query"`
	Version            string   `yaml:"version"`
	File               string   `yaml:"-"`
}

// Content is the Sentinel content of the detections directory.
type Content struct {
	Analytics []Analytic
	Hunting   []Hunting
}

// The directories of Content in the detections file system.
const (
	AnalyticsDir = "sentinel/analytics"
	HuntingDir   = "sentinel/hunting"
)

// tactics are the MITRE ATT&CK tactics as Sentinel names them.
var tactics = []string{"Reconnaissance", "ResourceDevelopment", "InitialAccess", "Execution", "Persistence",
	"PrivilegeEscalation", "DefenseEvasion", "CredentialAccess", "Discovery", "LateralMovement", "Collection",
	"Exfiltration", "CommandAndControl", "Impact"}

var (
	guidRE      = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)
	techniqueRE = regexp.MustCompile(`^T[0-9]{4}(\.[0-9]{3})?$`)
	tableRE     = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_]*_CL$`)
)

// Load reads the analytics rules and hunting queries of fsys (the
// detections directory) and checks each: every problem of every file is
// reported.
func Load(fsys fs.FS) (Content, error) {
	var c Content
	var errs []error
	ids := map[string]string{}
	unique := func(file, id string) {
		if prev, ok := ids[id]; ok {
			errs = append(errs, fmt.Errorf("%s: id %s is also %s's", file, id, prev))
		}
		ids[id] = file
	}
	files, err := fs.Glob(fsys, AnalyticsDir+"/*.yaml")
	if err != nil {
		return Content{}, fmt.Errorf("detect: %w", err)
	}
	for _, name := range files {
		var a Analytic
		if err := decodeStrict(fsys, name, &a); err != nil {
			errs = append(errs, err)
			continue
		}
		a.File = name
		if err := a.check(); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", name, err))
			continue
		}
		unique(name, a.ID)
		c.Analytics = append(c.Analytics, a)
	}
	files, err = fs.Glob(fsys, HuntingDir+"/*.yaml")
	if err != nil {
		return Content{}, fmt.Errorf("detect: %w", err)
	}
	for _, name := range files {
		var h Hunting
		if err := decodeStrict(fsys, name, &h); err != nil {
			errs = append(errs, err)
			continue
		}
		h.File = name
		if err := h.check(); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", name, err))
			continue
		}
		unique(name, h.ID)
		c.Hunting = append(c.Hunting, h)
	}
	if len(errs) > 0 {
		return Content{}, fmt.Errorf("detect: %w", errors.Join(errs...))
	}
	if len(c.Analytics) == 0 {
		return Content{}, fmt.Errorf("detect: no analytics rule under %s", AnalyticsDir)
	}
	return c, nil
}

func decodeStrict(fsys fs.FS, name string, v any) error {
	b, err := fs.ReadFile(fsys, name)
	if err != nil {
		return fmt.Errorf("detect: %w", err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%s: %w", path.Base(name), err)
	}
	return nil
}

func (a *Analytic) check() error {
	var p problems
	p.common(a.ID, a.Name, a.Description, a.Triage, a.Table, a.Query, a.Version, a.Tactics, a.RelevantTechniques)
	if !slices.Contains([]string{"Informational", "Low", "Medium", "High"}, a.Severity) {
		p.add("severity: %q is not Informational, Low, Medium or High", a.Severity)
	}
	if a.Kind != "Scheduled" {
		p.add("kind: %q is not Scheduled", a.Kind)
	}
	var err error
	if a.Frequency, err = ParseTimespan(a.QueryFrequency); err != nil {
		p.add("queryFrequency: %v", err)
	} else if a.Frequency < 5*time.Minute || a.Frequency > 14*24*time.Hour {
		p.add("queryFrequency: %s is outside Sentinel's 5m to 14d", a.QueryFrequency)
	}
	if a.Period, err = ParseTimespan(a.QueryPeriod); err != nil {
		p.add("queryPeriod: %v", err)
	} else if a.Period < 5*time.Minute || a.Period > 14*24*time.Hour {
		p.add("queryPeriod: %s is outside Sentinel's 5m to 14d", a.QueryPeriod)
	} else if a.Period < a.Frequency {
		p.add("queryPeriod: %s is shorter than queryFrequency %s: events between runs would be missed", a.QueryPeriod, a.QueryFrequency)
	}
	if !slices.Contains([]string{"gt", "lt", "eq", "ne"}, a.TriggerOperator) {
		p.add("triggerOperator: %q is not gt, lt, eq or ne", a.TriggerOperator)
	}
	if a.TriggerThreshold < 0 {
		p.add("triggerThreshold: %d is negative", a.TriggerThreshold)
	}
	if len(a.Sigma) == 0 {
		p.add("sigma: name the Sigma rules the query implements")
	}
	for i, m := range a.EntityMappings {
		if m.EntityType == "" || len(m.FieldMappings) == 0 {
			p.add("entityMappings[%d]: entityType and fieldMappings required", i)
		}
	}
	return p.err()
}

func (h *Hunting) check() error {
	var p problems
	p.common(h.ID, h.Name, h.Description, h.Triage, h.Table, h.Query, h.Version, h.Tactics, h.RelevantTechniques)
	return p.err()
}

type problems []string

func (p *problems) add(format string, args ...any) { *p = append(*p, fmt.Sprintf(format, args...)) }

func (p *problems) common(id, name, description, triage, table, query, version string, tacs, techs []string) {
	if !guidRE.MatchString(id) {
		p.add("id: %q is not a lowercase GUID", id)
	}
	if name == "" || len(name) > 256 {
		p.add("name: required, at most 256 characters")
	}
	if strings.TrimSpace(description) == "" {
		p.add("description: required")
	}
	if strings.TrimSpace(triage) == "" {
		p.add("triage: required")
	}
	if len(description)+len(triage) > 4900 {
		p.add("description and triage: over Sentinel's 5000 characters")
	}
	if !tableRE.MatchString(table) {
		p.add("table: %q is not a custom table", table)
	} else if !strings.Contains(query, table) {
		p.add("query: does not read its table %s", table)
	}
	if strings.TrimSpace(query) == "" {
		p.add("query: required")
	}
	if version == "" {
		p.add("version: required")
	}
	if len(tacs) == 0 {
		p.add("tactics: required")
	}
	for _, t := range tacs {
		if !slices.Contains(tactics, t) {
			p.add("tactics: %q is not a tactic (%s)", t, strings.Join(tactics, ", "))
		}
	}
	if len(techs) == 0 {
		p.add("relevantTechniques: required")
	}
	for _, t := range techs {
		if !techniqueRE.MatchString(t) {
			p.add("relevantTechniques: %q is not an ATT&CK technique id such as T1098 or T1098.003", t)
		}
	}
}

func (p problems) err() error {
	if len(p) == 0 {
		return nil
	}
	return errors.New(strings.Join(p, "; "))
}
