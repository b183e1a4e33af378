package normalize

import "time"

// parseTimeMS parses the RFC 3339 text t (any fraction, Z or an offset;
// a space for the T is accepted) to Unix milliseconds, without
// allocating. Fractions beyond milliseconds are truncated.
func parseTimeMS(t []byte) (int64, bool) {
	if len(t) < 20 || t[4] != '-' || t[7] != '-' || (t[10] != 'T' && t[10] != 't' && t[10] != ' ') || t[13] != ':' || t[16] != ':' {
		return 0, false
	}
	num := func(b []byte) (int, bool) {
		n := 0
		for _, c := range b {
			if c < '0' || c > '9' {
				return 0, false
			}
			n = n*10 + int(c-'0')
		}
		return n, true
	}
	year, ok1 := num(t[0:4])
	month, ok2 := num(t[5:7])
	day, ok3 := num(t[8:10])
	hour, ok4 := num(t[11:13])
	minute, ok5 := num(t[14:16])
	sec, ok6 := num(t[17:19])
	if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6) || month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 || minute > 59 || sec > 60 {
		return 0, false
	}
	i, ms := 19, 0
	if t[i] == '.' {
		i++
		start := i
		for i < len(t) && t[i] >= '0' && t[i] <= '9' {
			if i-start < 3 {
				ms = ms*10 + int(t[i]-'0')
			}
			i++
		}
		if i == start {
			return 0, false
		}
		for n := i - start; n < 3; n++ {
			ms *= 10
		}
	}
	offset := 0
	switch {
	case i == len(t)-1 && (t[i] == 'Z' || t[i] == 'z'):
	case i == len(t)-6 && (t[i] == '+' || t[i] == '-') && t[i+3] == ':':
		h, okh := num(t[i+1 : i+3])
		m, okm := num(t[i+4 : i+6])
		if !okh || !okm || h > 23 || m > 59 {
			return 0, false
		}
		offset = (h*60 + m) * 60
		if t[i] == '-' {
			offset = -offset
		}
	default:
		return 0, false
	}
	if day > daysIn(time.Month(month), year) {
		return 0, false
	}
	sec64 := time.Date(year, time.Month(month), day, hour, minute, sec, 0, time.UTC).Unix() - int64(offset)
	return sec64*1000 + int64(ms), true
}

func daysIn(m time.Month, year int) int {
	return time.Date(year, m+1, 0, 0, 0, 0, 0, time.UTC).Day()
}
