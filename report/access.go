package report

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/sekisho/sekisho"
	"github.com/sekisho/sekisho/audit"
)

// Access is one access to a record, from the audit log, with its inclusion
// proof at the checkpoint the report names.
type Access struct {
	Index         uint64   `json:"index"`
	Time          string   `json:"time"`
	Org           string   `json:"org"`
	PrincipalKind string   `json:"principal_kind"`
	Purpose       string   `json:"purpose"`
	Action        string   `json:"action"`
	Fields        []string `json:"fields"`
	Decision      string   `json:"decision"`
	Policy        string   `json:"policy"`
	// Proof is the RFC 6962 inclusion proof of the event (base64 hashes)
	// in the tree of the checkpoint's size; empty when the event came after
	// the checkpoint.
	Proof []string `json:"proof"`
}

// SubjectData is what a subject access report holds besides its items: the
// data, every access, and the checkpoint the proofs are against.
type SubjectData struct {
	Collection string                     `json:"collection"`
	ID         string                     `json:"id"`
	Org        string                     `json:"org"`
	Region     string                     `json:"region"`
	Fields     map[string]json.RawMessage `json:"fields"`
	Consents   map[string]sekisho.Consent `json:"consents,omitempty"`
	// ConsentHistory is every change of the consents, oldest first.
	ConsentHistory []sekisho.ConsentChange `json:"consent_history,omitempty"`
	Accesses       []Access                `json:"accesses"`
	// CheckpointSize and Checkpoint are the signed checkpoint (C2SP
	// tlog-checkpoint note) that every proof is against.
	CheckpointSize uint64 `json:"checkpoint_size"`
	Checkpoint     string `json:"checkpoint"`
}

// Accesses reads every audit event that names the record collection/id,
// below size, with an inclusion proof at cp (none for events at or after
// cp.Size). An event counts when its collection is collection and its
// records list id; denied attempts are included.
//
// log is the audit log that holds the record's events (its region's, or the
// default one); dir resolves principals to their kind.
func Accesses(ctx context.Context, dir Directory, log sekisho.AuditStore, collection, id string, size uint64, cp sekisho.Checkpoint) ([]Access, error) {
	kinds := map[string]string{}
	kindOf := func(principal string) string {
		if principal == "" {
			return "none (unauthenticated)"
		}
		if k, ok := kinds[principal]; ok {
			return k
		}
		k := "unknown"
		if p, err := dir.Principal(ctx, principal); err == nil {
			switch {
			case p.HasRole(sekisho.RoleService):
				k = "service"
			case len(p.Roles) > 0:
				k = "person (" + strings.Join(p.Roles, ", ") + ")"
			default:
				k = "person"
			}
		}
		kinds[principal] = k
		return k
	}
	var out []Access
	f := sekisho.AuditFilter{Record: id, Limit: 1000}
	for {
		es, err := log.QueryAudit(ctx, f)
		if err != nil {
			return nil, fmt.Errorf("query audit: %w", err)
		}
		for _, e := range es {
			if e.Index >= size {
				return out, nil
			}
			ev, err := sekisho.UnmarshalEvent(e.Leaf)
			if err != nil {
				return nil, fmt.Errorf("audit event %d does not decode: %w", e.Index, err)
			}
			if ev.Collection != collection || !slices.Contains(ev.Records, id) {
				continue
			}
			a := Access{Index: e.Index, Time: ts(ev.Time), Org: ev.Org, PrincipalKind: kindOf(ev.Principal), Purpose: ev.Purpose,
				Action: ev.Action, Fields: nonNilStrings(ev.Fields), Decision: ev.Decision, Policy: ev.Policy, Proof: []string{}}
			if e.Index < cp.Size {
				hs, err := audit.InclusionProof(ctx, log, e.Index, cp.Size)
				if err != nil {
					return nil, fmt.Errorf("inclusion proof of event %d: %w", e.Index, err)
				}
				for _, h := range hs {
					a.Proof = append(a.Proof, base64.StdEncoding.EncodeToString(h))
				}
			}
			out = append(out, a)
		}
		if len(es) < f.Limit {
			return out, nil
		}
		f.From = es[len(es)-1].Index + 1
	}
}

func nonNilStrings(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// SubjectAccess builds the subject access report (APPI art. 33, GDPR art.
// 15) of an opened record and the accesses the log shows.
func SubjectAccess(rec *sekisho.Record, accesses []Access, cp sekisho.Checkpoint, cfg Config) (*Report, error) {
	b, r, err := start(KindAccess, cfg)
	if err != nil {
		return nil, err
	}
	r.Required, r.Because, r.Deadline = true, []string{b.t("sa.because")}, []Deadline{}
	sd := &SubjectData{Collection: rec.Collection, ID: rec.ID, Org: rec.Org, Region: rec.Region, Fields: rec.Fields, Consents: rec.Consents, ConsentHistory: rec.ConsentHistory,
		Accesses: accesses, CheckpointSize: cp.Size, Checkpoint: string(cp.Note)}
	if sd.Accesses == nil {
		sd.Accesses = []Access{}
	}
	r.Subject = sd
	orgs := map[string]bool{}
	var allowed, denied int
	for _, a := range accesses {
		if a.Decision == sekisho.Allow {
			allowed++
			orgs[a.Org] = true
		} else {
			denied++
		}
	}
	r.Items = []Item{
		withTitle(b.reporter(), b.t("controller")),
		{Key: "record", Title: b.t("sa.record"), Text: b.t("sa.record.text", rec.Collection, rec.ID, rec.Region, len(rec.Fields)), Source: SourceStore},
		{Key: "accesses", Title: b.t("sa.accesses"), Text: b.t("sa.accesses.text", len(accesses), allowed, denied, strings.Join(slices.Sorted(maps.Keys(orgs)), ", "), cp.Size), Source: SourceLog},
		person("purposes", b.t("sa.purposes"), b.t("sa.purposes.todo")),
	}
	data := Table{Title: b.t("sa.data"), Header: []string{b.t("sa.col.field"), b.t("sa.col.value")}}
	for _, k := range slices.Sorted(maps.Keys(rec.Fields)) {
		data.Rows = append(data.Rows, []string{k, string(rec.Fields[k])})
	}
	r.Tables = append(r.Tables, data)
	if len(rec.Consents) > 0 {
		ct := Table{Title: b.t("sa.consents"), Header: []string{b.t("sa.col.purpose"), b.t("sa.col.consent")}}
		for _, k := range slices.Sorted(maps.Keys(rec.Consents)) {
			v, _ := json.Marshal(rec.Consents[k])
			ct.Rows = append(ct.Rows, []string{k, string(v)})
		}
		r.Tables = append(r.Tables, ct)
	}
	if len(rec.ConsentHistory) > 0 {
		ht := Table{Title: b.t("sa.consenthistory"), Header: []string{b.t("sa.col.at"), b.t("sa.col.purpose"), b.t("sa.col.given"),
			b.t("sa.col.withdrawn"), b.t("sa.col.by")}}
		when := func(t *time.Time) string {
			if t == nil {
				return "-"
			}
			return ts(*t)
		}
		for _, h := range rec.ConsentHistory {
			ht.Rows = append(ht.Rows, []string{ts(h.At), h.Purpose, when(h.Given), when(h.Withdrawn), h.By})
		}
		r.Tables = append(r.Tables, ht)
	}
	at := Table{Title: b.t("sa.log"), Header: []string{b.t("sa.col.index"), b.t("sa.col.time"), b.t("sa.col.org"), b.t("sa.col.kind"),
		b.t("sa.col.purpose"), b.t("sa.col.action"), b.t("sa.col.fields"), b.t("sa.col.decision")}}
	pt := Table{Title: b.t("sa.proofs"), Header: []string{b.t("sa.col.index"), b.t("sa.col.proof")}}
	for _, a := range accesses {
		at.Rows = append(at.Rows, []string{fmt.Sprint(a.Index), a.Time, a.Org, a.PrincipalKind, a.Purpose, a.Action, strings.Join(a.Fields, " "), a.Decision})
		proof := strings.Join(a.Proof, " ")
		if len(a.Proof) == 0 && a.Index >= cp.Size {
			proof = b.t("sa.noproof")
		}
		pt.Rows = append(pt.Rows, []string{fmt.Sprint(a.Index), proof})
	}
	r.Tables = append(r.Tables, at, pt)
	r.Items = append(r.Items, Item{Key: "checkpoint", Title: b.t("sa.checkpoint"), Text: string(cp.Note), Source: SourceStore})
	r.Notes = []string{b.t("sa.note.verify", cp.Size)}
	return r, nil
}
