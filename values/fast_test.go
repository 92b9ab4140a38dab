package values

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/sekisho/sekisho"
	"github.com/sekisho/sekisho/internal/benchcpu"
)

var fuzzFields = []sekisho.Field{
	{Name: "s", Type: sekisho.TypeString},
	{Name: "e", Type: sekisho.TypeEmail},
	{Name: "p", Type: sekisho.TypePhone},
	{Name: "d", Type: sekisho.TypeDate},
	{Name: "i", Type: sekisho.TypeInteger},
	{Name: "b", Type: sekisho.TypeBoolean},
	{Name: "j", Type: sekisho.TypeJSON},
}

// Normalize with its fast paths gives what encoding/json alone gives: the
// same bytes, or an error with the same message.
func FuzzNormalizeFastPaths(f *testing.F) {
	for _, s := range []string{`"Sakura"`, `" a\tb "`, `"<b>&amp;"`, `"a\u2028b"`, "\"a\u2028b\"", `"\u00e9"`, "\"\xff\"", `"+819012345678"`,
		`"090-1234-5678"`, `"U1@Example.JP"`, `"2024-02-29"`, `"a\"b"`, `"x\u0000"`, "\"\x7f\"", `12`, `"12"`, `true`, `{"a":1}`, `""`, `"`} {
		f.Add([]byte(s), uint8(0))
	}
	f.Fuzz(func(t *testing.T, raw []byte, which uint8) {
		fd := fuzzFields[int(which)%len(fuzzFields)]
		for _, region := range []string{"jp", "th"} {
			got, err := normalize(fd, raw, region, true)
			want, werr := normalize(fd, raw, region, false)
			if (err == nil) != (werr == nil) || err != nil && err.Error() != werr.Error() || !bytes.Equal(got, want) {
				t.Fatalf("%s %q in %s: fast %q %v, encoding/json %q %v", fd.Type, raw, region, got, err, want, werr)
			}
		}
		if s, ok := unquote(raw); ok {
			var want string
			if err := json.Unmarshal(raw, &want); err != nil || s != want {
				t.Fatalf("unquote(%q) = %q, json.Unmarshal %q %v", raw, s, want, err)
			}
		}
		if b, ok := quote(string(raw)); ok {
			if want, _ := json.Marshal(string(raw)); !bytes.Equal(b, want) {
				t.Fatalf("quote(%q) = %s, json.Marshal %s", raw, b, want)
			}
		}
	})
}

// The fast paths are taken for plain values (a control for the fuzz test,
// which would pass if they never were) and not for escaped ones.
func TestFastPathsTakePlainStrings(t *testing.T) {
	if s, ok := unquote([]byte(`"山田 太郎"`)); !ok || s != "山田 太郎" {
		t.Fatalf("unquote of a plain string: %q %v", s, ok)
	}
	if b, ok := quote("u1.a4f92433@mail.example"); !ok || string(b) != `"u1.a4f92433@mail.example"` {
		t.Fatalf("quote of a plain string: %s %v", b, ok)
	}
	for _, raw := range []string{`"a\nb"`, `"a\"b"`, "\"\xff\""} {
		if _, ok := unquote([]byte(raw)); ok {
			t.Fatalf("unquote took %q", raw)
		}
	}
	for _, s := range []string{"a<b", "a\u2028", "tab\t"} {
		if _, ok := quote(s); ok {
			t.Fatalf("quote took %q", s)
		}
	}
}

// Normalising an imported user's fields: impl=full is encoding/json for
// every string (as before), impl=fast is Normalize now.
func BenchmarkNormalizeUser(b *testing.B) {
	user := []struct {
		f   sekisho.Field
		raw string
	}{
		{sekisho.Field{Name: "display_name", Type: sekisho.TypeString}, `"Sakura Nakamura"`},
		{sekisho.Field{Name: "email", Type: sekisho.TypeEmail}, `"u1.a4f92433@mail.example"`},
		{sekisho.Field{Name: "phone", Type: sekisho.TypePhone}, `"+817091671400"`},
		{sekisho.Field{Name: "birth_date", Type: sekisho.TypeDate}, `"1986-11-15"`},
		{sekisho.Field{Name: "gender", Type: sekisho.TypeString}, `"nonbinary"`},
		{sekisho.Field{Name: "country", Type: sekisho.TypeString}, `"JP"`},
		{sekisho.Field{Name: "internal_user_id", Type: sekisho.TypeString}, `"u98513baaa5575c9a"`},
		{sekisho.Field{Name: "usage_summary", Type: sekisho.TypeJSON}, `{"calls_per_week":41,"stickers_bought":6}`},
	}
	for _, impl := range []string{"full", "fast"} {
		b.Run("impl="+impl, func(b *testing.B) {
			b.ReportAllocs()
			defer benchcpu.PerOp(b)()
			for b.Loop() {
				for _, u := range user {
					if _, err := normalize(u.f, json.RawMessage(u.raw), "jp", impl == "fast"); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}
