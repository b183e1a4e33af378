// Package emulator provides faithful fakes of vendor APIs for tests, the demo
// and benchmarks.
//
// PingOne emulates the PingOne OAuth 2.0 token endpoint and the audit
// activities API over real HTTP: client_secret_basic and client_secret_post
// client authentication, expiring bearer tokens bound to their environment,
// the SCIM recordedAt filter, keyset cursors in _links.next, newest-first
// pages, eventual consistency (activities become visible after a lag), a
// token-bucket rate limit per licence answered with 429 REQUEST_LIMITED and
// Retry-After, and injectable faults (5xx, slow answers, truncated bodies,
// early 401s, spurious 429s).
//
// Generator produces realistic, deterministic audit activities; Backlog, Run
// and StartDemo load a PingOne with history and live traffic.
//
// Routes served by a PingOne:
//
//	POST /{envId}/as/token                              client credentials grant
//	GET  /v1/environments/{envId}/activities            ?filter=…&limit=…&cursor=…
//	POST /v1/environments/{envId}/activities            {"filter":…,"limit":…,"cursor":…}
//	GET  /v1/environments/{envId}/activities/{id}       one activity
//	GET  /emulator/stats                                Stats as JSON
//
// CyberArk emulates the CyberArk Identity token endpoint and the ISP audit
// SIEM-integration API (createQuery, results), and CyberArkGenerator makes
// Identity and Privilege Cloud audit events; Sekoia emulates the Sekoia.io
// HTTP intake's /batch endpoint and flags messages its parsers would not
// take. Their type documentation lists their routes.
package emulator
