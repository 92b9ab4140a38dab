package sekisho

import (
	"bytes"
	"maps"
	"testing"
)

// The stores' one field encoding (both SQLite and PostgreSQL write it): a
// round trip keeps every map, and the encoding is deterministic.
func TestFieldEncoding(t *testing.T) {
	for _, tc := range []struct {
		name string
		m    map[string][]byte
	}{
		{"Nil", nil},
		{"Empty", map[string][]byte{}},
		{"One", map[string][]byte{"email": []byte("ct")}},
		{"EmptyValueAndName", map[string][]byte{"": {}, "x": {}}},
		{"Binary", map[string][]byte{"a": {0, 0xff, 0}, "b": bytes.Repeat([]byte{7}, 300), "日本": {1}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			enc := EncodeFields(tc.m)
			got, err := DecodeFields(enc, nil)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tc.m) || !maps.EqualFunc(got, tc.m, bytes.Equal) {
				t.Fatalf("decode(encode(%q)) = %q", tc.m, got)
			}
			if !bytes.Equal(EncodeFields(got), enc) {
				t.Fatal("encoding is not deterministic")
			}
		})
	}
}

// DecodeFields with a want set keeps only those names.
func TestFieldDecodingWant(t *testing.T) {
	enc := EncodeFields(map[string][]byte{"a": {1}, "b": {2}, "c": {3}})
	got, err := DecodeFields(enc, map[string]bool{"b": true, "z": true})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || !bytes.Equal(got["b"], []byte{2}) {
		t.Fatalf("want b only, got %q", got)
	}
}

func TestFieldDecodingRejectsCorruption(t *testing.T) {
	good := EncodeFields(map[string][]byte{"name": []byte("value")})
	for _, tc := range []struct {
		name string
		b    []byte
	}{
		{"Truncated", good[:len(good)-1]},
		{"TruncatedName", good[:3]},
		{"NoValueLength", good[:5]},
		{"HugeLength", []byte{0xff, 0xff, 0xff, 0xff, 0x0f}},
		{"HugeValueLength", []byte{1, 'a', 0xff, 0xff, 0xff, 0xff, 0x0f}},
		{"BadVarint", []byte{0xff}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := DecodeFields(tc.b, nil); err == nil {
				t.Fatalf("DecodeFields(%x) succeeded", tc.b)
			}
		})
	}
}
