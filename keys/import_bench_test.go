package keys

import (
	"context"
	"testing"

	"github.com/sekisho/sekisho/internal/benchcpu"
)

// The key work of one imported record, as the vault seals it: a fresh DEK
// wrapped by the local keyring's KEK, nine fields sealed under the DEK.
func BenchmarkSealImportedRecord(b *testing.B) {
	ctx := context.Background()
	l, err := OpenLocal(b.TempDir(), mustKey(b))
	if err != nil {
		b.Fatal(err)
	}
	values := [][]byte{[]byte(`"Sakura Tanaka"`), []byte(`"+819012345678"`), []byte(`"sakura.tanaka@example.jp"`),
		[]byte(`"1990-04-01"`), []byte(`"female"`), []byte(`"JP"`), []byte(`{"calls_per_week":12,"stickers":3}`),
		[]byte(`"u98513baaa5575c9a"`), []byte(`{"@meta":1}`)}
	names := []string{"display_name", "phone", "email", "birth_date", "gender", "country", "usage_summary", "internal_user_id", "@meta"}
	b.ReportAllocs()
	defer benchcpu.PerOp(b)()
	for b.Loop() {
		dek, _ := NewKey()
		if _, _, err := l.WrapDEK(ctx, DEKAD{Org: "operator", Region: "jp", Collection: "users", RecordID: "01HZX3K2V9"}, dek); err != nil {
			b.Fatal(err)
		}
		rk, err := NewRecordKey(dek)
		if err != nil {
			b.Fatal(err)
		}
		for i, v := range values {
			if _, err := rk.Seal(FieldAD{Collection: "users", RecordID: "01HZX3K2V9", Field: names[i], KeyVersion: 1}, v); err != nil {
				b.Fatal(err)
			}
		}
	}
}
