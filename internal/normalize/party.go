package normalize

import "github.com/auditrelay/auditrelay/internal/jsonscan"

// party is a user, client, group or other object an event names, as raw
// string contents of the provider JSON.
type party struct {
	id, name, typ, email, display []byte
}

func (p party) empty() bool { return len(p.id) == 0 && len(p.name) == 0 }

// appendUser appends an OCSF user object under k, of type_id typ (0 for
// none), or nothing when p names nobody.
func appendUser(b []byte, k string, p party, typ int) []byte {
	if p.empty() {
		return b
	}
	m := len(b)
	b = open(b, k)
	b = putRaw(b, "uid", p.id)
	b = putRaw(b, "name", p.name)
	b = putRaw(b, "display_name", p.display)
	if isEmail(p.email) {
		b = putRaw(b, "email_addr", p.email)
	}
	if typ != 0 {
		b = putInt(b, "type_id", int64(typ))
		b = putStr(b, "type", userTypeName(typ))
	}
	return closeObj(b, m)
}

// appendNamed appends an object with uid, name and (when typ is set) type
// under k, or nothing when p names nothing: an OCSF group, service or
// managed entity.
func appendNamed(b []byte, k string, p party, withType bool) []byte {
	if p.empty() {
		return b
	}
	m := len(b)
	b = open(b, k)
	b = putRaw(b, "uid", p.id)
	b = putRaw(b, "name", p.name)
	if withType {
		b = putRaw(b, "type", p.typ)
	}
	return closeObj(b, m)
}

// isEmail reports whether v looks like the address OCSF's email_t
// accepts: one @ with text on both sides and a dot in the domain.
func isEmail(v []byte) bool {
	at := -1
	for i, c := range v {
		switch {
		case c == '@':
			if at >= 0 {
				return false
			}
			at = i
		case c <= ' ' || c == '"' || c == '\\' || c >= 0x80 || c == '(' || c == ')' || c == ',' || c == ';' || c == ':' || c == '<' || c == '>' || c == '[' || c == ']':
			return false
		}
	}
	if at < 1 || at == len(v)-1 {
		return false
	}
	dot := false
	for _, c := range v[at+1:] {
		switch {
		case c == '.':
			dot = true
		case c == '-' || ('0' <= c && c <= '9') || ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z'):
		default:
			return false
		}
	}
	return dot && v[at+1] != '.'
}

// isIP reports whether v is an IPv4 or IPv6 address in text form.
func isIP(v []byte) bool {
	if len(v) == 0 || len(v) > 45 {
		return false
	}
	colons := 0
	for _, c := range v {
		if c == ':' {
			colons++
		}
	}
	if colons == 0 {
		return isIPv4(v)
	}
	if colons < 2 {
		return false
	}
	// IPv6: hex groups of up to 4 digits, at most one "::", an optional
	// dotted IPv4 tail.
	groups, double := 0, false
	for i := 0; i < len(v); {
		if v[i] == ':' {
			if i+1 < len(v) && v[i+1] == ':' {
				if double {
					return false
				}
				double = true
				i += 2
				continue
			}
			if i == 0 || i == len(v)-1 {
				return false
			}
			i++
			continue
		}
		j := i
		for j < len(v) && v[j] != ':' && v[j] != '.' {
			if !jsonscan.IsHex(v[j]) {
				return false
			}
			j++
		}
		if j < len(v) && v[j] == '.' {
			if !isIPv4(v[i:]) {
				return false
			}
			groups += 2
			break
		}
		if j-i == 0 || j-i > 4 {
			return false
		}
		groups++
		i = j
	}
	return groups == 8 && !double || groups < 8 && double
}

func isIPv4(v []byte) bool {
	parts, n, digits := 0, 0, 0
	for i := 0; i <= len(v); i++ {
		if i == len(v) || v[i] == '.' {
			if digits == 0 || n > 255 {
				return false
			}
			parts++
			n, digits = 0, 0
			continue
		}
		c := v[i]
		if c < '0' || c > '9' || digits == 3 || (digits == 1 && n == 0) {
			return false
		}
		n = n*10 + int(c-'0')
		digits++
	}
	return parts == 4
}
