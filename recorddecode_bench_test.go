package sekisho

import (
	"testing"

	"github.com/sekisho/sekisho/internal/benchcpu"
)

// A generated user as `sekisho import` reads it (one NDJSON line).
var benchUserLine = []byte(`{"region":"jp","fields":{"birth_date":"1986-11-15","country":"JP","display_name":"Sakura Nakamura","email":"u1.a4f92433@mail.example","gender":"nonbinary","internal_user_id":"u98513baaa5575c9a","phone":"+817091671400","usage_summary":{"calls_per_week":41,"stickers_bought":6}}}`)

// DecodeRecordInput of an import row: impl=full is the decoder alone (all
// that DecodeRecordInput was before the fast path), impl=fast is
// DecodeRecordInput now.
func BenchmarkDecodeRecordInput(b *testing.B) {
	for _, c := range []struct {
		name string
		fn   func([]byte) (*RecordInput, error)
	}{{"impl=full", decodeRecordInputFull}, {"impl=fast", DecodeRecordInput}} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(benchUserLine)))
			defer benchcpu.PerOp(b)()
			for b.Loop() {
				if _, err := c.fn(benchUserLine); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
