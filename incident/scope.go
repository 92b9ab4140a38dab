package incident

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/sekisho/sekisho"
	"github.com/sekisho/sekisho/audit"
)

// Statuses of a subject in a scope.
const (
	StatusExposed  = "exposed"  // at least one field value returned
	StatusPossible = "possible" // touched, no value returned
)

// RegionUnknown is the region of a record that the store does not know (an
// id that never existed, named by a denied or failed request).
const RegionUnknown = "unknown"

// pageSize is the number of audit entries one QueryAudit call returns.
const pageSize = 5000

// Suspects are the incident's suspected principals, devices and orgs.
type Suspects struct {
	Principals []string `json:"principals"`
	Devices    []string `json:"devices"`
	Orgs       []string `json:"orgs"`
}

// Window is the incident's window [Since, Until), in RFC 3339.
type Window struct {
	Since string `json:"since"`
	Until string `json:"until"`
}

// CollectionCount is the scope within one collection.
type CollectionCount struct {
	SubjectsExposed  int      `json:"subjects_exposed"`
	FieldsExposed    int      `json:"fields_exposed"`
	Fields           []string `json:"fields"`
	SubjectsPossible int      `json:"subjects_possible"`
	DeniedAttempts   int      `json:"denied_attempts"`
	Events           []uint64 `json:"-"`
}

// RegionCount is the scope within one residency region.
type RegionCount struct {
	Country          string `json:"country"`
	SubjectsExposed  int    `json:"subjects_exposed"`
	FieldsExposed    int    `json:"fields_exposed"`
	SubjectsPossible int    `json:"subjects_possible"`
}

// ClassCount is the scope of one classification of fields.
type ClassCount struct {
	SubjectsExposed int      `json:"subjects_exposed"`
	FieldsExposed   int      `json:"fields_exposed"`
	Fields          []string `json:"fields"`
}

// Subject is one data subject (a record) of the scope, with the events that
// exposed or touched it.
type Subject struct {
	Collection string
	ID         string
	Org        string
	Region     string
	Country    string
	Status     string // StatusExposed or StatusPossible
	// Fields are the fields returned ("collection.field" classification
	// lookups use the schema); empty for a possible subject.
	Fields []string
	// Masked is true when every exposure of the subject was a masked read.
	Masked bool
	// First and Last are the times of its first and last event.
	First, Last time.Time
	// Events are the indexes of the audit events that exposed it (or, for a
	// possible subject, touched it), in increasing order.
	Events []uint64

	clear  bool
	erased bool
}

// Attempt is one denied event of the suspects.
type Attempt struct {
	Index      uint64
	Time       time.Time
	Principal  string
	Device     string
	Action     string
	Collection string
	Records    []string
	Reason     string
}

// Reach is one part of the worst case: the live records of Org in Collection
// (in Regions, or every region when empty) that Via (a role or a grant) let a
// suspect read.
type Reach struct {
	Collection string
	Org        string
	Regions    []string
	Via        []string
	Records    int64
}

// Scope is what an incident exposed, computed from the audit log. Its JSON
// form has exactly the top-level keys that outside tools read; the lists
// behind the numbers (subjects with their event indexes, denied attempts,
// the worst case's parts) are in the fields without a JSON key, and are
// written as CSV.
type Scope struct {
	Incident          string                      `json:"incident"`
	Suspects          Suspects                    `json:"suspects"`
	Window            Window                      `json:"window"`
	SubjectsExposed   int                         `json:"subjects_exposed"`
	FieldsExposed     int                         `json:"fields_exposed"`
	ByCollection      map[string]*CollectionCount `json:"by_collection"`
	ByRegion          map[string]*RegionCount     `json:"by_region"`
	ByClassification  map[string]*ClassCount      `json:"by_classification"`
	SubjectsPossible  int                         `json:"subjects_possible"`
	DeniedAttempts    int                         `json:"denied_attempts"`
	WorstCaseSubjects int64                       `json:"worst_case_subjects"`

	// LogSize is the size of the audit log the scope read: every counted
	// event has an index below it, and inclusion proofs are asked for it.
	LogSize uint64 `json:"-"`
	// Events is the number of the suspects' events in the window.
	Events int `json:"-"`
	// Subjects lists the exposed and the possible subjects, by collection
	// and id.
	Subjects []*Subject `json:"-"`
	// Denied lists the denied attempts, by index.
	Denied []Attempt `json:"-"`
	// WorstCase lists what the worst case counts, by collection and org.
	WorstCase []Reach `json:"-"`
}

// leaf holds the parts of an event that the query columns do not carry.
type leaf struct {
	Action     string   `json:"action"`
	Collection string   `json:"collection"`
	Fields     []string `json:"fields"`
	Masked     bool     `json:"masked"`
	Reason     string   `json:"reason"`
}

// Compute computes the scope of in from the audit log of st, the records'
// regions and the schemas' classifications. The same log gives the same
// scope: it reads only events below the log size it sees first, and sorts
// everything.
func Compute(ctx context.Context, st sekisho.Store, in *Incident) (*Scope, error) {
	size, err := st.AuditSize(ctx)
	if err != nil {
		return nil, fmt.Errorf("audit size: %w", err)
	}
	sc := &Scope{
		Incident: in.ID,
		Suspects: Suspects{Principals: nonNil(in.Principals), Devices: nonNil(in.Devices), Orgs: nonNil(in.Orgs)},
		Window:   Window{Since: in.Since.UTC().Format(time.RFC3339), Until: in.Until.UTC().Format(time.RFC3339)},
		LogSize:  size,
	}
	c := &computer{st: st, in: in, size: size, sc: sc, subjects: map[subjectKey]*Subject{}, seen: map[uint64]bool{},
		actors: map[string]string{}}
	if err := c.readEvents(ctx); err != nil {
		return nil, err
	}
	if err := c.locate(ctx); err != nil {
		return nil, err
	}
	if err := c.count(ctx); err != nil {
		return nil, err
	}
	if err := c.worstCase(ctx); err != nil {
		return nil, err
	}
	return sc, nil
}

type subjectKey struct{ collection, id string }

type computer struct {
	st       sekisho.Store
	in       *Incident
	size     uint64
	sc       *Scope
	subjects map[subjectKey]*Subject
	// seen de-duplicates events matched by more than one suspect; it is only
	// filled when there is more than one query.
	seen  map[uint64]bool
	multi bool
	// actors are the principals of the matched events, with their orgs: a
	// suspect device or org brings its principals into the worst case.
	actors map[string]string
}

func (c *computer) readEvents(ctx context.Context) error {
	type query struct {
		f   sekisho.AuditFilter
		org string // keep only events whose principal's org is org
	}
	var qs []query
	base := sekisho.AuditFilter{Since: c.in.Since, Until: c.in.Until, Limit: pageSize}
	for _, p := range c.in.Principals {
		f := base
		f.Principal = p
		qs = append(qs, query{f: f})
	}
	for _, d := range c.in.Devices {
		f := base
		f.Device = d
		qs = append(qs, query{f: f})
	}
	for _, o := range c.in.Orgs {
		f := base
		f.Org = o
		qs = append(qs, query{f: f, org: o})
	}
	c.multi = len(qs) > 1
	for _, q := range qs {
		f := q.f
		for {
			es, err := c.st.QueryAudit(ctx, f)
			if err != nil {
				return fmt.Errorf("query audit: %w", err)
			}
			done := len(es) < f.Limit
			for i := range es {
				e := &es[i]
				if e.Index >= c.size {
					done = true
					break
				}
				if q.org != "" && e.Org != q.org {
					continue
				}
				if err := c.event(e); err != nil {
					return err
				}
			}
			if done || len(es) == 0 {
				break
			}
			f.From = es[len(es)-1].Index + 1
		}
	}
	return nil
}

// event counts one matched audit entry.
func (c *computer) event(e *sekisho.AuditEntry) error {
	if c.multi {
		if c.seen[e.Index] {
			return nil
		}
		c.seen[e.Index] = true
	}
	var l leaf
	if err := json.Unmarshal(e.Leaf, &l); err != nil {
		return fmt.Errorf("audit event %d does not decode: %w", e.Index, err)
	}
	c.sc.Events++
	if e.Principal != "" {
		c.actors[e.Principal] = e.Org
	}
	if e.Decision == audit.Deny {
		c.sc.Denied = append(c.sc.Denied, Attempt{Index: e.Index, Time: e.Time.UTC(), Principal: e.Principal, Device: e.Device,
			Action: l.Action, Collection: l.Collection, Records: slices.Clone(e.Records), Reason: l.Reason})
		return nil
	}
	var status string
	switch l.Action {
	case "read", "batch-get", "lookup":
		status = StatusPossible
		if len(l.Fields) > 0 {
			status = StatusExposed
		}
	case "update", "erase":
		status = StatusPossible
	default:
		// create and import expose nothing of the vault; authentication
		// and control-plane events name no records.
		return nil
	}
	for _, id := range e.Records {
		k := subjectKey{l.Collection, id}
		s := c.subjects[k]
		if s == nil {
			s = &Subject{Collection: l.Collection, ID: id, Status: StatusPossible, First: e.Time.UTC(), Last: e.Time.UTC(), Masked: true}
			c.subjects[k] = s
		}
		s.Events = append(s.Events, e.Index)
		t := e.Time.UTC()
		if t.Before(s.First) {
			s.First = t
		}
		if t.After(s.Last) {
			s.Last = t
		}
		if status == StatusExposed {
			s.Status = StatusExposed
			s.Fields = append(s.Fields, l.Fields...)
			if !l.Masked {
				s.clear = true
			}
		}
	}
	return nil
}

// locate reads each subject's org and region from the store (erased records
// keep them as a tombstone).
func (c *computer) locate(ctx context.Context) error {
	byColl := map[string][]string{}
	for k := range c.subjects {
		byColl[k.collection] = append(byColl[k.collection], k.id)
	}
	for coll, ids := range byColl {
		slices.Sort(ids)
		for start := 0; start < len(ids); start += 500 {
			recs, err := c.st.GetRecords(ctx, coll, ids[start:min(len(ids), start+500)])
			if err != nil {
				return fmt.Errorf("records of %s: %w", coll, err)
			}
			for _, r := range recs {
				if s := c.subjects[subjectKey{coll, r.ID}]; s != nil {
					s.Org, s.Region, s.erased = r.Org, r.Region, r.Erased()
				}
			}
		}
	}
	return nil
}

// Country returns the ISO 3166 country code of a region ("jp" -> "JP"), or
// "" when the region is not a country code.
func Country(region string) string {
	if len(region) != 2 {
		return ""
	}
	return strings.ToUpper(region)
}

// count fills the numbers from the subjects and attempts.
func (c *computer) count(ctx context.Context) error {
	schemas, err := c.st.ListSchemas(ctx)
	if err != nil {
		return fmt.Errorf("schemas: %w", err)
	}
	class := map[string]map[string]string{}
	for _, s := range schemas {
		m := map[string]string{}
		for _, f := range s.Fields {
			m[f.Name] = string(f.Classification)
		}
		class[s.Collection] = m
	}
	sc := c.sc
	sc.ByCollection = map[string]*CollectionCount{}
	sc.ByRegion = map[string]*RegionCount{}
	sc.ByClassification = map[string]*ClassCount{}
	coll := func(name string) *CollectionCount {
		cc := sc.ByCollection[name]
		if cc == nil {
			cc = &CollectionCount{Fields: []string{}}
			sc.ByCollection[name] = cc
		}
		return cc
	}
	sc.Subjects = make([]*Subject, 0, len(c.subjects))
	for _, s := range c.subjects {
		if s.Region == "" {
			s.Region = RegionUnknown
		}
		s.Country = Country(s.Region)
		slices.Sort(s.Events)
		s.Events = slices.Compact(s.Events)
		s.Fields = sortedSet(s.Fields)
		s.Masked = s.Status == StatusExposed && !s.clear
		sc.Subjects = append(sc.Subjects, s)
		cc := coll(s.Collection)
		rc := sc.ByRegion[s.Region]
		if rc == nil {
			rc = &RegionCount{Country: s.Country}
			sc.ByRegion[s.Region] = rc
		}
		cc.Events = append(cc.Events, s.Events...)
		if s.Status == StatusPossible {
			sc.SubjectsPossible++
			cc.SubjectsPossible++
			rc.SubjectsPossible++
			continue
		}
		sc.SubjectsExposed++
		sc.FieldsExposed += len(s.Fields)
		cc.SubjectsExposed++
		cc.FieldsExposed += len(s.Fields)
		cc.Fields = append(cc.Fields, s.Fields...)
		rc.SubjectsExposed++
		rc.FieldsExposed += len(s.Fields)
		classes := map[string]bool{}
		for _, f := range s.Fields {
			cl := class[s.Collection][f]
			if cl == "" {
				cl = string(sekisho.ClassOther)
			}
			k := sc.ByClassification[cl]
			if k == nil {
				k = &ClassCount{Fields: []string{}}
				sc.ByClassification[cl] = k
			}
			k.FieldsExposed++
			k.Fields = append(k.Fields, s.Collection+"."+f)
			if !classes[cl] {
				classes[cl] = true
				k.SubjectsExposed++
			}
		}
	}
	slices.SortFunc(sc.Subjects, func(a, b *Subject) int {
		if n := strings.Compare(a.Collection, b.Collection); n != 0 {
			return n
		}
		return strings.Compare(a.ID, b.ID)
	})
	slices.SortFunc(sc.Denied, func(a, b Attempt) int { return cmpUint(a.Index, b.Index) })
	sc.DeniedAttempts = len(sc.Denied)
	for _, a := range sc.Denied {
		if a.Collection == "" {
			continue // an authentication failure names no collection
		}
		cc := coll(a.Collection)
		cc.DeniedAttempts++
		cc.Events = append(cc.Events, a.Index)
	}
	for _, cc := range sc.ByCollection {
		cc.Fields = sortedSet(cc.Fields)
		slices.Sort(cc.Events)
		cc.Events = slices.Compact(cc.Events)
	}
	for _, k := range sc.ByClassification {
		k.Fields = sortedSet(k.Fields)
	}
	return nil
}

func cmpUint(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
