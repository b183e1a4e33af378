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
//
// Okta emulates an Okta org's System Log API and its org authorization
// server's token endpoint for service apps (private_key_jwt): polling mode
// ordered by commit time with a next link on every page, bounded queries,
// separate Link header lines, X-Rate-Limit-* headers and 429 E0000047, the
// 90-day retention and 180-day since limit, events committed late, and
// injectable faults; OktaGenerator makes its LogEvents.
//
//	POST /oauth2/v1/token       client credentials, private_key_jwt
//	GET  /api/v1/logs           since, until, after, limit, sortOrder
//
// Entra emulates Microsoft Entra ID's v2.0 token endpoint (client_secret
// and certificate client assertions with x5t, expiring tokens, AADSTS
// errors) and the Microsoft Graph audit log reports of its tenants:
// $filter on each report's own time field with its documented operators
// ("Invalid filter clause" otherwise), $top up to 1000, $orderby, newest
// first by default, absolute @odata.nextLink with a $skiptoken, 7-digit
// fraction times, short pages mid-query, events visible late, 5 requests
// per 10 s per app and tenant answered with 429 and Retry-After, the P1/P2
// licence sign-ins need, the permissions each report needs, retention's
// "Minimum allowed time", and injectable faults; EntraGenerator makes its
// directoryAudit, signIn and provisioningObjectSummary events.
//
//	POST /{tenant}/oauth2/v2.0/token          client credentials grant
//	GET  /v1.0/auditLogs/directoryAudits      $filter, $top, $orderby, $skiptoken
//	GET  /v1.0/auditLogs/signIns              likewise
//	GET  /v1.0/auditLogs/provisioning         likewise
//
// Sentinel emulates Microsoft Entra ID (client credentials, federated
// assertions, an App Service managed identity endpoint) and the Azure
// Monitor Logs Ingestion API: DCR stream declarations, role assignments,
// the 1 MB call and 64 KB field limits, gzip, and 429/503 faults. Rows reads
// back every ingested row.
//
//	POST /{tenant}/oauth2/v2.0/token                          client credentials grant
//	GET  /{tenant}/v2.0/.well-known/openid-configuration      for the Azure SDK
//	GET  /msi/token                                           managed identity (IDENTITY_ENDPOINT)
//	POST /dataCollectionRules/{dcr}/streams/{stream}          ?api-version=2023-01-01
//	GET  /emulator/stats                                      SentinelStats as JSON
//
// Splunk emulates a Splunk HTTP Event Collector: tokens with or without
// indexer acknowledgment and allowed indexes, channels, ackIds that turn
// true after a delay or never, every HEC reply code (auth, channel, data
// format with invalid-event-number, index, busy, unhealthy) by fault
// injection, a max_content_length, and a record of the events indexed.
//
//	POST /services/collector/event            envelopes back to back
//	POST /services/collector/ack              {"acks":[…]}
//	GET  /services/collector/health           code 17 healthy, 18 unhealthy
//	GET  /emulator/stats                      SplunkStats as JSON
//
// Elasticsearch emulates an Elasticsearch or OpenSearch cluster's _bulk API:
// NDJSON create and index actions with per-item results (409 on a repeated
// _id, 429 items injected, 400 on a field whose JSON type differs from the
// one first mapped, data streams taking only create with @timestamp, 403
// outside the writable index patterns), 413 over a size, API key and basic
// auth, _has_privileges (absent on OpenSearch), gzip and 503 faults. Docs,
// IDCounts and Bulks read back what was indexed and sent.
//
//	GET  /                                    cluster info
//	POST /_bulk, /{index}/_bulk               NDJSON actions and documents
//	POST /_security/user/_has_privileges      index privileges of the caller
//	GET  /emulator/stats                      ElasticsearchStats as JSON
package emulator
