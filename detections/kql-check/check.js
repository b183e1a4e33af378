#!/usr/bin/env node
// check.js parses KQL texts with Microsoft's Kusto language service and
// reports every diagnostic, syntactic and semantic (names of tables,
// columns and functions checked against the schema given).
//
// Input, on standard input, one JSON object:
//   {"tables": {"Name_CL": [["Column", "string"], ...], ...},
//    "queries": [{"name": "what it is", "text": "KQL", "source": [["column", "type"], ...]}]}
// A query with "source" is a DCR transformation: its input stream is the
// table `source` with those columns, and no other table is in scope.
// Output, on standard output, one JSON object per line for each
// diagnostic: {"name", "code", "severity", "message", "line", "column", "excerpt"},
// then a summary line on standard error. Exit status: 0 without
// diagnostics, 1 with some, 2 when the input is not understood.
'use strict';

const path = require('path');

function load() {
  const dir = path.dirname(require.resolve('@kusto/language-service-next/package.json'));
  // The package is a Bridge.NET build: the runtime first, then the
  // language service, which registers global.Kusto.
  require(path.join(dir, 'bridge.min.js'));
  require(path.join(dir, 'Kusto.Language.Bridge.min.js'));
  return global.Kusto.Language;
}

function schema(columns) {
  if (!Array.isArray(columns) || columns.length === 0) {
    throw new Error('a table needs at least one [name, type] column');
  }
  return '(' + columns.map(([n, t]) => `['${n}']:${t}`).join(', ') + ')';
}

function globalsFor(K, tables) {
  const syms = Object.entries(tables).map(([name, cols]) => K.Symbols.TableSymbol.From(schema(cols)).WithName(name));
  const db = new K.Symbols.DatabaseSymbol.$ctor1('workspace', syms, false);
  return K.GlobalState.Default.WithDatabase(db);
}

function lineColumn(text, pos) {
  const before = text.slice(0, pos).split('\n');
  return [before.length, before[before.length - 1].length + 1];
}

function main(input) {
  let req;
  try {
    req = JSON.parse(input);
    if (!req || typeof req.tables !== 'object' || !Array.isArray(req.queries)) {
      throw new Error('want {"tables": {...}, "queries": [...]}');
    }
  } catch (e) {
    process.stderr.write(`kql-check: input: ${e.message}\n`);
    return 2;
  }
  const K = load();
  let workspace;
  try {
    workspace = globalsFor(K, req.tables);
  } catch (e) {
    process.stderr.write(`kql-check: tables: ${e.message}\n`);
    return 2;
  }
  let found = 0;
  for (const q of req.queries) {
    if (typeof q.name !== 'string' || typeof q.text !== 'string') {
      process.stderr.write('kql-check: every query needs a name and a text\n');
      return 2;
    }
    const globals = q.source ? globalsFor(K, { source: q.source }) : workspace;
    const code = K.KustoCode.ParseAndAnalyze(q.text, globals);
    const ds = code.GetDiagnostics();
    for (let i = 0; i < ds.Count; i++) {
      const d = ds.getItem(i);
      const [line, column] = lineColumn(q.text, d.Start);
      const excerpt = q.text.slice(Math.max(0, d.Start - 20), d.Start + Math.max(d.Length, 1) + 20);
      process.stdout.write(JSON.stringify({ name: q.name, code: d.Code, severity: String(d.Severity), message: d.Message, line, column, excerpt }) + '\n');
      found++;
    }
  }
  process.stderr.write(`kql-check: ${req.queries.length} queries, ${found} diagnostics\n`);
  return found === 0 ? 0 : 1;
}

let input = '';
process.stdin.setEncoding('utf8');
process.stdin.on('data', (c) => { input += c; });
process.stdin.on('end', () => { process.exitCode = main(input); });
