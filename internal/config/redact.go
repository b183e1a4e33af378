package config

import (
	"bytes"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/auditrelay/auditrelay/internal/secret"
	"github.com/auditrelay/auditrelay/internal/units"
)

// Redacted returns the effective configuration as YAML, for
// `auditrelay validate --print`: every key with its value after expansion
// and defaults, secrets as [redacted], durations as "30s" or "14d" and sizes
// as "100MiB". A $ in a value prints as $$, so that the output reads back as
// the same configuration, but for its secrets.
func (c *Config) Redacted() ([]byte, error) {
	n, err := redactedNode(reflect.ValueOf(c).Elem())
	if err != nil {
		return nil, fmt.Errorf("print configuration: %w", err)
	}
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(n); err != nil {
		return nil, fmt.Errorf("print configuration: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("print configuration: %w", err)
	}
	return buf.Bytes(), nil
}

// redactedNode builds the YAML node of v. A secret is never read: it prints
// as secret.Redacted (or as empty when unset). A nil pointer yields nil, and
// the key holding it is left out, as is a struct (not a block) whose blocks
// are all unset.
func redactedNode(v reflect.Value) (*yaml.Node, error) {
	switch v.Type() {
	case reflect.TypeFor[secret.String]():
		if v.Interface().(secret.String).IsZero() {
			return scalarNode("!!str", ""), nil
		}
		return scalarNode("!!str", secret.Redacted), nil
	case reflect.TypeFor[units.Duration]():
		return scalarNode("!!str", units.FormatDuration(time.Duration(v.Int()))), nil
	case reflect.TypeFor[units.ByteSize]():
		return scalarNode("!!str", units.ByteSize(v.Int()).String()), nil
	}
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			return nil, nil
		}
		return redactedNode(v.Elem())
	case reflect.Struct:
		m := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
		for _, f := range fieldsOf(v.Type()) {
			child, err := redactedNode(v.Field(f.index))
			if err != nil {
				return nil, err
			}
			// A group of optional blocks none of which is set (store:
			// without postgres:) is left out like an unset block.
			if child != nil && !(v.Field(f.index).Kind() == reflect.Struct && child.Kind == yaml.MappingNode && len(child.Content) == 0) {
				m.Content = append(m.Content, scalarNode("!!str", f.key), child)
			}
		}
		if len(m.Content) == 0 {
			m.Style = yaml.FlowStyle
		}
		return m, nil
	case reflect.Slice:
		s := &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq"}
		if v.Type().Elem().Kind() == reflect.String {
			s.Style = yaml.FlowStyle
		}
		for i := range v.Len() {
			child, err := redactedNode(v.Index(i))
			if err != nil {
				return nil, err
			}
			if child == nil {
				child = scalarNode("!!null", "null")
			}
			s.Content = append(s.Content, child)
		}
		return s, nil
	case reflect.String:
		// Escaped, so that the output reads back as the same value.
		return scalarNode("!!str", strings.ReplaceAll(v.String(), "$", "$$")), nil
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return scalarNode("", strconv.FormatInt(v.Int(), 10)), nil
	case reflect.Float32, reflect.Float64:
		return scalarNode("", strconv.FormatFloat(v.Float(), 'g', -1, v.Type().Bits())), nil
	case reflect.Bool:
		return scalarNode("", strconv.FormatBool(v.Bool())), nil
	}
	return nil, fmt.Errorf("cannot print a value of type %s", v.Type())
}

// scalarNode returns a scalar node. The encoder quotes a !!str value that
// would otherwise read as another type; an empty tag writes value as is.
func scalarNode(tag, value string) *yaml.Node {
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: tag, Value: value}
}
