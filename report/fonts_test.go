package report

import "testing"

// Each embedded font's cmap reads, and a character goes to the font of its
// script, the document language's font first.
func TestFontCoverage(t *testing.T) {
	cases := []struct {
		lang string
		r    rune
		fam  string
	}{
		{LangJA, 'あ', famJP}, {LangJA, '漏', famJP}, {LangJA, 'A', famJP},
		{LangEN, 'A', famSans}, {LangEN, 'あ', famJP}, {LangEN, 'ก', famThai},
		{LangTH, 'ก', famThai}, {LangTH, 'A', famSans}, {LangTH, '報', famJP},
		{"zh-TW", '們', famTC}, {"zh-TW", '臺', famTC}, {LangJA, '啟', famTC},
		{"id", 'é', famSans},
	}
	fss := map[string]*fontSet{}
	for _, tc := range cases {
		fs := fss[tc.lang]
		if fs == nil {
			var err error
			if fs, err = newFontSet(tc.lang); err != nil {
				t.Fatal(err)
			}
			fss[tc.lang] = fs
		}
		if got := fs.family(tc.r); got != tc.fam {
			t.Errorf("%s: %q drawn in %s, want %s", tc.lang, tc.r, got, tc.fam)
		}
	}
	// The negative control: Noto Sans itself has no kana.
	if fss[LangEN].cover[famSans].has('あ') {
		t.Error("Noto Sans claims to draw あ")
	}
}

func FuzzParseCmap(f *testing.F) {
	b, err := fontFiles.ReadFile(fontFile(famThai, ""))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add(b[:200])
	f.Add([]byte("\x00\x01\x00\x00\x00\x01cmap"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := parseCmap(data)
		if err == nil {
			c.has('a')
		}
	})
}
