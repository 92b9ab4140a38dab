package schemas

import (
	"bytes"
	"encoding/json"

	"go.yaml.in/yaml/v3"

	"github.com/sekisho/sekisho"
)

// Parse decodes a schema from JSON or YAML (JSON is YAML, but JSON input
// is decoded strictly as JSON so that error positions are exact) and validates
// it. Unknown keys are refused, so that a typo cannot silently drop a setting.
func Parse(data []byte) (*sekisho.Schema, error) {
	var s sekisho.Schema
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) == 0 {
		return nil, sekisho.Errorf(sekisho.EInvalid, "schema is empty")
	}
	if trimmed[0] == '{' {
		dec := json.NewDecoder(bytes.NewReader(trimmed))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&s); err != nil {
			return nil, sekisho.Errorf(sekisho.EInvalid, "schema is not valid JSON: %v", err)
		}
		if dec.More() {
			return nil, sekisho.Errorf(sekisho.EInvalid, "schema has trailing data after the JSON object")
		}
	} else {
		dec := yaml.NewDecoder(bytes.NewReader(trimmed))
		dec.KnownFields(true)
		if err := dec.Decode(&s); err != nil {
			return nil, sekisho.Errorf(sekisho.EInvalid, "schema is not valid YAML: %v", err)
		}
	}
	if err := s.Validate(); err != nil {
		return nil, err
	}
	return &s, nil
}
