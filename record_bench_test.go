package sekisho_test

import (
	"testing"

	"github.com/sekisho/sekisho"
)

// A generated user as `sekisho import` reads it (one NDJSON line).
var benchUserLine = []byte(`{"region":"jp","fields":{"birth_date":"1986-11-15","country":"JP","display_name":"Sakura Nakamura","email":"u1.a4f92433@mail.example","gender":"nonbinary","internal_user_id":"u98513baaa5575c9a","phone":"+817091671400","usage_summary":{"calls_per_week":41,"stickers_bought":6}}}`)

func BenchmarkDecodeRecordInput(b *testing.B) {
	b.ReportAllocs()
	b.SetBytes(int64(len(benchUserLine)))
	for b.Loop() {
		if _, err := sekisho.DecodeRecordInput(benchUserLine); err != nil {
			b.Fatal(err)
		}
	}
}
