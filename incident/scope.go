package incident

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/sekisho/sekisho"
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
	// Log names the audit log that holds its events: the log of its
	// region's store ("default" for the default store's log).
	Log string
	// Events are the indexes, in Log, of the audit events that exposed it
	// (or, for a possible subject, touched it), in increasing order.
	Events []uint64
	// OtherLogs holds, by log name, the indexes of events about the subject
	// found in another log than Log (only when a record's region was moved
	// to another store after the events; empty otherwise).
	OtherLogs map[string][]uint64

	clear  bool
	erased bool
	// bits holds the returned fields as bits of the collection's field
	// numbering (computer.fieldNo) until count turns them into Fields.
	bits []uint64
}

// Attempt is one denied event of the suspects.
type Attempt struct {
	Log        string // the log that holds the event ("default" or a region)
	Index      uint64
	Time       time.Time
	Principal  string
	Device     string
	Action     string
	Collection string
	Records    []string
	Reason     string
	// Policy is the policy that denied it; RecordOrgs the owning orgs of
	// Records (an org's view hides another org's decoys by them).
	Policy     string
	RecordOrgs []string
}

// Reach is one part of the worst case: the live records of Org in Collection
// (in Regions, or every region when empty) that Via (a role or a grant) let a
// suspect read.
type Reach struct {
	Collection string   `json:"collection"`
	Org        string   `json:"org"`
	Regions    []string `json:"regions"` // empty: every region
	Via        []string `json:"via"`
	Records    int64    `json:"records"`
}

// Scope is what an incident exposed, computed from the audit log. Its JSON
// form carries everything the table shows (the numbers, the events read,
// the worst case's parts); the long lists behind the numbers (subjects with
// their event indexes, denied attempts) are in the fields without a JSON
// key, and are written as CSV.
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

	// LogSize is the size of the default audit log the scope read: every
	// counted event of it has an index below it, and inclusion proofs are
	// asked for it.
	LogSize uint64 `json:"log_size"`
	// LogSizes is the size of every log the scope read, by log name
	// ("default" and each region with a store of its own): every counted
	// event of a log has an index below its size, and inclusion proofs are
	// asked for at that size (GET /v1/audit/proof/inclusion?region=R).
	LogSizes map[string]uint64 `json:"-"`
	// Events is the number of the suspects' events in the window.
	Events int `json:"events_read"`
	// Subjects lists the exposed and the possible subjects, by collection
	// and id.
	Subjects []*Subject `json:"-"`
	// Denied lists the denied attempts, by index.
	Denied []Attempt `json:"-"`
	// WorstCase lists what the worst case counts, by collection and org.
	WorstCase []Reach `json:"worst_case"`

	// SubjectsPlaintext of the exposed subjects had at least one value
	// returned in clear; SubjectsMaskedOnly only masked values.
	SubjectsPlaintext  int `json:"subjects_plaintext"`
	SubjectsMaskedOnly int `json:"subjects_masked_only"`
	// Ciphertext counts the records reached as ciphertext only (the
	// incident's ciphertext copy), apart from any value returned.
	Ciphertext Ciphertext `json:"ciphertext"`
	// Entrustment lists the grants the suspects acted through: the grantor
	// (the controller) and the grantee (the entrusted party).
	Entrustment []Entrustment `json:"entrustment"`
}

// Ciphertext is the part of a scope reached as ciphertext only.
type Ciphertext struct {
	Collections []string `json:"collections"`
	Records     int64    `json:"records"`
	Note        string   `json:"note,omitempty"`
}

// Entrustment is one grant the suspects' allowed events went through.
type Entrustment struct {
	Grant    string `json:"grant"`
	Grantor  string `json:"grantor_org"`
	Grantee  string `json:"grantee_org"`
	Events   int    `json:"events"`
	Subjects int    `json:"subjects_exposed"`
}

// leaf holds the parts of an event that the query columns do not carry.
type leaf struct {
	Action     string   `json:"action"`
	Collection string   `json:"collection"`
	Fields     []string `json:"fields"`
	Masked     bool     `json:"masked"`
	Policy     string   `json:"policy"`
	Reason     string   `json:"reason"`
}

// Compute computes the scope of in from every audit log of the deployment
// (logs: the default store's and each region's, see audit.Logs.Stores), the
// records' regions in st, the schemas' classifications and the principals,
// devices and grants of dir (the access directory). The same logs
// give the same scope: it reads only events below each log's size as it
// sees it first, and sorts everything.
func Compute(ctx context.Context, st sekisho.Store, dir Directory, logs []sekisho.LogStore, in *Incident) (*Scope, error) {
	return compute(ctx, st, dir, logs, in, slicesAhead, batchesAhead)
}

// compute is Compute reading slices and batches of records that many at
// once.
func compute(ctx context.Context, st sekisho.Store, dir Directory, logs []sekisho.LogStore, in *Incident, slicesAt, batchesAt int) (*Scope, error) {
	if len(logs) == 0 {
		return nil, fmt.Errorf("incident scope: no audit log to read")
	}
	sc := &Scope{
		Incident: in.ID,
		Suspects: Suspects{Principals: nonNil(in.Principals), Devices: nonNil(in.Devices), Orgs: nonNil(in.Orgs)},
		Window:   Window{Since: in.Since.UTC().Format(time.RFC3339), Until: in.Until.UTC().Format(time.RFC3339)},
		LogSizes: map[string]uint64{},
	}
	sizes := make([]uint64, len(logs))
	for i, l := range logs {
		size, err := l.Store.AuditSize(ctx)
		if err != nil {
			return nil, fmt.Errorf("audit size of log %s: %w", logName(l.Region), err)
		}
		sizes[i] = size
		sc.LogSizes[logName(l.Region)] = size
		if l.Region == "" {
			sc.LogSize = size
		}
	}
	c := &computer{st: st, dir: dir, in: in, sc: sc, subjects: map[subjectKey]*Subject{}, slicesAhead: slicesAt, batchesAhead: batchesAt,
		actors: map[string]string{}, fieldNo: map[string]map[string]int{}, fieldNames: map[string][]string{}}
	for i, l := range logs {
		c.audit, c.log, c.size, c.seen = l.Store, logName(l.Region), sizes[i], map[uint64]bool{}
		if err := c.readEvents(ctx); err != nil {
			return nil, err
		}
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
	if err := c.entrustment(ctx); err != nil {
		return nil, err
	}
	if err := c.ciphertext(ctx); err != nil {
		return nil, err
	}
	return sc, nil
}

type subjectKey struct{ collection, id string }

// logName is the name of a log: its region, or "default".
func logName(region string) string {
	if region == "" {
		return "default"
	}
	return region
}

// grantUse is what the suspects did through one grant.
type grantUse struct {
	events   int
	subjects map[subjectKey]bool
}

type computer struct {
	grants map[string]*grantUse
	st     sekisho.Store
	dir    Directory
	// audit, log and size are the log being read, its name and the size
	// read up to.
	audit    sekisho.AuditStore
	log      string
	in       *Incident
	size     uint64
	sc       *Scope
	subjects map[subjectKey]*Subject
	// sorted are the subjects by collection and id (locate sorts them).
	sorted []*Subject
	// slicesAhead and batchesAhead are how many slices of the window and
	// batches of records are read at once.
	slicesAhead, batchesAhead int
	// seen de-duplicates events matched by more than one suspect; it is only
	// filled when there is more than one query.
	seen  map[uint64]bool
	multi bool
	// actors are the principals of the matched events, with their orgs: a
	// suspect device or org brings its principals into the worst case.
	actors map[string]string
	// fieldNo numbers the field names seen per collection, for bitsets.
	fieldNo    map[string]map[string]int
	fieldNames map[string][]string
	mask       []uint64 // scratch
}

// fieldMask returns the bitset of fields in collection (valid until the
// next call).
func (c *computer) fieldMask(collection string, fields []string) []uint64 {
	no := c.fieldNo[collection]
	if no == nil {
		no = map[string]int{}
		c.fieldNo[collection] = no
	}
	c.mask = c.mask[:0]
	for _, f := range fields {
		n, ok := no[f]
		if !ok {
			n = len(no)
			no[f] = n
			c.fieldNames[collection] = append(c.fieldNames[collection], f)
		}
		for len(c.mask) <= n/64 {
			c.mask = append(c.mask, 0)
		}
		c.mask[n/64] |= 1 << (n % 64)
	}
	return c.mask
}

func orBits(dst, src []uint64) []uint64 {
	for len(dst) < len(src) {
		dst = append(dst, 0)
	}
	for i, w := range src {
		dst[i] |= w
	}
	return dst
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
	// The stores index events by (principal, time), (device, time) and
	// (org, time), and page in index order: a query for a whole window
	// reads and sorts every event of the window for each page. Reading the
	// window in slices of sliceSpan, each paged by From and Limit, reads
	// every event once; a slice with more than one page is the only place
	// where a row is read again.
	var parts []sliceQuery
	for _, q := range qs {
		for lo := c.in.Since; lo.Before(c.in.Until); lo = lo.Add(sliceSpan) {
			f := q.f
			f.Since, f.Until = lo, minTime(lo.Add(sliceSpan), c.in.Until)
			parts = append(parts, sliceQuery{f: f, org: q.org})
		}
	}
	return c.readSlices(ctx, parts)
}

// sliceSpan is the span of time one series of paged queries covers.
const sliceSpan = 6 * time.Hour

// slicesAhead is how many slices are read or waiting at once: while one is
// counted, the next one is read. The store's queries and the leaves'
// decoding run on every core while the events before them are counted, in
// order, on one goroutine, so the scope is the same as read one slice after
// another; each slice read holds its events (all its pages) until counted.
// Two, because on this project's 2-core machine four were no faster, cold
// or warm (the disk's reads did not add up; docs/scope-at-scale.md), and
// each takes one of the store's connections that the server's requests
// share.
const slicesAhead = 2

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// sliceQuery is one slice of the window for one suspect, keeping only the
// events of the principal's org org when org is set (the store's org
// filter also matches the events about org's records).
type sliceQuery struct {
	f   sekisho.AuditFilter
	org string
}

// matched is an event of a slice with its decoded leaf.
type matched struct {
	e sekisho.AuditEntry
	l leaf
}

// readSlices reads the slices, up to c.slicesAhead at once, and counts their
// events in the order of qs.
func (c *computer) readSlices(ctx context.Context, qs []sliceQuery) error {
	audit, log, size := c.audit, c.log, c.size
	return inOrder(ctx, len(qs), c.slicesAhead,
		func(ctx context.Context, i int) ([]matched, error) { return readSlice(ctx, audit, log, size, qs[i]) },
		func(_ int, es []matched) error {
			for j := range es {
				c.event(&es[j].e, &es[j].l)
			}
			return nil
		})
}

// inOrder calls read(i) for i in [0, n), up to ahead at once, and use(i,
// read(i)) in order of i on the calling goroutine, as each is ready. It
// returns the first error in that order; the reads still running are
// cancelled and waited for.
func inOrder[T any](ctx context.Context, n, ahead int, read func(context.Context, int) (T, error), use func(int, T) error) error {
	type result struct {
		v   T
		err error
	}
	ahead = max(ahead, 1)
	var wg sync.WaitGroup
	defer wg.Wait()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	out := make([]chan result, n)
	for i := range out {
		out[i] = make(chan result, 1)
	}
	// A token is taken before a read and given back once its result is
	// used: at most ahead results are being read or waiting.
	tokens := make(chan struct{}, ahead)
	wg.Go(func() {
		for i := range n {
			select {
			case tokens <- struct{}{}:
			case <-ctx.Done():
				return
			}
			wg.Go(func() {
				var r result
				defer func() {
					// A read that panics fails the call, as it would have
					// on the caller's goroutine, instead of the process.
					if p := recover(); p != nil {
						r = result{err: fmt.Errorf("read %d panicked: %v", i, p)}
					}
					out[i] <- r
				}()
				r.v, r.err = read(ctx, i)
			})
		}
	})
	for i := range n {
		var r result
		select {
		case r = <-out[i]:
		case <-ctx.Done():
			return ctx.Err()
		}
		if r.err != nil {
			return r.err
		}
		if err := use(i, r.v); err != nil {
			return err
		}
		<-tokens
	}
	return nil
}

// readSlice reads the events of one slice below size, page by page, and
// decodes their leaves.
func readSlice(ctx context.Context, audit sekisho.AuditStore, log string, size uint64, q sliceQuery) ([]matched, error) {
	var out []matched
	f := q.f
	for {
		es, err := audit.QueryAudit(ctx, f)
		if err != nil {
			return nil, fmt.Errorf("query audit log %s: %w", log, err)
		}
		done := len(es) < f.Limit
		for i := range es {
			e := &es[i]
			if e.Index >= size {
				done = true
				break
			}
			if q.org != "" && e.Org != q.org {
				continue
			}
			m := matched{e: *e}
			if err := json.Unmarshal(e.Leaf, &m.l); err != nil {
				return nil, fmt.Errorf("audit event %d of log %s does not decode: %w", e.Index, log, err)
			}
			m.e.Leaf = nil // decoded; the scope keeps no leaf
			out = append(out, m)
		}
		if done || len(es) == 0 {
			return out, nil
		}
		f.From = es[len(es)-1].Index + 1
	}
}

// event counts one matched audit entry, whose leaf is l.
func (c *computer) event(e *sekisho.AuditEntry, l *leaf) {
	if c.multi {
		if c.seen[e.Index] {
			return
		}
		c.seen[e.Index] = true
	}
	if ctl := c.in.Controller; ctl != "" && e.Org != ctl && !slices.Contains(e.RecordOrgs, ctl) {
		// The controller's view: only the events about its records.
		return
	}
	c.sc.Events++
	if e.Principal != "" {
		c.actors[e.Principal] = e.Org
	}
	if e.Decision == sekisho.Deny {
		c.sc.Denied = append(c.sc.Denied, Attempt{Log: c.log, Index: e.Index, Time: e.Time.UTC(), Principal: e.Principal, Device: e.Device,
			Action: l.Action, Collection: l.Collection, Records: slices.Clone(e.Records), Reason: l.Reason,
			Policy: l.Policy, RecordOrgs: slices.Clone(e.RecordOrgs)})
		return
	}
	var status string
	switch l.Action {
	case "read", "batch-get", "lookup", "detokenize":
		status = StatusPossible
		if len(l.Fields) > 0 {
			status = StatusExposed
		}
	case "update", "erase":
		status = StatusPossible
	default:
		// create and import expose nothing of the vault; authentication
		// and control-plane events name no records.
		return
	}
	var mask []uint64
	if status == StatusExposed {
		mask = c.fieldMask(l.Collection, l.Fields)
	}
	if g, ok := strings.CutPrefix(l.Policy, "grant:"); ok {
		if c.grants == nil {
			c.grants = map[string]*grantUse{}
		}
		u := c.grants[g]
		if u == nil {
			u = &grantUse{subjects: map[subjectKey]bool{}}
			c.grants[g] = u
		}
		u.events++
		if status == StatusExposed {
			for _, id := range e.Records {
				u.subjects[subjectKey{l.Collection, id}] = true
			}
		}
	}
	t := e.Time.UTC()
	for _, id := range e.Records {
		k := subjectKey{l.Collection, id}
		s := c.subjects[k]
		if s == nil {
			s = &Subject{Collection: l.Collection, ID: id, Log: c.log, Status: StatusPossible, First: t, Last: t, Masked: true}
			c.subjects[k] = s
		}
		if s.Log == c.log {
			s.Events = append(s.Events, e.Index)
		} else {
			if s.OtherLogs == nil {
				s.OtherLogs = map[string][]uint64{}
			}
			s.OtherLogs[c.log] = append(s.OtherLogs[c.log], e.Index)
		}
		if t.Before(s.First) {
			s.First = t
		}
		if t.After(s.Last) {
			s.Last = t
		}
		if status == StatusExposed {
			s.Status = StatusExposed
			s.bits = orBits(s.bits, mask)
			if !l.Masked {
				s.clear = true
			}
		}
	}
}

// locate reads each subject's org and region from the store (erased records
// keep them as a tombstone), c.batchesAhead batches of 500 at once.
func (c *computer) locate(ctx context.Context) error {
	type batch struct {
		coll string
		ids  []string
	}
	byColl := map[string][]string{}
	for k := range c.subjects {
		byColl[k.collection] = append(byColl[k.collection], k.id)
	}
	var bs []batch
	c.sorted = make([]*Subject, 0, len(c.subjects))
	for _, coll := range slices.Sorted(maps.Keys(byColl)) {
		ids := byColl[coll]
		slices.Sort(ids)
		for _, id := range ids {
			c.sorted = append(c.sorted, c.subjects[subjectKey{coll, id}])
		}
		for start := 0; start < len(ids); start += 500 {
			bs = append(bs, batch{coll, ids[start:min(len(ids), start+500)]})
		}
	}
	return inOrder(ctx, len(bs), c.batchesAhead,
		func(ctx context.Context, i int) ([]sekisho.RecordPlace, error) {
			ps, err := places(ctx, c.st, bs[i].coll, bs[i].ids)
			if err != nil {
				return nil, fmt.Errorf("records of %s: %w", bs[i].coll, err)
			}
			return ps, nil
		},
		func(i int, ps []sekisho.RecordPlace) error {
			for _, p := range ps {
				if s := c.subjects[subjectKey{bs[i].coll, p.ID}]; s != nil {
					s.Org, s.Region, s.erased = p.Org, p.Region, p.Erased
				}
			}
			return nil
		})
}

// places returns the places of the records of collection with ids: from a
// RecordLocator, or from the records themselves.
func places(ctx context.Context, st sekisho.Store, collection string, ids []string) ([]sekisho.RecordPlace, error) {
	if l, ok := st.(sekisho.RecordLocator); ok {
		return l.LocateRecords(ctx, collection, ids)
	}
	recs, err := st.GetRecords(ctx, collection, ids)
	if err != nil {
		return nil, err
	}
	out := make([]sekisho.RecordPlace, len(recs))
	for i, r := range recs {
		out[i] = r.Place()
	}
	return out, nil
}

// batchesAhead is how many batches of records locate reads at once.
const batchesAhead = 2

// Country returns the ISO 3166 country code of a region ("jp" -> "JP"), or
// "" when the region is not a country code.
func Country(region string) string {
	if len(region) != 2 {
		return ""
	}
	return strings.ToUpper(region)
}

// count fills the numbers from the subjects (in locate's order: by
// collection and id) and attempts.
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
	// Subjects share few distinct sets of fields: each set's sorted names
	// and count per classification are computed once.
	type fieldSet struct {
		names   []string
		byClass map[string]int
	}
	sets := map[string]*fieldSet{}
	collBits := map[string][]uint64{}
	country := map[string]string{}
	sc.Subjects = make([]*Subject, 0, len(c.sorted))
	for _, s := range c.sorted {
		if s.Region == "" {
			s.Region = RegionUnknown
		}
		cn, ok := country[s.Region]
		if !ok {
			cn = Country(s.Region)
			country[s.Region] = cn
		}
		s.Country = cn
		slices.Sort(s.Events)
		s.Events = slices.Compact(s.Events)
		for k, idx := range s.OtherLogs {
			slices.Sort(idx)
			s.OtherLogs[k] = slices.Compact(idx)
		}
		s.Masked = s.Status == StatusExposed && !s.clear
		if s.Status == StatusExposed {
			if s.clear {
				sc.SubjectsPlaintext++
			} else {
				sc.SubjectsMaskedOnly++
			}
		}
		sc.Subjects = append(sc.Subjects, s)
		cc := coll(s.Collection)
		rc := sc.ByRegion[s.Region]
		if rc == nil {
			rc = &RegionCount{Country: s.Country}
			sc.ByRegion[s.Region] = rc
		}
		if s.Status == StatusPossible {
			sc.SubjectsPossible++
			cc.SubjectsPossible++
			rc.SubjectsPossible++
			continue
		}
		key := s.Collection + "\x00" + bitsKey(s.bits)
		fs := sets[key]
		if fs == nil {
			fs = &fieldSet{byClass: map[string]int{}}
			for i, name := range c.fieldNames[s.Collection] {
				if i/64 < len(s.bits) && s.bits[i/64]&(1<<(i%64)) != 0 {
					fs.names = append(fs.names, name)
					fs.byClass[classOf(class, s.Collection, name)]++
				}
			}
			slices.Sort(fs.names)
			sets[key] = fs
		}
		collBits[s.Collection] = orBits(collBits[s.Collection], s.bits)
		s.Fields, s.bits = fs.names, nil
		n := len(s.Fields)
		sc.SubjectsExposed++
		sc.FieldsExposed += n
		cc.SubjectsExposed++
		cc.FieldsExposed += n
		rc.SubjectsExposed++
		rc.FieldsExposed += n
		for cl, k := range fs.byClass {
			cc := sc.ByClassification[cl]
			if cc == nil {
				cc = &ClassCount{Fields: []string{}}
				sc.ByClassification[cl] = cc
			}
			cc.SubjectsExposed++
			cc.FieldsExposed += k
		}
	}
	for collection, bits := range collBits {
		cc := coll(collection)
		for i, name := range c.fieldNames[collection] {
			if i/64 < len(bits) && bits[i/64]&(1<<(i%64)) != 0 {
				cc.Fields = append(cc.Fields, name)
				k := sc.ByClassification[classOf(class, collection, name)]
				k.Fields = append(k.Fields, collection+"."+name)
			}
		}
	}
	slices.SortFunc(sc.Denied, func(a, b Attempt) int {
		if n := strings.Compare(a.Log, b.Log); n != 0 {
			return n
		}
		return cmpUint(a.Index, b.Index)
	})
	sc.DeniedAttempts = len(sc.Denied)
	for _, a := range sc.Denied {
		if a.Collection == "" {
			continue // an authentication failure names no collection
		}
		coll(a.Collection).DeniedAttempts++
	}
	for _, cc := range sc.ByCollection {
		cc.Fields = sortedSet(cc.Fields)
	}
	for _, k := range sc.ByClassification {
		k.Fields = sortedSet(k.Fields)
	}
	return nil
}

// classOf returns a field's classification, "other" when the schema does
// not know the field (any more).
func classOf(class map[string]map[string]string, collection, field string) string {
	if cl := class[collection][field]; cl != "" {
		return cl
	}
	return string(sekisho.ClassOther)
}

// bitsKey is a map key for a bitset (trailing zero words ignored).
func bitsKey(bits []uint64) string {
	for len(bits) > 0 && bits[len(bits)-1] == 0 {
		bits = bits[:len(bits)-1]
	}
	b := make([]byte, 0, 8*len(bits))
	for _, w := range bits {
		b = binary.LittleEndian.AppendUint64(b, w)
	}
	return string(b)
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

// entrustment names the grantor and grantee of each grant used.
func (c *computer) entrustment(ctx context.Context) error {
	c.sc.Entrustment = []Entrustment{}
	ids := make([]string, 0, len(c.grants))
	for id := range c.grants {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		u := c.grants[id]
		en := Entrustment{Grant: id, Events: u.events, Subjects: len(u.subjects)}
		if g, err := c.dir.Grant(ctx, id); err == nil {
			en.Grantor, en.Grantee = g.GrantorOrg, g.GranteeOrg
		}
		c.sc.Entrustment = append(c.sc.Entrustment, en)
	}
	return nil
}

// ciphertext counts the live records of the ciphertext copy.
func (c *computer) ciphertext(ctx context.Context) error {
	c.sc.Ciphertext = Ciphertext{Collections: []string{}}
	cc := c.in.CiphertextCopy
	if cc == nil {
		return nil
	}
	c.sc.Ciphertext.Collections, c.sc.Ciphertext.Note = sortedSet(cc.Collections), cc.Note
	orgs := cc.Orgs
	if len(orgs) == 0 {
		orgs = []string{""}
	}
	for _, coll := range c.sc.Ciphertext.Collections {
		for _, o := range orgs {
			n, err := c.st.CountRecords(ctx, coll, o)
			if err != nil {
				return fmt.Errorf("count %s: %w", coll, err)
			}
			c.sc.Ciphertext.Records += n
		}
	}
	return nil
}
