// Package pingone reads PingOne audit activities: OAuth2 client credentials
// against the environment's token endpoint, then half-open recordedAt windows
// over GET /v1/environments/{id}/activities, following _links.next, with a
// settle delay, an overlap re-read and a per-page cursor.
//
// # Windows
//
// The cursor holds the watermark (every activity recorded before it has been
// returned) and, while a window is being paged through, the window [from, to)
// and the URL of its next page. A poll with no window in progress opens one:
//
//	to   = now - settle_delay, at most watermark + 24h, to the millisecond
//	from = watermark - overlap, never before now - 14d + 5m
//
// and reads its first page; a poll with a window in progress reads its next
// page. When the last page of a window has been read, the watermark becomes
// to. Activities outside [from, to) are dropped, so correctness depends only
// on the window bounds and the next-page links, never on the order PingOne
// returns activities in (newest first). A refused next-page link (400 or 404)
// restarts the window from its first page; the overlap and such restarts
// return activities twice, which the store drops by id.
//
// The windows are walked by internal/source/window, as for every windowed
// source; this package supplies the first page of a window (the filter
// URL), the page at a link (with the host pinning of next links) and which
// refusals mean an expired link. A checkpoint set at an instant resumes
// like a window that ended there, re-reading the overlap before it.
//
// Poll changes nothing but its token cache: repeating a poll from the same
// cursor, after a crash or a failed store, is always safe.
package pingone
