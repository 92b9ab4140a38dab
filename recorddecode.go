package sekisho

import (
	"encoding/json"
	"unicode/utf8"
)

// decodeRecordInputFast decodes the common shape of a create request, an
// object of "region", "fields" and "key" whose strings need no unescaping,
// in one pass over data without reflection. It reports false for anything
// else (other keys, escapes, null, a duplicate name, malformed JSON, ...):
// the caller then runs the full decoder, which accepts or refuses it and
// says why. So whatever it returns is what the full decoder would return
// (FuzzDecodeRecordInputFast checks this on arbitrary input).
func decodeRecordInputFast(data []byte) (*RecordInput, bool) {
	if len(data) > MaxRecordBytes {
		return nil, false
	}
	// One copy of the input that every field value is a slice of (the full
	// decoder copies each value; the caller may reuse data).
	buf := make([]byte, len(data))
	copy(buf, data)
	p := fastParser{b: buf}
	p.ws()
	if !p.eat('{') {
		return nil, false
	}
	var in RecordInput
	var seenRegion, seenKey bool
	for first := true; ; first = false {
		p.ws()
		if p.eat('}') {
			if first {
				return nil, false // no fields
			}
			break
		}
		if !first {
			if !p.eat(',') {
				return nil, false
			}
			p.ws()
		}
		name, ok := p.plainString()
		if !ok {
			return nil, false
		}
		p.ws()
		if !p.eat(':') {
			return nil, false
		}
		p.ws()
		switch string(name) {
		case "region", "key":
			v, ok := p.plainString()
			if !ok {
				return nil, false
			}
			if name[0] == 'r' {
				if seenRegion {
					return nil, false
				}
				seenRegion, in.Region = true, string(v)
			} else {
				if seenKey || len(v) > MaxKeyBytes {
					return nil, false
				}
				seenKey, in.Key = true, string(v)
			}
		case "fields":
			if in.Fields != nil {
				return nil, false
			}
			if in.Fields, ok = p.fields(); !ok {
				return nil, false
			}
		default:
			return nil, false
		}
	}
	p.ws()
	if p.i != len(p.b) || in.Fields == nil {
		return nil, false
	}
	return &in, true
}

// fastParser walks JSON bytes for decodeRecordInputFast.
type fastParser struct {
	b []byte
	i int
}

// maxFastDepth bounds the nesting of a field value the fast path takes.
const maxFastDepth = 64

func (p *fastParser) ws() {
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

func (p *fastParser) eat(c byte) bool {
	if p.i < len(p.b) && p.b[p.i] == c {
		p.i++
		return true
	}
	return false
}

// plainString reads a string without escapes or control characters whose
// bytes are valid UTF-8, and returns its bytes (without the quotes).
func (p *fastParser) plainString() ([]byte, bool) {
	if !p.eat('"') {
		return nil, false
	}
	start := p.i
	ascii := true
	for p.i < len(p.b) {
		c := p.b[p.i]
		switch {
		case c == '"':
			s := p.b[start:p.i]
			p.i++
			if !ascii && !utf8.Valid(s) {
				return nil, false
			}
			return s, true
		case c == '\\' || c < 0x20:
			return nil, false
		case c >= 0x80:
			ascii = false
		}
		p.i++
	}
	return nil, false
}

// fields reads the "fields" object: names without escapes, each once, and
// any valid JSON value, kept as its bytes.
func (p *fastParser) fields() (map[string]json.RawMessage, bool) {
	if !p.eat('{') {
		return nil, false
	}
	out := make(map[string]json.RawMessage, 12)
	for first := true; ; first = false {
		p.ws()
		if p.eat('}') {
			return out, true
		}
		if !first {
			if !p.eat(',') {
				return nil, false
			}
			p.ws()
		}
		name, ok := p.plainString()
		if !ok {
			return nil, false
		}
		p.ws()
		if !p.eat(':') {
			return nil, false
		}
		p.ws()
		start := p.i
		if !p.value(1) {
			return nil, false
		}
		k := string(name)
		if _, dup := out[k]; dup {
			return nil, false
		}
		out[k] = json.RawMessage(p.b[start:p.i:p.i])
	}
}

// value skips one JSON value, checking its grammar as encoding/json does.
func (p *fastParser) value(depth int) bool {
	if p.i >= len(p.b) || depth > maxFastDepth {
		return false
	}
	switch c := p.b[p.i]; {
	case c == '"':
		return p.str()
	case c == '{':
		p.i++
		for first := true; ; first = false {
			p.ws()
			if p.eat('}') {
				return true
			}
			if !first {
				if !p.eat(',') {
					return false
				}
				p.ws()
			}
			if p.i >= len(p.b) || p.b[p.i] != '"' || !p.str() {
				return false
			}
			p.ws()
			if !p.eat(':') {
				return false
			}
			p.ws()
			if !p.value(depth + 1) {
				return false
			}
		}
	case c == '[':
		p.i++
		for first := true; ; first = false {
			p.ws()
			if p.eat(']') {
				return true
			}
			if !first {
				if !p.eat(',') {
					return false
				}
				p.ws()
			}
			if !p.value(depth + 1) {
				return false
			}
		}
	case c == '-' || c >= '0' && c <= '9':
		return p.number()
	case c == 't':
		return p.lit("true")
	case c == 'f':
		return p.lit("false")
	case c == 'n':
		return p.lit("null")
	}
	return false
}

func (p *fastParser) lit(s string) bool {
	if len(p.b)-p.i >= len(s) && string(p.b[p.i:p.i+len(s)]) == s {
		p.i += len(s)
		return true
	}
	return false
}

// str skips a string with any valid escapes; like encoding/json's scanner
// it takes any byte from 0x20 up (invalid UTF-8 is kept as it is in a raw
// value).
func (p *fastParser) str() bool {
	p.i++ // the opening quote
	for p.i < len(p.b) {
		c := p.b[p.i]
		switch {
		case c == '"':
			p.i++
			return true
		case c < 0x20:
			return false
		case c == '\\':
			p.i++
			if p.i >= len(p.b) {
				return false
			}
			switch p.b[p.i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				p.i++
			case 'u':
				if len(p.b)-p.i < 5 {
					return false
				}
				for _, h := range p.b[p.i+1 : p.i+5] {
					if !(h >= '0' && h <= '9' || h >= 'a' && h <= 'f' || h >= 'A' && h <= 'F') {
						return false
					}
				}
				p.i += 5
			default:
				return false
			}
		default:
			p.i++
		}
	}
	return false
}

func (p *fastParser) digits() int {
	n := 0
	for p.i < len(p.b) && p.b[p.i] >= '0' && p.b[p.i] <= '9' {
		p.i++
		n++
	}
	return n
}

// number skips a JSON number: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (p *fastParser) number() bool {
	p.eat('-')
	if p.i >= len(p.b) {
		return false
	}
	if p.b[p.i] == '0' {
		p.i++
	} else if p.digits() == 0 {
		return false
	}
	if p.eat('.') && p.digits() == 0 {
		return false
	}
	if p.i < len(p.b) && (p.b[p.i] == 'e' || p.b[p.i] == 'E') {
		p.i++
		if !p.eat('+') {
			p.eat('-')
		}
		if p.digits() == 0 {
			return false
		}
	}
	return true
}
