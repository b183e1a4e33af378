// Package pingone reads PingOne audit activities: OAuth2 client credentials
// against the environment's token endpoint, then half-open recordedAt windows
// over GET /v1/environments/{id}/activities, following _links.next, with a
// settle delay, an overlap re-read and a per-page cursor.
package pingone
