// Package kqltest checks KQL texts in tests with Microsoft's Kusto parser:
// it runs detections/kql-check/check.js (Node and the npm package
// @kusto/language-service-next) and reports every diagnostic, syntactic
// and semantic, against the tables given. Without Node or the package, a
// test is skipped saying how to get them; under CI=true it fails.
package kqltest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// Column is a column of a table: its name and Log Analytics type.
type Column [2]string

// Query is one KQL text to check.
type Query struct {
	// Name says where the text comes from, for the report.
	Name string `json:"name"`
	Text string `json:"text"`
	// Source, for a DCR transformation, is its input stream: the table
	// source with these columns, alone in scope.
	Source []Column `json:"source,omitempty"`
}

// Diagnostic is one problem the parser found.
type Diagnostic struct {
	Name     string `json:"name"`
	Code     string `json:"code"`
	Severity string `json:"severity"`
	Message  string `json:"message"`
	Line     int    `json:"line"`
	Column   int    `json:"column"`
	Excerpt  string `json:"excerpt"`
}

// String formats the diagnostic as name:line:column: severity code: message.
func (d Diagnostic) String() string {
	return fmt.Sprintf("%s:%d:%d: %s %s: %s (near %q)", d.Name, d.Line, d.Column, d.Severity, d.Code, d.Message, d.Excerpt)
}

// Checker runs the check script.
type Checker struct {
	node, script string
}

// New returns a checker, or skips t (fails it under CI=true) when Node or
// the parser's npm package is missing.
func New(t testing.TB) *Checker {
	t.Helper()
	dir, err := scriptDir()
	if err != nil {
		t.Fatalf("kqltest: %v", err)
	}
	unavailable := func(msg string) {
		t.Helper()
		if os.Getenv("CI") == "true" {
			t.Fatal("kqltest: " + msg)
		}
		t.Skip("kqltest: " + msg)
	}
	node, err := exec.LookPath("node")
	if err != nil {
		unavailable("needs Node.js (20 or later) to run Microsoft's Kusto parser: install it (Debian: apt-get install nodejs npm), then run npm ci in " + dir)
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "@kusto", "language-service-next", "package.json")); err != nil {
		unavailable("needs the npm package @kusto/language-service-next: run npm ci in " + dir)
	}
	return &Checker{node: node, script: filepath.Join(dir, "check.js")}
}

// scriptDir finds detections/kql-check from the working directory (a
// package directory of the module, as under go test).
func scriptDir() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return filepath.Join(dir, "detections", "kql-check"), nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory")
		}
		dir = parent
	}
}

// Run parses every query, with tables in scope, and returns the
// diagnostics.
func (c *Checker) Run(ctx context.Context, tables map[string][]Column, queries []Query) ([]Diagnostic, error) {
	in, err := json.Marshal(struct {
		Tables  map[string][]Column `json:"tables"`
		Queries []Query             `json:"queries"`
	}{tables, queries})
	if err != nil {
		return nil, fmt.Errorf("kqltest: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, c.node, c.script)
	cmd.Stdin = bytes.NewReader(in)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err = cmd.Run()
	var exit *exec.ExitError
	if err != nil && !(errors.As(err, &exit) && exit.ExitCode() == 1) {
		return nil, fmt.Errorf("kqltest: %s: %w: %s", c.script, err, bytes.TrimSpace(stderr.Bytes()))
	}
	var ds []Diagnostic
	sc := bufio.NewScanner(&stdout)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var d Diagnostic
		if err := json.Unmarshal(sc.Bytes(), &d); err != nil {
			return nil, fmt.Errorf("kqltest: %s printed %q: %w", c.script, sc.Text(), err)
		}
		ds = append(ds, d)
	}
	if err == nil && len(ds) > 0 || err != nil && len(ds) == 0 {
		return nil, fmt.Errorf("kqltest: %s: exit status and output disagree: %v, %d diagnostics: %s", c.script, err, len(ds), bytes.TrimSpace(stderr.Bytes()))
	}
	return ds, nil
}

// Check is Run that fails t for every diagnostic.
func (c *Checker) Check(t testing.TB, tables map[string][]Column, queries []Query) {
	t.Helper()
	if len(queries) == 0 {
		t.Fatal("kqltest: no query to check")
	}
	ds, err := c.Run(t.Context(), tables, queries)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range ds {
		t.Errorf("KQL: %s", d)
	}
}
