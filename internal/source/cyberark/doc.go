// Package cyberark reads CyberArk Identity Security Platform audit events
// through a SIEM integration: an OAuth2 client credentials token from the
// Identity tenant ({identity_url}/oauth2/token/{app_id}, scope
// isp.audit.events:read), then createQuery and results on the audit API
// ({audit_url}/api/audits/stream/…) with the bearer token and the
// integration's x-api-key.
//
// # Windows
//
// The cursor holds the watermark (every event whose timestamp is before it
// has been returned) and, while a window is being read, the window
// [from, to) and the API's cursorRef of its next results page. With no
// window in progress a poll opens one:
//
//	to   = now - settle_delay, at most watermark + 24h, in whole seconds
//	from = watermark - overlap, never before now - retention + 5m
//
// with createQuery (dateFrom = from, dateTo = to - 1s, sorted by timestamp
// ascending, page_size events per page) and reads its first results page;
// later polls read the next pages. Each page is stored with its events and
// the next cursorRef in one transaction, until a page is empty or has no
// cursor. Then the watermark becomes to.
//
// The API's date bounds are whole seconds and their exact semantics are not
// documented, so correctness never rests on boundary arithmetic: events
// outside [from, to) are dropped on arrival, every window re-reads the
// overlap behind the watermark, and the store drops events it already holds
// by their id, tenantId/uuid, kept for the overlap span (bounded by time, not
// by count, so a burst of any size in one second is safe). Nothing depends on
// the order of the results. A cursorRef the API refuses (400 or 404 on
// results: expired or unknown) runs its window again from the start, halved
// when that still leaves progress, so a window always finishes within a
// cursor's life.
//
// The windows are walked by internal/source/window, as for every windowed
// source; this package supplies the createQuery of a window, the results
// page at a cursorRef (an empty page ends the window) and which refusals
// mean an expired cursor.
//
// A watermark older than retention is reported as a Gap with its span,
// never skipped silently. Poll changes nothing but its token cache:
// repeating a poll from the same cursor is always safe.
package cyberark
