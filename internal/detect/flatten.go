package detect

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// Fields is a raw provider event flattened: each leaf value under its
// dotted path ("action.type", "actors.user.id", "customData.geoip_country_name").
// Arrays are transparent: every element's leaves are listed under the
// array's path ("resources.id" holds the id of every resource), so a field
// holds one value, or a []any of them when the event has several. JSON null
// and empty arrays and objects leave no field; numbers are json.Number, so
// that they print exactly as the provider sent them.
type Fields map[string]any

// Flatten decodes data, one JSON object, into Fields.
func Flatten(data []byte) (Fields, error) {
	d := json.NewDecoder(bytes.NewReader(data))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return nil, fmt.Errorf("detect: flatten: %w", err)
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("detect: flatten: the event is a JSON %s, not an object", jsonKind(v))
	}
	if d.More() {
		return nil, fmt.Errorf("detect: flatten: data after the event's object")
	}
	f := Fields{}
	for k, val := range obj {
		f.add(k, val)
	}
	return f, nil
}

func (f Fields) add(path string, v any) {
	switch x := v.(type) {
	case nil:
	case map[string]any:
		for k, val := range x {
			f.add(path+"."+k, val)
		}
	case []any:
		for _, val := range x {
			f.add(path, val)
		}
	default:
		switch prev := f[path].(type) {
		case nil:
			f[path] = x
		case []any:
			f[path] = append(prev, x)
		default:
			f[path] = []any{prev, x}
		}
	}
}

// Values returns the values of field: none, one or several.
func (f Fields) Values(field string) []any {
	switch v := f[field].(type) {
	case nil:
		return nil
	case []any:
		return v
	default:
		return []any{v}
	}
}

// String returns the field's first value as text, or "" when it has none.
func (f Fields) String(field string) string {
	vs := f.Values(field)
	if len(vs) == 0 {
		return ""
	}
	return fmt.Sprint(vs[0])
}

func jsonKind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case []any:
		return "array"
	case string:
		return "string"
	case bool:
		return "boolean"
	}
	return "number"
}
