package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strings"

	"github.com/sekisho/sekisho"
)

// ProblemInvalidJSON is the problem type of a request body that holds the
// same key twice in one object.
const ProblemInvalidJSON = "invalid-json"

// duplicateKey returns the first key that appears twice in one object of
// the JSON text b, and whether there is one. Keys are compared exactly and without case:
// encoding/json matches struct fields without case and keeps the last of
// two, so {"region":"jp","REGION":"th"} would silently mean th. A request
// body with such a key is refused: two readers of it (a proxy, a log, the
// server) must not disagree on what it says.
func duplicateKey(b []byte) (string, bool, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	type frame struct {
		keys    map[string]bool // lower-cased keys of an object; nil for an array
		wantKey bool
	}
	var stack []*frame
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			return "", false, nil
		}
		if err != nil {
			return "", false, err
		}
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		if top != nil && top.keys != nil && top.wantKey {
			if d, ok := tok.(json.Delim); ok && d == '}' {
				stack = stack[:len(stack)-1]
				if len(stack) > 0 && stack[len(stack)-1].keys != nil {
					stack[len(stack)-1].wantKey = true
				}
				continue
			}
			k, _ := tok.(string)
			lk := strings.ToLower(k)
			if top.keys[lk] {
				return k, true, nil
			}
			top.keys[lk] = true
			top.wantKey = false
			continue
		}
		switch tok {
		case json.Delim('{'):
			stack = append(stack, &frame{keys: map[string]bool{}, wantKey: true})
			continue
		case json.Delim('['):
			stack = append(stack, &frame{})
			continue
		case json.Delim(']'):
			stack = stack[:len(stack)-1]
		}
		// A value ended (a scalar, or a closed array): the object around
		// it wants its next key.
		if len(stack) > 0 && stack[len(stack)-1].keys != nil {
			stack[len(stack)-1].wantKey = true
		}
	}
}

// checkDuplicateKeys refuses a body with a duplicate key (invalid-json).
func checkDuplicateKeys(b []byte) error {
	k, dup, err := duplicateKey(b)
	if err != nil {
		return nil // not JSON: the decoder says why
	}
	if dup {
		return &sekisho.Error{Code: sekisho.EInvalid, Type: ProblemInvalidJSON,
			Message: "request body holds the key " + quoteKey(k) + " twice in one object (keys are compared without case); send each key once"}
	}
	return nil
}

func quoteKey(k string) string {
	b, _ := json.Marshal(k)
	if len(b) > 80 {
		return string(b[:77]) + "...\""
	}
	return string(b)
}
