package splunk

import (
	"encoding/json"
	"net/http"
	"strconv"
)

// answer is a HEC reply: {"text":…,"code":N} plus, on success with indexer
// acknowledgment, "ackId", and on a refused event, "invalid-event-number".
type answer struct {
	Text         string  `json:"text"`
	Code         *int    `json:"code"`
	AckID        *uint64 `json:"ackId"`
	InvalidEvent *int    `json:"invalid-event-number"`
}

// parseAnswer decodes a HEC reply. It reports false when b is not one
// (a proxy's page, an empty body).
func parseAnswer(b []byte) (answer, bool) {
	var a answer
	if err := json.Unmarshal(b, &a); err != nil || a.Code == nil {
		return answer{}, false
	}
	if a.InvalidEvent != nil && *a.InvalidEvent < 0 {
		a.InvalidEvent = nil
	}
	return a, true
}

// kind is what the sink does about a reply.
type kind int

const (
	kindOK          kind = iota // accepted (code 0), or healthy (17)
	kindPoison                  // an event is refused: park it, send the rest
	kindTooLarge                // 413: split the request
	kindPermanent               // stop the sink until its config is fixed
	kindThrottled               // wait Retry-After (or backoff), send again
	kindTransient               // send again after backoff
	kindAckDisabled             // the token has no indexer acknowledgment
)

// String names a kind in test failures.
func (k kind) String() string {
	switch k {
	case kindOK:
		return "ok"
	case kindPoison:
		return "poison"
	case kindTooLarge:
		return "too-large"
	case kindPermanent:
		return "permanent"
	case kindThrottled:
		return "throttled"
	case kindTransient:
		return "transient"
	case kindAckDisabled:
		return "ack-disabled"
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// Operator fixes.
const (
	fixToken         = "HEC refused the token: copy the value of an enabled HEC token (Settings > Data inputs > HTTP Event Collector) into token, and check that HEC is enabled in its Global Settings"
	fixTokenDisabled = "the HEC token is disabled: enable it in Settings > Data inputs > HTTP Event Collector, or set another token"
	fixAuth          = "HEC got no usable token: set token to the token value alone, without \"Splunk \""
	fixIndex         = "the token may not write to this index: add the index to the token's Allowed Indexes (and make sure it exists), or set index to one of them, or leave it empty for the token's default index"
	fixChannel       = "the token has indexer acknowledgment enabled: set ack: true (recommended), or disable acknowledgment on the token"
	fixBadChannel    = "HEC refused the channel GUID: delete the sink's channel file so that a new one is made"
	fixAckDisabled   = "the token does not have indexer acknowledgment: tick Enable indexer acknowledgement on the HEC token, or set ack: false (weaker: HEC received the events, not that they were indexed)"
	fixQuery         = "HEC refused query-string authentication: leave the token out of url"
	fixURL           = "no HTTP Event Collector at this address: check url (https://host:8088 by default) and that HEC is enabled in its Global Settings"
	fixRefused       = "HEC refused the request: check url, token and index, and the HEC logs (index=_internal sourcetype=splunkd component=HttpInputDataHandler)"
)

// verdict is the classification of one reply.
type verdict struct {
	kind kind
	fix  string
}

// classify returns what to do about a reply with HTTP status and, when ok,
// its decoded answer a. Known HEC codes decide over the status.
func classify(status int, a answer, ok bool) verdict {
	if ok {
		switch *a.Code {
		case 0, 17:
			if status/100 == 2 {
				return verdict{kind: kindOK}
			}
		case 1:
			return verdict{kindPermanent, fixTokenDisabled}
		case 4, 21, 22:
			return verdict{kindPermanent, fixToken}
		case 2, 3:
			return verdict{kindPermanent, fixAuth}
		case 5:
			return verdict{kindPermanent, "HEC got a request without events: this is a bug in auditrelay, report it"}
		case 6, 12, 13, 15:
			return verdict{kind: kindPoison}
		case 7:
			return verdict{kindPermanent, fixIndex}
		case 8:
			return verdict{kind: kindTransient}
		case 9, 18, 19, 20:
			return verdict{kind: kindThrottled}
		case 10:
			return verdict{kindPermanent, fixChannel}
		case 11:
			return verdict{kindPermanent, fixBadChannel}
		case 14:
			return verdict{kindAckDisabled, fixAckDisabled}
		case 16:
			return verdict{kindPermanent, fixQuery}
		}
	}
	switch {
	case status/100 == 2:
		// Not HEC's answer (a proxy?): accepted or not we cannot tell, so
		// sending again is the safe side.
		return verdict{kind: kindTransient}
	case status == http.StatusRequestEntityTooLarge:
		return verdict{kind: kindTooLarge}
	case status == http.StatusTooManyRequests, status == http.StatusServiceUnavailable:
		return verdict{kind: kindThrottled}
	case status == http.StatusUnauthorized, status == http.StatusForbidden:
		return verdict{kindPermanent, fixToken}
	case status == http.StatusNotFound, status == http.StatusMethodNotAllowed:
		return verdict{kindPermanent, fixURL}
	case status == http.StatusRequestTimeout, status >= 500:
		return verdict{kind: kindTransient}
	}
	return verdict{kindPermanent, fixRefused}
}
