package report

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/go-pdf/fpdf"
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
	var b bytes.Buffer
	fmt.Fprintf(&b, "# %s\n\n", r.Title)
	fmt.Fprintf(&b, "| | |\n| --- | --- |\n")
	row := func(k, v string) {
		if v != "" {
			fmt.Fprintf(&b, "| %s | %s |\n", k, cell(v))
		}
	}
	row("Law", r.Law)
	row("To", r.Recipient)
	row("Controller", r.Controller)
	row("Incident", r.Incident)
	row("Generated", ts(r.GeneratedAt))
	if r.Kind != KindProgress {
		req := "no, as far as the audit log shows"
		if r.Required {
			req = "yes: " + strings.Join(r.Because, "; ")
		}
		row("Report required", req)
	}
	b.WriteString("\n")
	if p := r.Persons; p != nil {
		b.WriteString("## Persons concerned\n\n| confirmed (values returned) | possible (touched, nothing returned) | total | ")
		if p.Region != "" {
			fmt.Fprintf(&b, "of which in %s | ", strings.ToUpper(p.Region))
		}
		b.WriteString("worst case (readable by the suspects) |\n| ---: | ---: | ---: | ")
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
		b.WriteString("## Deadlines\n\n| report | due | basis |\n| --- | --- | --- |\n")
		for _, d := range r.Deadline {
			due := ts(d.Due)
			if d.Overdue {
				due += " (passed)"
			}
			fmt.Fprintf(&b, "| %s | %s | %s |\n", cell(d.Name), due, cell(d.Basis))
		}
		b.WriteString("\n")
	}
	for _, it := range r.Items {
		fmt.Fprintf(&b, "## %s\n\n", it.Title)
		if it.Text != "" {
			fmt.Fprintf(&b, "%s\n\n", it.Text)
			fmt.Fprintf(&b, "_Source: %s._\n\n", sourceText(it.Source))
		}
		if it.ToComplete != "" {
			fmt.Fprintf(&b, "> **%s:** %s\n\n", ToCompleteMark, it.ToComplete)
		}
	}
	for _, t := range r.Tables {
		fmt.Fprintf(&b, "## %s\n\n", t.Title)
		if len(t.Rows) == 0 {
			b.WriteString("None.\n\n")
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
		b.WriteString("## Notes\n\n")
		for _, n := range r.Notes {
			fmt.Fprintf(&b, "- %s\n", n)
		}
	}
	return b.Bytes()
}

func sourceText(s string) string {
	switch s {
	case SourceScope:
		return "the incident's scope, computed from the audit log"
	case SourceIncident:
		return "the incident as recorded"
	case SourceStore:
		return "the vault's store"
	case SourceConfig:
		return "the report's configuration"
	case SourcePerson:
		return "what the vault knows; a person completes it"
	}
	return s
}

func cell(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "|", "\\|"), "\n", " ")
}

// PDF renders r as a PDF document with go-pdf/fpdf. The core fonts cover
// Latin-1 only; other characters are replaced.
func PDF(r *Report) ([]byte, error) {
	p := fpdf.New("P", "mm", "A4", "")
	p.SetTitle(r.Title, true)
	p.SetCreator("sekisho", true)
	p.SetAuthor(r.Controller, true)
	p.SetCreationDate(r.GeneratedAt)
	p.SetModificationDate(r.GeneratedAt)
	p.SetMargins(18, 18, 18)
	p.SetAutoPageBreak(true, 18)
	p.AliasNbPages("")
	p.SetFooterFunc(func() {
		p.SetY(-12)
		p.SetFont("Helvetica", "I", 8)
		p.CellFormat(0, 6, fmt.Sprintf("sekisho %s report, incident %s - page %d/{nb}", r.Kind, r.Incident, p.PageNo()), "", 0, "C", false, 0, "")
	})
	tr := p.UnicodeTranslatorFromDescriptor("")
	t := func(s string) string { return tr(strings.ReplaceAll(s, "`", "")) }
	p.AddPage()
	w, _ := p.GetPageSize()
	lm, _, rm, _ := p.GetMargins()
	width := w - lm - rm
	p.SetFont("Helvetica", "B", 15)
	p.MultiCell(width, 7, t(r.Title), "", "L", false)
	p.Ln(2)
	p.SetFont("Helvetica", "", 9)
	meta := [][2]string{{"Law", r.Law}, {"To", r.Recipient}, {"Controller", r.Controller}, {"Incident", r.Incident}, {"Generated", ts(r.GeneratedAt)}}
	if r.Kind != KindProgress {
		req := "no, as far as the audit log shows"
		if r.Required {
			req = "yes: " + strings.Join(r.Because, "; ")
		}
		meta = append(meta, [2]string{"Report required", req})
	}
	for _, m := range meta {
		if m[1] == "" {
			continue
		}
		p.SetFont("Helvetica", "B", 9)
		p.CellFormat(32, 5, t(m[0]), "", 0, "L", false, 0, "")
		p.SetFont("Helvetica", "", 9)
		p.MultiCell(width-32, 5, t(m[1]), "", "L", false)
	}
	heading := func(s string) {
		p.Ln(3)
		p.SetFont("Helvetica", "B", 11)
		p.MultiCell(width, 6, t(s), "", "L", false)
		p.SetFont("Helvetica", "", 9)
	}
	table := func(header []string, rows [][]string) {
		cw := width / float64(len(header))
		p.SetFont("Helvetica", "B", 8)
		p.SetFillColor(230, 230, 230)
		for _, h := range header {
			p.CellFormat(cw, 5, t(clip(h, cw)), "1", 0, "L", true, 0, "")
		}
		p.Ln(-1)
		p.SetFont("Helvetica", "", 8)
		for _, rw := range rows {
			for _, c := range rw {
				p.CellFormat(cw, 5, t(clip(c, cw)), "1", 0, "L", false, 0, "")
			}
			p.Ln(-1)
		}
	}
	if pp := r.Persons; pp != nil {
		heading("Persons concerned")
		h := []string{"confirmed", "possible", "total"}
		v := []string{itoa(pp.Confirmed), itoa(pp.Possible), itoa(pp.Total)}
		if pp.Region != "" {
			h = append(h, "in "+strings.ToUpper(pp.Region))
			v = append(v, itoa(pp.InScope))
		}
		h = append(h, "worst case")
		v = append(v, fmt.Sprint(pp.WorstCase))
		table(h, [][]string{v})
	}
	if len(r.Deadline) > 0 {
		heading("Deadlines")
		for _, d := range r.Deadline {
			due := ts(d.Due)
			if d.Overdue {
				due += " (passed)"
			}
			p.MultiCell(width, 5, t(d.Name+": "+due+" - "+d.Basis), "", "L", false)
		}
	}
	for _, it := range r.Items {
		heading(it.Title)
		if it.Text != "" {
			p.MultiCell(width, 5, t(it.Text), "", "L", false)
			p.SetFont("Helvetica", "I", 8)
			p.MultiCell(width, 4, t("Source: "+sourceText(it.Source)+"."), "", "L", false)
			p.SetFont("Helvetica", "", 9)
		}
		if it.ToComplete != "" {
			p.SetFillColor(255, 240, 200)
			p.SetFont("Helvetica", "B", 9)
			p.MultiCell(width, 5, t(ToCompleteMark+": "+it.ToComplete), "1", "L", true)
			p.SetFont("Helvetica", "", 9)
		}
	}
	for _, tb := range r.Tables {
		heading(tb.Title)
		if len(tb.Rows) == 0 {
			p.MultiCell(width, 5, "None.", "", "L", false)
			continue
		}
		table(tb.Header, tb.Rows)
	}
	if len(r.Notes) > 0 {
		heading("Notes")
		for _, n := range r.Notes {
			p.MultiCell(width, 5, t("- "+n), "", "L", false)
		}
	}
	var b bytes.Buffer
	if err := p.Output(&b); err != nil {
		return nil, fmt.Errorf("render pdf: %w", err)
	}
	return b.Bytes(), nil
}

// clip shortens s to fit a table cell of width w mm at 8 pt (about 1.6 mm
// per character).
func clip(s string, w float64) string {
	n := int(w / 1.6)
	if len(s) <= n || n < 4 {
		return s
	}
	return s[:n-3] + "..."
}
