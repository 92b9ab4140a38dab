package sekisho

import (
	"reflect"
	"testing"
)

// The fast path returns what the full decoder returns, or declines.
func FuzzDecodeRecordInputFast(f *testing.F) {
	for _, s := range []string{
		`{"region":"jp","fields":{"phone":"+819012345678","usage_summary":{"a":[1,2.5e-3,true,false,null,"\u00e9\n"]}}}`,
		`{"region":"jp","fields":{"phone":"a","phone":"b"}}`,
		`{"region":"jp","region":"th","fields":{}}`,
		`{"fields":{}}`,
		`{"fields":{"n":null}}`,
		` {"key":"k1","region":"th","fields":{"名前":"山田"}} `,
		`{"region":"jp","fields":{"n":1}} x`,
		`{"region":"jp","fields":{"n":1}} {}`,
		`{"Region":"jp","fields":{"n":1}}`,
		`{"region":"jp","fields":{"n":01}}`,
		`{"region":"jp","fields":{"n":-0.5E+7}}`,
		`{"region":"j\"p","fields":{"n":1}}`,
		`{"region":"jp","fields":{"n":1,}}`,
		`{"region":"jp","fields":{"n":"\ud800"}}`,
		`{"region":"jp","fields":{"n":{"a":1,"a":2}}}`,
		`{"region":"jp","fields":{"n":1},"retain_until":"2030-01-01T00:00:00Z"}`,
		`{"region":null,"fields":{"n":1}}`,
		"{\"region\":\"jp\",\"fields\":{\"n\":\"\xff\"}}",
		"{\"region\":\"\xff\",\"fields\":{\"n\":1}}",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		fast, ok := decodeRecordInputFast(data)
		full, err := decodeRecordInputFull(data)
		if !ok {
			return
		}
		if err != nil {
			t.Fatalf("fast path accepted what the full decoder refuses (%v): %q", err, data)
		}
		if !reflect.DeepEqual(fast, full) {
			t.Fatalf("fast %+v, full %+v for %q", fast, full, data)
		}
	})
}

// The fast path takes the shape an import's rows have (a control for the
// fuzz test above, which passes trivially if the fast path always declines).
func TestDecodeRecordInputFastTakesCommonShape(t *testing.T) {
	for _, s := range []string{
		`{"region":"jp","fields":{"phone":"+819012345678","usage_summary":{"calls_per_week":41,"stickers_bought":[6]}}}`,
		`{"key":"row-1","region":"th","fields":{"display_name":"สมชาย","note":"a\"b"}}`,
	} {
		fast, ok := decodeRecordInputFast([]byte(s))
		if !ok {
			t.Fatalf("fast path declined %s", s)
		}
		full, err := decodeRecordInputFull([]byte(s))
		if err != nil || !reflect.DeepEqual(fast, full) {
			t.Fatalf("fast %+v, full %+v (%v)", fast, full, err)
		}
	}
	for _, s := range []string{
		`{"region":"jp","fields":{"n":1,"n":2}}`, // duplicate: the full decoder says so
		`{"region":"jp","fields":{"n":1},"consents":{}}`,
	} {
		if _, ok := decodeRecordInputFast([]byte(s)); ok {
			t.Fatalf("fast path took %s", s)
		}
	}
}
