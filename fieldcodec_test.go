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

// DecodeFieldsOwned decodes what DecodeFields does, without copies: its
// values are b's bytes (control: DecodeFields' are not), and an append to
// one value does not write over the next field in b.
func TestFieldDecodingOwned(t *testing.T) {
	m := map[string][]byte{"a": {1, 2}, "b": {3}, "c": {}, "d": bytes.Repeat([]byte{9}, 200)}
	enc := EncodeFields(m)
	owned, err := DecodeFieldsOwned(enc)
	if err != nil {
		t.Fatal(err)
	}
	copied, err := DecodeFields(enc, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !maps.EqualFunc(owned, m, bytes.Equal) || !maps.EqualFunc(copied, m, bytes.Equal) {
		t.Fatalf("owned %q, copied %q, want %q", owned, copied, m)
	}
	enc[bytes.Index(enc, []byte{1, 2})] = 7
	if owned["a"][0] != 7 || copied["a"][0] != 1 {
		t.Fatalf("after a change to the buffer: owned a = %v (want its bytes: 7), copied a = %v (want 1)", owned["a"], copied["a"])
	}
	_ = append(owned["a"], 0xee, 0xee, 0xee)
	if got, err := DecodeFieldsOwned(enc); err != nil || !bytes.Equal(got["b"], []byte{3}) {
		t.Fatalf("an append to a wrote over b: %q, %v", got, err)
	}
	for _, b := range [][]byte{{0xff}, enc[:len(enc)-1]} {
		if _, err := DecodeFieldsOwned(b); err == nil {
			t.Fatalf("DecodeFieldsOwned(%x) succeeded", b)
		}
	}
}

// Whatever the bytes, DecodeFieldsOwned and DecodeFields agree: both fail,
// or both give the same fields.
func FuzzDecodeFields(f *testing.F) {
	f.Add(EncodeFields(map[string][]byte{"a": {1}, "b": {2, 3}}))
	f.Add([]byte{0xff})
	f.Add([]byte{1, 'a', 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, b []byte) {
		copied, err1 := DecodeFields(b, nil)
		owned, err2 := DecodeFieldsOwned(bytes.Clone(b))
		if (err1 == nil) != (err2 == nil) || !maps.EqualFunc(copied, owned, bytes.Equal) {
			t.Fatalf("DecodeFields = %q, %v; DecodeFieldsOwned = %q, %v", copied, err1, owned, err2)
		}
	})
}
