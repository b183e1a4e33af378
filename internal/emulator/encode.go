package emulator

import "encoding/json"

// The activity encoder below writes exactly what json.Marshal writes for
// activityJSON (a test checks it), several times faster: backlogs of
// hundreds of thousands of activities are generated in tests.

// appendJSON appends the activity's JSON encoding to b.
func (a *activityJSON) appendJSON(b []byte) []byte {
	b = append(b, `{"_links":{"self":{"href":`...)
	b = appendString(b, a.Links.Self.Href)
	b = append(b, `}},"id":`...)
	b = appendString(b, a.ID)
	b = append(b, `,"recordedAt":`...)
	b = appendString(b, a.RecordedAt)
	b = append(b, `,"createdAt":`...)
	b = appendString(b, a.CreatedAt)
	b = append(b, `,"correlationId":`...)
	b = appendString(b, a.CorrelationID)
	if a.InternalCorrelation != nil {
		b = append(b, `,"internalCorrelation":{"sessionId":`...)
		b = appendString(b, a.InternalCorrelation.SessionID)
		b = append(b, '}')
	}
	if a.Actors != nil {
		b = append(b, `,"actors":{`...)
		if a.Actors.Client != nil {
			b = append(b, `"client":`...)
			b = a.Actors.Client.appendJSON(b)
		}
		if a.Actors.User != nil {
			if a.Actors.Client != nil {
				b = append(b, ',')
			}
			b = append(b, `"user":`...)
			b = a.Actors.User.appendJSON(b)
		}
		b = append(b, '}')
	}
	if a.Source != nil {
		b = append(b, `,"source":{"ipAddress":`...)
		b = appendString(b, a.Source.IPAddress)
		b = append(b, `,"userAgent":`...)
		b = appendString(b, a.Source.UserAgent)
		b = append(b, '}')
	}
	b = append(b, `,"action":{"type":`...)
	b = appendString(b, a.Action.Type)
	b = append(b, `,"description":`...)
	b = appendString(b, a.Action.Description)
	b = append(b, `},"resources":`...)
	if a.Resources == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '[')
		for i := range a.Resources {
			if i > 0 {
				b = append(b, ',')
			}
			b = a.Resources[i].appendJSON(b)
		}
		b = append(b, ']')
	}
	b = append(b, `,"result":{"status":`...)
	b = appendString(b, a.Result.Status)
	b = append(b, `,"description":`...)
	b = appendString(b, a.Result.Description)
	if a.Result.ID != "" {
		b = append(b, `,"id":`...)
		b = appendString(b, a.Result.ID)
	}
	b = append(b, '}')
	if len(a.Tags) > 0 {
		b = append(b, `,"tags":[`...)
		for i, t := range a.Tags {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, t)
		}
		b = append(b, ']')
	}
	return append(b, '}')
}

func (a *actorJSON) appendJSON(b []byte) []byte {
	b = append(b, `{"id":`...)
	b = appendString(b, a.ID)
	b = append(b, `,"name":`...)
	b = appendString(b, a.Name)
	if a.Environment != nil {
		b = append(b, `,"environment":{"id":`...)
		b = appendString(b, a.Environment.ID)
		b = append(b, '}')
	}
	if a.Population != nil {
		b = append(b, `,"population":`...)
		b = a.Population.appendJSON(b)
	}
	if a.Href != "" {
		b = append(b, `,"href":`...)
		b = appendString(b, a.Href)
	}
	b = append(b, `,"type":`...)
	b = appendString(b, a.Type)
	return append(b, '}')
}

func (p *popJSON) appendJSON(b []byte) []byte {
	if p.ID == "" {
		return append(b, "{}"...)
	}
	b = append(b, `{"id":`...)
	b = appendString(b, p.ID)
	return append(b, '}')
}

func (r *resourceJSON) appendJSON(b []byte) []byte {
	b = append(b, `{"type":`...)
	b = appendString(b, r.Type)
	b = append(b, `,"id":`...)
	b = appendString(b, r.ID)
	b = append(b, `,"name":`...)
	b = appendString(b, r.Name)
	b = append(b, `,"environment":{"id":`...)
	b = appendString(b, r.Environment.ID)
	b = append(b, '}')
	if r.Population != nil {
		b = append(b, `,"population":`...)
		b = r.Population.appendJSON(b)
	}
	b = append(b, `,"href":`...)
	b = appendString(b, r.Href)
	return append(b, '}')
}

// appendString appends s as a JSON string, escaped as json.Marshal does.
func appendString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			enc, _ := json.Marshal(s) // a string always encodes
			return append(b, enc...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}
