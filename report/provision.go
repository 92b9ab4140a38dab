package report

import (
	"bytes"
	"context"
	"encoding/csv"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/sekisho/sekisho"
)

// Provision is one provision of personal data to a third party: an allowed
// event in which a principal of another org (the recipient) was returned
// field values of the org's records, through a grant.
type Provision struct {
	// Log names the audit log of the event ("default" or a region), Index
	// its index there.
	Log        string   `json:"log"`
	Index      uint64   `json:"event_index"`
	Time       string   `json:"date"`
	Recipient  string   `json:"recipient_org"`
	Purpose    string   `json:"purpose"`
	Via        string   `json:"via"`
	Collection string   `json:"collection"`
	Subjects   int      `json:"subjects"`
	IDs        []string `json:"subject_ids"`
	Items      []string `json:"items"`
}

// Provisions reads, from every audit log of the deployment (each below the
// size it has when first asked), the provisions of org's records to other
// orgs in [since, until): every allowed read, batch-get or lookup that
// returned fields of org's records to a principal of another org. It
// returns the rows, by log and index, and the size of each log read.
func Provisions(ctx context.Context, logs []sekisho.LogStore, org string, since, until time.Time) ([]Provision, map[string]uint64, error) {
	sizes := map[string]uint64{}
	var out []Provision
	for _, l := range logs {
		name := l.Region
		if name == "" {
			name = "default"
		}
		size, err := l.Store.AuditSize(ctx)
		if err != nil {
			return nil, nil, fmt.Errorf("audit size of log %s: %w", name, err)
		}
		sizes[name] = size
		rows, err := provisions(ctx, l.Store, name, org, since, until, size)
		if err != nil {
			return nil, nil, err
		}
		out = append(out, rows...)
	}
	return out, sizes, nil
}

func provisions(ctx context.Context, st sekisho.AuditStore, name, org string, since, until time.Time, size uint64) ([]Provision, error) {
	var out []Provision
	f := sekisho.AuditFilter{Org: org, Since: since, Until: until, Decision: sekisho.Allow, Limit: 1000}
	for {
		es, err := st.QueryAudit(ctx, f)
		if err != nil {
			return nil, fmt.Errorf("query audit: %w", err)
		}
		for _, e := range es {
			if e.Index >= size {
				return out, nil
			}
			if e.Org == org || !slices.Contains(e.RecordOrgs, org) || e.Decision != sekisho.Allow {
				continue
			}
			ev, err := sekisho.UnmarshalEvent(e.Leaf)
			if err != nil {
				return nil, fmt.Errorf("audit event %d does not decode: %w", e.Index, err)
			}
			switch ev.Action {
			case "read", "batch-get", "lookup":
			default:
				continue
			}
			if len(ev.Fields) == 0 || len(ev.Records) == 0 {
				continue
			}
			ids := slices.Clone(ev.Records)
			slices.Sort(ids)
			ids = slices.Compact(ids)
			out = append(out, Provision{Log: name, Index: e.Index, Time: ts(ev.Time), Recipient: ev.Org, Purpose: ev.Purpose, Via: ev.Policy,
				Collection: ev.Collection, Subjects: len(ids), IDs: ids, Items: slices.Clone(ev.Fields)})
		}
		if len(es) < f.Limit {
			return out, nil
		}
		f.From = es[len(es)-1].Index + 1
	}
}

// ProvisionReport builds the record of provision to third parties (APPI
// arts. 29 and 30, 第三者提供記録) of org in [since, until).
func ProvisionReport(org string, since, until time.Time, rows []Provision, sizes map[string]uint64, cfg Config) (*Report, error) {
	b, r, err := start(KindProvide, cfg)
	if err != nil {
		return nil, err
	}
	r.Required, r.Because, r.Deadline = true, []string{}, []Deadline{}
	if rows == nil {
		rows = []Provision{}
	}
	r.Provisions = rows
	recipients := map[string]bool{}
	subjects := map[string]bool{}
	for _, p := range rows {
		recipients[p.Recipient] = true
		for _, id := range p.IDs {
			subjects[p.Collection+"/"+id] = true
		}
	}
	r.Items = []Item{
		withTitle(b.reporter(), b.t("controller")),
		{Key: "summary", Title: b.t("pr.summary"), Text: b.t("pr.summary.text", org, ts(since), ts(until), len(rows), len(recipients), strings.Join(slices.Sorted(maps.Keys(recipients)), ", "), len(subjects)), Source: SourceLog},
		person("recipients", b.t("pr.recipients"), b.t("pr.recipients.todo")),
	}
	t := Table{Title: b.t("pr.table"), Header: []string{b.t("pr.col.date"), b.t("pr.col.recipient"), b.t("pr.col.purpose"), b.t("pr.col.subjects"), b.t("pr.col.ids"), b.t("pr.col.items"), b.t("pr.col.event")}}
	for _, p := range rows {
		t.Rows = append(t.Rows, []string{p.Time, p.Recipient, p.Purpose, fmt.Sprint(p.Subjects), p.Collection + ": " + strings.Join(p.IDs, " "), strings.Join(p.Items, ", "), p.Log + " " + fmt.Sprint(p.Index)})
	}
	r.Tables = []Table{t}
	var sz []string
	for _, k := range slices.Sorted(maps.Keys(sizes)) {
		sz = append(sz, fmt.Sprintf("%s %d", k, sizes[k]))
	}
	r.Notes = []string{b.t("pr.note", strings.Join(sz, ", "))}
	return r, nil
}

// ProvisionCSV writes the provisions as CSV, one a row.
func ProvisionCSV(rows []Provision) ([]byte, error) {
	var b bytes.Buffer
	w := csv.NewWriter(&b)
	w.Write([]string{"date", "recipient_org", "purpose", "via", "collection", "subjects", "subject_ids", "items", "log", "event_index"})
	for _, p := range rows {
		w.Write([]string{p.Time, p.Recipient, p.Purpose, p.Via, p.Collection, fmt.Sprint(p.Subjects), strings.Join(p.IDs, " "), strings.Join(p.Items, " "), p.Log, fmt.Sprint(p.Index)})
	}
	w.Flush()
	return b.Bytes(), w.Error()
}
