package sekisho

import (
	"encoding/binary"
	"sort"
)

// EncodeFields encodes a map of field name to ciphertext in a compact,
// deterministic binary form for the stores: for each field in name order,
// uvarint length and name, uvarint length and ciphertext.
func EncodeFields(m map[string][]byte) []byte {
	names := make([]string, 0, len(m))
	n := 0
	for k, v := range m {
		names = append(names, k)
		n += len(k) + len(v) + 4
	}
	sort.Strings(names)
	b := make([]byte, 0, n)
	for _, k := range names {
		b = binary.AppendUvarint(b, uint64(len(k)))
		b = append(b, k...)
		b = binary.AppendUvarint(b, uint64(len(m[k])))
		b = append(b, m[k]...)
	}
	return b
}

// DecodeFields decodes EncodeFields' output. Only the names in want are
// kept when want is not nil, so a read of two fields copies two ciphertexts.
func DecodeFields(b []byte, want map[string]bool) (map[string][]byte, error) {
	return decodeFields(b, want, true)
}

// DecodeFieldsOwned is DecodeFields of every field of a buffer the caller
// owns and no longer uses itself (a row's column scanned into a fresh
// slice): the values are slices of b, each capped at its own end so that
// an append to one never writes over the next, not copies of them.
func DecodeFieldsOwned(b []byte) (map[string][]byte, error) {
	return decodeFields(b, nil, false)
}

func decodeFields(b []byte, want map[string]bool, copied bool) (map[string][]byte, error) {
	m := make(map[string][]byte, countFields(b))
	for len(b) > 0 {
		n, k := binary.Uvarint(b)
		if k <= 0 || uint64(len(b)-k) < n {
			return nil, Errorf(EInternal, "stored fields are corrupt")
		}
		name := string(b[k : k+int(n)])
		b = b[k+int(n):]
		n, k = binary.Uvarint(b)
		if k <= 0 || uint64(len(b)-k) < n {
			return nil, Errorf(EInternal, "stored fields are corrupt")
		}
		if want == nil || want[name] {
			v := b[k : k+int(n) : k+int(n)]
			if copied {
				v = append([]byte(nil), v...)
			}
			m[name] = v
		}
		b = b[k+int(n):]
	}
	return m, nil
}

// countFields is how many fields b holds, as far as it can be read (a size
// hint: decodeFields checks the encoding).
func countFields(b []byte) int {
	c := 0
	for len(b) > 0 {
		for range 2 {
			n, k := binary.Uvarint(b)
			if k <= 0 || uint64(len(b)-k) < n {
				return c
			}
			b = b[k+int(n):]
		}
		c++
	}
	return c
}
