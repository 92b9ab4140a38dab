package report

import (
	"embed"
	"encoding/binary"
	"errors"
	"fmt"
	"sort"
)

// The fonts the PDFs embed (fpdf subsets each to the glyphs a document
// uses). They are TrueType (glyf outlines), which is what fpdf's
// AddUTF8Font reads; the CFF-based OpenType of Debian's fonts-noto-cjk is
// not. Licences: fonts/OFL-*.txt; where each comes from: fonts/README.md.
//
//go:embed fonts/*.ttf
var fontFiles embed.FS

// Font families of a PDF, by script.
const (
	famSans = "noto"   // Noto Sans: Latin (English, Indonesian), Greek, Cyrillic
	famJP   = "notojp" // Noto Sans JP: Japanese (kana, JIS kanji), Latin
	famTC   = "nototc" // Noto Sans TC: Traditional Chinese (Big5 and more)
	famThai = "nototh" // Noto Sans Thai: Thai
)

// fontFile names the embedded file of a family and style ("" or "B"); a
// family without a bold file uses its regular one.
func fontFile(family, style string) string {
	name := map[string]string{famSans: "NotoSans", famJP: "NotoSansJP", famTC: "NotoSansTC", famThai: "NotoSansThai"}[family]
	if style == "B" && family != famTC {
		return "fonts/" + name + "-Bold.ttf"
	}
	return "fonts/" + name + "-Regular.ttf"
}

// coverage is the set of runes a font maps to a glyph, as sorted ranges.
type coverage [][2]rune

func (c coverage) has(r rune) bool {
	i := sort.Search(len(c), func(i int) bool { return c[i][1] >= r })
	return i < len(c) && c[i][0] <= r
}

// parseCmap reads the Unicode cmap of a TrueType or OpenType font: format 12
// (platform 3 encoding 10, or platform 0) when there is one, else format 4
// (platform 3 encoding 1).
func parseCmap(b []byte) (coverage, error) {
	if len(b) < 12 {
		return nil, errors.New("font: too short")
	}
	n := int(binary.BigEndian.Uint16(b[4:]))
	var cmap []byte
	for i := 0; i < n; i++ {
		rec := 12 + 16*i
		if rec+16 > len(b) {
			return nil, errors.New("font: table directory truncated")
		}
		if string(b[rec:rec+4]) == "cmap" {
			off, ln := int(binary.BigEndian.Uint32(b[rec+8:])), int(binary.BigEndian.Uint32(b[rec+12:]))
			if off < 0 || ln < 0 || off+ln > len(b) || off+ln < off {
				return nil, errors.New("font: cmap out of range")
			}
			cmap = b[off : off+ln]
		}
	}
	if len(cmap) < 4 {
		return nil, errors.New("font: no cmap")
	}
	nt := int(binary.BigEndian.Uint16(cmap[2:]))
	best, bestOff := 0, 0
	for i := 0; i < nt; i++ {
		rec := 4 + 8*i
		if rec+8 > len(cmap) {
			return nil, errors.New("font: cmap records truncated")
		}
		pid, eid := binary.BigEndian.Uint16(cmap[rec:]), binary.BigEndian.Uint16(cmap[rec+2:])
		off := int(binary.BigEndian.Uint32(cmap[rec+4:]))
		if off+4 > len(cmap) || off < 0 {
			continue
		}
		format := binary.BigEndian.Uint16(cmap[off:])
		rank := 0
		switch {
		case format == 12 && (pid == 3 && eid == 10 || pid == 0):
			rank = 2
		case format == 4 && (pid == 3 && eid == 1 || pid == 0):
			rank = 1
		}
		if rank > best {
			best, bestOff = rank, off
		}
	}
	t := cmap[bestOff:]
	var out coverage
	switch best {
	case 2:
		if len(t) < 16 {
			return nil, errors.New("font: cmap 12 truncated")
		}
		ng := int(binary.BigEndian.Uint32(t[12:]))
		if ng < 0 || 16+12*ng > len(t) || ng > len(t) {
			return nil, errors.New("font: cmap 12 groups out of range")
		}
		for i := 0; i < ng; i++ {
			g := t[16+12*i:]
			lo, hi := rune(binary.BigEndian.Uint32(g)), rune(binary.BigEndian.Uint32(g[4:]))
			if lo <= hi {
				out = append(out, [2]rune{lo, hi})
			}
		}
	case 1:
		if len(t) < 14 {
			return nil, errors.New("font: cmap 4 truncated")
		}
		segs := int(binary.BigEndian.Uint16(t[6:])) / 2
		if 16+8*segs > len(t) {
			return nil, errors.New("font: cmap 4 segments out of range")
		}
		for i := 0; i < segs; i++ {
			hi := rune(binary.BigEndian.Uint16(t[14+2*i:]))
			lo := rune(binary.BigEndian.Uint16(t[16+2*segs+2*i:]))
			if lo <= hi && !(lo == 0xFFFF && hi == 0xFFFF) {
				// A segment may map some of its codes to glyph 0; counting
				// them as covered only picks this font over the next for
				// a rune neither draws.
				out = append(out, [2]rune{lo, hi})
			}
		}
	default:
		return nil, errors.New("font: no Unicode cmap")
	}
	sort.Slice(out, func(i, j int) bool { return out[i][0] < out[j][0] })
	return out, nil
}

// fontSet is what one PDF needs of the embedded fonts: their coverage, read
// once per document.
type fontSet struct {
	cover map[string]coverage
	// order is the families a rune is looked up in, the document
	// language's first.
	order []string
}

func newFontSet(lang string) (*fontSet, error) {
	fs := &fontSet{cover: map[string]coverage{}}
	for _, fam := range []string{famSans, famJP, famTC, famThai} {
		b, err := fontFiles.ReadFile(fontFile(fam, ""))
		if err != nil {
			return nil, fmt.Errorf("font %s: %w", fam, err)
		}
		c, err := parseCmap(b)
		if err != nil {
			return nil, fmt.Errorf("font %s: %w", fam, err)
		}
		fs.cover[fam] = c
	}
	switch lang {
	case LangJA:
		fs.order = []string{famJP, famSans, famTC, famThai}
	case "zh-TW":
		fs.order = []string{famTC, famSans, famJP, famThai}
	case LangTH:
		fs.order = []string{famThai, famSans, famJP, famTC}
	default:
		fs.order = []string{famSans, famJP, famTC, famThai}
	}
	return fs, nil
}

// family returns the first family of the document's order that draws r.
func (fs *fontSet) family(r rune) string {
	for _, f := range fs.order {
		if fs.cover[f].has(r) {
			return f
		}
	}
	return fs.order[0]
}
