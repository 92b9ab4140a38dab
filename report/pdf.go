package report

import (
	"bytes"
	"fmt"
	"strings"
	"time"
	"unicode"

	"github.com/go-pdf/fpdf"
)

// pdfDoc lays out text in the embedded Noto fonts: each piece of text is
// split into runs of one font (the document language's font first, then
// whichever embedded font draws the character), and broken into lines at
// spaces, and between the characters of scripts written without spaces
// (Japanese, Chinese, Thai). fpdf does no OpenType shaping: Thai marks take
// the font's default positions (readable; stacked marks may touch).
type pdfDoc struct {
	p     *fpdf.Fpdf
	fs    *fontSet
	added map[string]bool
	width float64
	size  float64
	style string
}

// newPDF starts an A4 document in lang.
func newPDF(lang, title, author string, created time.Time) (*pdfDoc, error) {
	fs, err := newFontSet(lang)
	if err != nil {
		return nil, err
	}
	p := fpdf.New("P", "mm", "A4", "")
	p.SetTitle(title, true)
	p.SetCreator("sekisho", true)
	p.SetAuthor(author, true)
	p.SetCreationDate(created)
	p.SetModificationDate(created)
	p.SetMargins(18, 18, 18)
	p.SetAutoPageBreak(true, 18)
	p.AliasNbPages("")
	d := &pdfDoc{p: p, fs: fs, added: map[string]bool{}, size: 9}
	w, _ := p.GetPageSize()
	lm, _, rm, _ := p.GetMargins()
	d.width = w - lm - rm
	return d, nil
}

func (d *pdfDoc) font(fam, style string, size float64) {
	key := fam + style
	if !d.added[key] {
		b, err := fontFiles.ReadFile(fontFile(fam, style))
		if err != nil {
			d.p.SetError(fmt.Errorf("font %s: %w", key, err))
			return
		}
		d.p.AddUTF8FontFromBytes(fam, style, b)
		d.added[key] = true
	}
	d.p.SetFont(fam, style, size)
}

// style sets the style and size of the text that follows.
func (d *pdfDoc) setStyle(style string, size float64) { d.style, d.size = style, size }

type run struct {
	fam string
	s   string
}

// atom is a piece of text that is not broken across lines.
type atom struct {
	runs  []run
	space bool
	w     float64
}

// noBreakBefore are characters a line must not start with.
const noBreakBefore = "、。，．・：；？！）」』】〕｝〉》ー々ぁぃぅぇぉっゃゅょゎァィゥェォッャュョヮヵヶ,.:;!?)]}%"

func thaiMark(r rune) bool {
	return r == 0x0E31 || (r >= 0x0E34 && r <= 0x0E3A) || (r >= 0x0E47 && r <= 0x0E4E)
}

func thaiLeading(r rune) bool { return r >= 0x0E40 && r <= 0x0E44 }

// dense reports whether r belongs to a script written without spaces,
// where a line may break between characters.
func dense(r rune) bool {
	return unicode.In(r, unicode.Han, unicode.Hiragana, unicode.Katakana, unicode.Thai) ||
		(r >= 0x3000 && r <= 0x303F) || (r >= 0xFF00 && r <= 0xFFEF)
}

// atoms splits s into unbreakable pieces, each in runs of one font.
func (d *pdfDoc) atoms(s string) []atom {
	s = strings.ReplaceAll(s, "`", "")
	var out []atom
	var cur *atom
	var prev rune
	for i, r := range s {
		if r == '\n' || r == '\t' {
			r = ' '
		}
		brk := i == 0 || r == ' ' || prev == ' ' ||
			(dense(r) || dense(prev)) && !strings.ContainsRune(noBreakBefore, r) && !thaiMark(r) && !thaiLeading(prev) && !strings.ContainsRune("（「『【〔｛〈《(", prev)
		if brk || cur == nil {
			out = append(out, atom{space: r == ' '})
			cur = &out[len(out)-1]
		}
		fam := ""
		if n := len(cur.runs); n > 0 && d.fs.cover[cur.runs[n-1].fam].has(r) {
			fam = cur.runs[n-1].fam
		} else {
			fam = d.fs.family(r)
		}
		if n := len(cur.runs); n > 0 && cur.runs[n-1].fam == fam {
			cur.runs[n-1].s += string(r)
		} else {
			cur.runs = append(cur.runs, run{fam, string(r)})
		}
		prev = r
	}
	for i := range out {
		for _, rn := range out[i].runs {
			out[i].w += d.runWidth(rn)
		}
	}
	return out
}

func (d *pdfDoc) runWidth(rn run) float64 {
	d.font(rn.fam, d.style, d.size)
	return d.p.GetStringWidth(rn.s)
}

// lines breaks s into lines of at most width mm.
func (d *pdfDoc) lines(s string, width float64) [][]atom {
	var out [][]atom
	var line []atom
	var lw float64
	for _, a := range d.atoms(s) {
		if len(line) == 0 && a.space {
			continue
		}
		if lw+a.w > width && len(line) > 0 {
			out = append(out, trimSpace(line))
			line, lw = nil, 0
			if a.space {
				continue
			}
		}
		if a.w > width {
			// A piece wider than the line (a long id): cut it by character.
			for _, rn := range a.runs {
				for _, r := range rn.s {
					piece := atom{runs: []run{{rn.fam, string(r)}}}
					piece.w = d.runWidth(piece.runs[0])
					if lw+piece.w > width && len(line) > 0 {
						out = append(out, line)
						line, lw = nil, 0
					}
					line = append(line, piece)
					lw += piece.w
				}
			}
			continue
		}
		line = append(line, a)
		lw += a.w
	}
	if len(line) > 0 {
		out = append(out, trimSpace(line))
	}
	return out
}

func trimSpace(l []atom) []atom {
	for len(l) > 0 && l[len(l)-1].space {
		l = l[:len(l)-1]
	}
	return l
}

// drawLine writes one line at the current position.
func (d *pdfDoc) drawLine(l []atom, h float64) {
	for _, a := range l {
		for _, rn := range a.runs {
			d.font(rn.fam, d.style, d.size)
			d.p.CellFormat(d.p.GetStringWidth(rn.s), h, rn.s, "", 0, "L", false, 0, "")
		}
	}
}

// text writes s as a paragraph of the full width (or at x = left + indent,
// width - indent), h mm a line.
func (d *pdfDoc) text(s string, h, indent float64) {
	lm, _, _, _ := d.p.GetMargins()
	for _, l := range d.lines(s, d.width-indent) {
		d.p.SetX(lm + indent)
		d.drawLine(l, h)
		d.p.Ln(h)
	}
}

// box writes s in a filled, bordered box of the full width.
func (d *pdfDoc) box(s string, h float64, r, g, b int) {
	ls := d.lines(s, d.width-4)
	total := float64(len(ls))*h + 2
	_, ph := d.p.GetPageSize()
	_, _, _, bm := d.p.GetMargins()
	if d.p.GetY()+total > ph-bm && total < ph-2*bm {
		d.p.AddPage()
	}
	lm, _, _, _ := d.p.GetMargins()
	d.p.SetFillColor(r, g, b)
	d.p.Rect(lm, d.p.GetY(), d.width, total, "DF")
	d.p.SetY(d.p.GetY() + 1)
	for _, l := range ls {
		d.p.SetX(lm + 2)
		d.drawLine(l, h)
		d.p.Ln(h)
	}
	d.p.SetY(d.p.GetY() + 1)
}

// cell writes s, clipped to one line, in a bordered cell of width w.
func (d *pdfDoc) cell(s string, w, h float64, fill bool) {
	x, y := d.p.GetXY()
	d.p.CellFormat(w, h, "", "1", 0, "L", fill, 0, "")
	after := d.p.GetX()
	d.p.SetXY(x+1, y)
	ls := d.lines(s, w-2)
	if len(ls) > 0 {
		l := ls[0]
		if len(ls) > 1 {
			// Clipped: end with an ellipsis within the width.
			ell := atom{runs: []run{{famSans, "…"}}}
			ell.w = d.runWidth(ell.runs[0])
			var lw float64
			for _, a := range l {
				lw += a.w
			}
			for len(l) > 0 && lw+ell.w > w-2 {
				lw -= l[len(l)-1].w
				l = l[:len(l)-1]
			}
			l = append(l, ell)
		}
		d.drawLine(l, h)
	}
	d.p.SetXY(after, y)
}

// table writes a header row and rows, the columns of equal width.
func (d *pdfDoc) table(header []string, rows [][]string) {
	cw := d.width / float64(len(header))
	size := d.size
	d.setStyle("B", 8)
	d.p.SetFillColor(230, 230, 230)
	for _, hd := range header {
		d.cell(hd, cw, 5, true)
	}
	d.p.Ln(5)
	d.setStyle("", 8)
	for _, rw := range rows {
		for _, c := range rw {
			d.cell(c, cw, 5, false)
		}
		d.p.Ln(5)
	}
	d.setStyle("", size)
}

func (d *pdfDoc) heading(s string) {
	// Keep a heading with what follows it: no heading alone at a page's foot.
	_, ph := d.p.GetPageSize()
	_, _, _, bm := d.p.GetMargins()
	if d.p.GetY()+22 > ph-bm {
		d.p.AddPage()
	}
	d.p.Ln(3)
	d.setStyle("B", 11)
	d.text(s, 6, 0)
	d.setStyle("", 9)
}

func (d *pdfDoc) bytes() ([]byte, error) {
	var b bytes.Buffer
	if err := d.p.Output(&b); err != nil {
		return nil, fmt.Errorf("render pdf: %w", err)
	}
	return b.Bytes(), nil
}
