package sentinel

import (
	"github.com/auditrelay/auditrelay/internal/jsonscan"
	"github.com/auditrelay/auditrelay/internal/normalize"
)

// This file reads fields out of JSON that is known to be valid (the
// normalizer has decoded it) without reflection: the auditrelay format
// needs a dozen values of every event, and decoding the whole event a
// second time with encoding/json would cost more than everything else the
// encoder does. The scanning is jsonscan's, as in the normalizers. A
// PingOne activity's values come from its normalizer's pass instead
// (normalize.PingOneEventColumns); this reads them out of the events of
// other providers, which may carry fields of the same names.

// eachField calls fn with the raw key (without quotes) and the raw value of
// every member of the JSON object obj. It does nothing when obj is not an
// object.
func eachField(obj []byte, fn func(key, val []byte)) {
	i := jsonscan.SkipSpace(obj, 0)
	if i >= len(obj) || obj[i] != '{' {
		return
	}
	i++
	for {
		i = jsonscan.SkipSpace(obj, i)
		if i >= len(obj) || obj[i] != '"' {
			return
		}
		kEnd := jsonscan.SkipValue(obj, i)
		if kEnd >= len(obj) {
			return // an object does not end with a key
		}
		key := obj[i+1 : kEnd-1]
		i = jsonscan.SkipSpace(obj, kEnd)
		if i >= len(obj) || obj[i] != ':' {
			return
		}
		i = jsonscan.SkipSpace(obj, i+1)
		vEnd := jsonscan.SkipValue(obj, i)
		fn(key, obj[i:vEnd])
		i = jsonscan.SkipSpace(obj, vEnd)
		if i >= len(obj) || obj[i] != ',' {
			return
		}
		i++
	}
}

// fieldOf returns the raw value of obj.key, nil when absent; the last one
// when the key repeats, as encoding/json does.
func fieldOf(obj []byte, key string) []byte {
	var out []byte
	eachField(obj, func(k, v []byte) {
		if string(k) == key {
			out = v
		}
	})
	return out
}

// scanParty reads an actor object.
func scanParty(obj []byte) normalize.PingOneParty {
	var p normalize.PingOneParty
	eachField(obj, func(k, v []byte) {
		switch string(k) {
		case "id":
			p.ID = v
		case "name":
			p.Name = v
		case "type":
			p.Type = v
		case "href":
			p.Href = v
		case "environment":
			p.EnvironmentID = fieldOf(v, "id")
		case "population":
			p.PopulationID = fieldOf(v, "id")
		}
	})
	return p
}

// scanAuditActivity reads what the auditrelay format needs of a valid
// activity object.
func scanAuditActivity(data []byte) normalize.PingOneColumns {
	var a normalize.PingOneColumns
	eachField(data, func(k, v []byte) {
		switch string(k) {
		case "recordedAt":
			a.RecordedAt = v
		case "createdAt":
			a.CreatedAt = v
		case "internalCorrelation":
			a.InternalCorrelation = v
		case "resources":
			a.Resources = v
		case "actors":
			eachField(v, func(k, v []byte) {
				switch string(k) {
				case "client":
					a.Client = scanParty(v)
				case "user":
					a.User = scanParty(v)
				}
			})
		case "result":
			eachField(v, func(k, v []byte) {
				switch string(k) {
				case "status":
					a.ResultStatus = v
				case "id":
					a.ResultID = v
				}
			})
		case "_links":
			a.Href = fieldOf(fieldOf(v, "self"), "href")
		}
	})
	return a
}
