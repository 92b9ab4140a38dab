package report

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
)

// Formats a report renders to.
var Formats = []string{"md", "json", "pdf"}

// ToCompleteMark starts the text of what a person must fill in.
const ToCompleteMark = "TO BE COMPLETED BY A PERSON"

// Render renders r in format: md, json or pdf.
func Render(r *Report, format string) ([]byte, string, error) {
	switch format {
	case "md", "markdown", "":
		return Markdown(r), "text/markdown; charset=utf-8", nil
	case "json":
		b, err := JSON(r)
		return b, "application/json", err
	case "pdf":
		b, err := PDF(r)
		return b, "application/pdf", err
	}
	return nil, "", fmt.Errorf("format %q: want md, json or pdf", format)
}

// JSON returns r as indented JSON with a final newline.
func JSON(r *Report) ([]byte, error) {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// Markdown returns r as a Markdown document.
func Markdown(r *Report) []byte {
	l := r.Lang
	var b bytes.Buffer
	fmt.Fprintf(&b, "# %s\n\n", r.Title)
	fmt.Fprintf(&b, "| | |\n| --- | --- |\n")
	for _, m := range metaRows(r) {
		fmt.Fprintf(&b, "| %s | %s |\n", m[0], cell(m[1]))
	}
	b.WriteString("\n")
	if p := r.Persons; p != nil {
		fmt.Fprintf(&b, "## %s\n\n| %s | %s | %s | ", label(l, r.Kind, "persons"), msg(l, "persons.confirmed"), msg(l, "persons.possible"), msg(l, "persons.total"))
		if p.Region != "" {
			fmt.Fprintf(&b, "%s | ", msg(l, "persons.in", strings.ToUpper(p.Region)))
		}
		fmt.Fprintf(&b, "%s |\n| ---: | ---: | ---: | ", msg(l, "persons.worst"))
		if p.Region != "" {
			b.WriteString("---: | ")
		}
		fmt.Fprintf(&b, "---: |\n| %d | %d | %d | ", p.Confirmed, p.Possible, p.Total)
		if p.Region != "" {
			fmt.Fprintf(&b, "%d | ", p.InScope)
		}
		fmt.Fprintf(&b, "%d |\n\n", p.WorstCase)
	}
	if len(r.Deadline) > 0 {
		fmt.Fprintf(&b, "## %s\n\n| %s | %s | %s |\n| --- | --- | --- |\n", msg(l, "deadlines"), msg(l, "deadline.report"), msg(l, "deadline.due"), msg(l, "deadline.basis"))
		for _, d := range r.Deadline {
			due := ts(d.Due)
			if d.Overdue {
				due += msg(l, "passed")
			}
			fmt.Fprintf(&b, "| %s | %s | %s |\n", cell(d.Name), due, cell(d.Basis))
		}
		b.WriteString("\n")
	}
	mark := msg(l, "mark")
	for _, it := range r.Items {
		fmt.Fprintf(&b, "## %s\n\n", it.Title)
		if it.Text != "" {
			fmt.Fprintf(&b, "%s\n\n", it.Text)
			fmt.Fprintf(&b, "_%s_\n\n", msg(l, "source", sourceText(l, it.Source)))
		}
		if it.ToComplete != "" {
			fmt.Fprintf(&b, "> **%s:** %s\n\n", mark, it.ToComplete)
		}
	}
	for _, t := range r.Tables {
		fmt.Fprintf(&b, "## %s\n\n", t.Title)
		if len(t.Rows) == 0 {
			fmt.Fprintf(&b, "%s\n\n", msg(l, "none"))
			continue
		}
		fmt.Fprintf(&b, "| %s |\n|%s\n", strings.Join(t.Header, " | "), strings.Repeat(" --- |", len(t.Header)))
		for _, rw := range t.Rows {
			cs := make([]string, len(rw))
			for i, c := range rw {
				cs[i] = cell(c)
			}
			fmt.Fprintf(&b, "| %s |\n", strings.Join(cs, " | "))
		}
		b.WriteString("\n")
	}
	if len(r.Notes) > 0 {
		fmt.Fprintf(&b, "## %s\n\n", msg(l, "notes"))
		for _, n := range r.Notes {
			fmt.Fprintf(&b, "- %s\n", n)
		}
	}
	return b.Bytes()
}

func sourceText(lang, s string) string {
	switch s {
	case SourceScope, SourceIncident, SourceStore, SourceConfig, SourcePerson, SourceLog:
		return msg(lang, "source."+s)
	}
	return s
}

func cell(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "|", "\\|"), "\n", " ")
}

// PDF renders r as a PDF document with go-pdf/fpdf, in the embedded Noto
// fonts (subset to the glyphs used), so that Japanese, Thai, Chinese and
// Latin text all render.
func PDF(r *Report) ([]byte, error) {
	l := r.Lang
	d, err := newPDF(l, r.Title, r.Controller, r.GeneratedAt)
	if err != nil {
		return nil, err
	}
	p := d.p
	p.SetFooterFunc(func() {
		p.SetY(-12)
		style, size := d.style, d.size
		d.setStyle("", 8)
		foot := msg(l, "footer.noinc", r.Kind, p.PageNo())
		if r.Incident != "" {
			foot = msg(l, "footer", r.Kind, r.Incident, p.PageNo())
		}
		d.text(foot, 6, 0)
		d.setStyle(style, size)
	})
	p.AddPage()
	d.setStyle("B", 15)
	d.text(r.Title, 7, 0)
	p.Ln(2)
	for _, m := range metaRows(r) {
		y := p.GetY()
		d.setStyle("B", 9)
		d.text(m[0], 5, 0)
		p.SetY(y)
		d.setStyle("", 9)
		d.text(m[1], 5, 36)
	}
	if pp := r.Persons; pp != nil {
		d.heading(label(l, r.Kind, "persons"))
		h := []string{msg(l, "persons.confirmed.short"), msg(l, "persons.possible.short"), msg(l, "persons.total")}
		v := []string{itoa(pp.Confirmed), itoa(pp.Possible), itoa(pp.Total)}
		if pp.Region != "" {
			h = append(h, msg(l, "persons.in.short", strings.ToUpper(pp.Region)))
			v = append(v, itoa(pp.InScope))
		}
		h = append(h, msg(l, "persons.worst.short"))
		v = append(v, fmt.Sprint(pp.WorstCase))
		d.table(h, [][]string{v})
	}
	if len(r.Deadline) > 0 {
		d.heading(msg(l, "deadlines"))
		for _, dl := range r.Deadline {
			due := ts(dl.Due)
			if dl.Overdue {
				due += msg(l, "passed")
			}
			d.text(dl.Name+": "+due+" - "+dl.Basis, 5, 0)
		}
	}
	mark := msg(l, "mark")
	for _, it := range r.Items {
		d.heading(it.Title)
		if it.Text != "" {
			d.text(it.Text, 5, 0)
			d.setStyle("", 7.5)
			d.text(msg(l, "source", sourceText(l, it.Source)), 4, 0)
			d.setStyle("", 9)
		}
		if it.ToComplete != "" {
			d.setStyle("B", 9)
			d.box(mark+": "+it.ToComplete, 5, 255, 240, 200)
			d.setStyle("", 9)
		}
	}
	for _, tb := range r.Tables {
		d.heading(tb.Title)
		if len(tb.Rows) == 0 {
			d.text(msg(l, "none"), 5, 0)
			continue
		}
		d.table(tb.Header, tb.Rows)
	}
	if len(r.Notes) > 0 {
		d.heading(msg(l, "notes"))
		for _, n := range r.Notes {
			d.text("- "+n, 5, 0)
		}
	}
	return d.bytes()
}

// label is the word key in lang as the law of kind says it (PREFIX.label.key,
// as "gdpr.label.controller": 管理者, not APPI's 個人情報取扱事業者), else the
// common one.
func label(lang, kind, key string) string {
	if k := prefixes[kind] + ".label." + key; has(lang, k) {
		return msg(lang, k)
	}
	return msg(lang, key)
}

// metaRows are the key-value lines under a report's title.
func metaRows(r *Report) [][2]string {
	l := r.Lang
	meta := [][2]string{{msg(l, "law"), r.Law}, {msg(l, "to"), r.Recipient}, {label(l, r.Kind, "controller"), r.Controller},
		{msg(l, "incident"), r.Incident}, {msg(l, "generated"), ts(r.GeneratedAt)}}
	if r.Kind != KindProgress && r.Kind != KindAccess && r.Kind != KindProvide {
		req := msg(l, "required.no")
		if r.Required {
			req = msg(l, "required.yes") + strings.Join(r.Because, "; ")
		}
		meta = append(meta, [2]string{msg(l, "required"), req})
	}
	out := meta[:0]
	for _, m := range meta {
		if m[1] != "" {
			out = append(out, m)
		}
	}
	return out
}
