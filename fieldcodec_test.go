package postgres

import (
	"bytes"
	"maps"
	"testing"
)

func TestMapEncoding(t *testing.T) {
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
			enc := encodeMap(tc.m)
			got, err := decodeMap(enc)
			if err != nil {
				t.Fatal(err)
			}
			if !maps.EqualFunc(got, tc.m, bytes.Equal) {
				t.Fatalf("decode(encode(%q)) = %q", tc.m, got)
			}
			if !bytes.Equal(encodeMap(got), enc) {
				t.Fatal("encoding is not deterministic")
			}
		})
	}
}

func TestMapDecodingRejectsCorruption(t *testing.T) {
	good := encodeMap(map[string][]byte{"name": []byte("value")})
	for _, tc := range []struct {
		name string
		b    []byte
	}{
		{"UnknownFormat", append([]byte{2}, good[1:]...)},
		{"Truncated", good[:len(good)-1]},
		{"Trailing", append(bytes.Clone(good), 0)},
		{"HugeCount", []byte{1, 0xff, 0xff, 0xff, 0xff, 0x0f}},
		{"HugeLength", []byte{1, 1, 0xff, 0xff, 0xff, 0xff, 0x0f}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := decodeMap(tc.b); err == nil {
				t.Fatalf("decodeMap(%x) succeeded", tc.b)
			}
		})
	}
}
