package incident

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"text/template"
)

// The notice texts to individuals (APPI art. 26(2), GDPR art. 34, PDPA
// s. 37(4), UU PDP art. 46, Taiwan PDPA art. 12), one per language. An
// operator edits a copy: a file notice.LANG.txt in the templates directory
// given to `sekisho incident notices --templates DIR` replaces the default.
//
//go:embed templates/notice.*.txt
var noticeTemplates embed.FS

// NoticeLangs are the languages of the notice templates.
var NoticeLangs = []string{"en", "ja", "th", "zh-TW", "id"}

// RegionLangs returns the languages a region's notices are written in: its
// people's language, and English.
func RegionLangs(region string) []string {
	switch region {
	case "jp":
		return []string{"ja", "en"}
	case "th":
		return []string{"th", "en"}
	case "tw":
		return []string{"zh-TW", "en"}
	case "id":
		return []string{"id", "en"}
	}
	return []string{"en"}
}

// NoticeData fills a notice template.
type NoticeData struct {
	Controller string
	Contact    string
	Incident   string
	Since      string
	Until      string
	Discovered string
	// Items are the kinds of personal data exposed (field names).
	Items string
}

// Notice renders the notice of lang with d, from dir/notice.LANG.txt when
// dir has it, else from the default template.
func Notice(lang, dir string, d NoticeData) ([]byte, error) {
	name := "notice." + lang + ".txt"
	var text []byte
	if dir != "" {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err == nil {
			text = b
		} else if !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("notice template %s: %w", name, err)
		}
	}
	if text == nil {
		b, err := noticeTemplates.ReadFile("templates/" + name)
		if err != nil {
			return nil, fmt.Errorf("no notice template for language %q (have %v)", lang, NoticeLangs)
		}
		text = b
	}
	t, err := template.New(name).Option("missingkey=error").Parse(string(text))
	if err != nil {
		return nil, fmt.Errorf("notice template %s: %w", name, err)
	}
	var b bytes.Buffer
	if err := t.Execute(&b, d); err != nil {
		return nil, fmt.Errorf("notice template %s: %w", name, err)
	}
	return b.Bytes(), nil
}
