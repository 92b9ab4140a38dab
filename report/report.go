package report

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/sekisho/sekisho"
	"github.com/sekisho/sekisho/incident"
	"github.com/sekisho/sekisho/keys"
)

// Kinds of report.
const (
	KindAPPI     = "appi"
	KindPDPA     = "pdpa"
	KindPDPID    = "pdp-id"
	KindPDPATW   = "pdpa-tw"
	KindGDPR     = "gdpr"
	KindProgress = "progress"
	// KindAccess is the subject access report (APPI art. 33, GDPR art. 15).
	KindAccess = "subject-access"
	// KindProvide is the record of provision to third parties (APPI arts.
	// 29 and 30).
	KindProvide = "provision"
)

// Kinds lists the report kinds.
var Kinds = []string{KindAPPI, KindPDPA, KindPDPID, KindPDPATW, KindGDPR, KindProgress}

// Sources of an item's content.
const (
	SourceScope    = "scope"    // computed from the audit log
	SourceIncident = "incident" // as the incident was recorded
	SourceStore    = "store"    // read from the store's configuration
	SourceConfig   = "config"   // the report's configuration
	SourcePerson   = "person"   // sekisho cannot know it: a person fills it in
	SourceLog      = "log"      // read from the audit log
)

// Config is what a report needs besides the incident and its scope.
type Config struct {
	// Controller is the business operator filing the report.
	Controller Controller `json:"controller"`
	// Lang is the report's language ("" for the kind's default, see Langs).
	Lang string `json:"lang,omitempty"`
	// Now stamps the report; default time.Now.
	Now time.Time `json:"-"`
	// Logs are every audit log of the deployment (the default store's and
	// each region's); empty means the store's own log alone.
	Logs []sekisho.LogStore `json:"-"`
	// Since starts the period of a progress report: the report compares
	// [Since, Now) with the period of the same length before it.
	Since time.Time `json:"-"`
	// Keys says where the deployment's key-encryption keys live, per
	// region (nil: not known, and the progress report says so).
	Keys *keys.Custody `json:"-"`
	// Directory reads principals, devices and grants for the progress
	// report (access.NewDirectory over the store); required by Progress.
	Directory Directory `json:"-"`
	// Rules reads the guard's rules in force for the progress report
	// (guard.Rules over the store); required by Progress.
	Rules GuardRules `json:"-"`
}

// Directory is what reports read of the access control plane (access.Directory
// implements it); the package never decodes access's stored objects.
type Directory interface {
	Principal(ctx context.Context, id string) (sekisho.PrincipalEntry, error)
	Principals(ctx context.Context) ([]sekisho.PrincipalEntry, error)
	Devices(ctx context.Context) ([]sekisho.DeviceEntry, error)
	Grants(ctx context.Context) ([]sekisho.GrantEntry, error)
}

// GuardRules is what the progress report reads of the guard's rules
// (guard.Rules implements it).
type GuardRules interface {
	// InForce returns every rule in force (id -> enabled) and how many
	// rules are stored.
	InForce(ctx context.Context) (map[string]bool, int, error)
}

// Deadline is one time limit of a report.
type Deadline struct {
	Name  string    `json:"name"`
	Due   time.Time `json:"due"`
	Basis string    `json:"basis"`
	// Overdue is true when Due is before the report's generation time.
	Overdue bool `json:"overdue"`
}

// Item is one item of a report's form.
type Item struct {
	Key   string `json:"key"`
	Title string `json:"title"`
	// Text is what sekisho fills in ("" when it knows nothing).
	Text   string `json:"text,omitempty"`
	Source string `json:"source"`
	// ToComplete says what a person must add, when sekisho cannot know it.
	ToComplete string `json:"to_complete,omitempty"`
}

// Table is a table of numbers in a report.
type Table struct {
	Title  string     `json:"title"`
	Header []string   `json:"header"`
	Rows   [][]string `json:"rows"`
}

// Report is one report, rendered by Markdown, JSON and PDF.
type Report struct {
	Kind        string    `json:"kind"`
	Lang        string    `json:"lang"`
	Title       string    `json:"title"`
	Law         string    `json:"law"`
	Recipient   string    `json:"recipient"`
	Incident    string    `json:"incident,omitempty"`
	Controller  string    `json:"controller,omitempty"`
	GeneratedAt time.Time `json:"generated_at"`
	// Required says whether the regime makes this report mandatory for the
	// incident, as far as the scope shows; Because lists why.
	Required bool       `json:"required"`
	Because  []string   `json:"because"`
	Persons  *Persons   `json:"persons,omitempty"`
	Deadline []Deadline `json:"deadlines"`
	Items    []Item     `json:"items"`
	Tables   []Table    `json:"tables"`
	Notes    []string   `json:"notes"`
	// Subject is the data and the accesses of a subject access report.
	Subject *SubjectData `json:"subject,omitempty"`
	// Provisions are the rows of a record of provision to third parties.
	Provisions []Provision `json:"provisions,omitempty"`
}

// Persons are the counts of data subjects a breach report states.
type Persons struct {
	// Confirmed had at least one field value returned; Possible were touched
	// without a value returned; Total is their sum (regulators count
	// "leaked or likely leaked"). InScope is the regime's part of Total
	// (its country), Region names it ("" for every region).
	Confirmed  int    `json:"confirmed"`
	Possible   int    `json:"possible"`
	Total      int    `json:"total"`
	Region     string `json:"region,omitempty"`
	InScope    int    `json:"in_scope"`
	WorstCase  int64  `json:"worst_case"`
	FieldsSeen int    `json:"field_values"`
}

// Breach builds the breach report of kind (any kind but progress) for an
// incident and its scope.
func Breach(kind string, in *incident.Incident, sc *incident.Scope, cfg Config) (*Report, error) {
	fill := map[string]func(*builder, *Report){KindAPPI: (*builder).appi, KindPDPA: (*builder).pdpa,
		KindPDPID: (*builder).pdpID, KindPDPATW: (*builder).pdpaTW, KindGDPR: (*builder).gdpr}[kind]
	if fill == nil {
		return nil, sekisho.FieldErrorf(sekisho.EInvalid, "kind", "report kind %q is not one of %s", kind, strings.Join(Kinds, ", "))
	}
	b, r, err := start(kind, cfg)
	if err != nil {
		return nil, err
	}
	b.in, b.sc = in, sc
	r.Incident = in.ID
	fill(b, r)
	for i := range r.Deadline {
		r.Deadline[i].Due = r.Deadline[i].Due.UTC()
		r.Deadline[i].Overdue = r.Deadline[i].Due.Before(r.GeneratedAt)
	}
	r.Items = append(r.Items, b.encryption(kind), b.entrustment())
	r.Tables = append(r.Tables, b.tables()...)
	r.Notes = append(r.Notes, b.t("note.numbers", sc.Events, sc.LogSize, in.ID, sc.LogSize))
	if len(sc.LogSizes) > 1 {
		r.Notes = append(r.Notes, b.t("note.logs", logSizes(sc)))
	}
	r.Notes = append(r.Notes, b.t("note.draft"))
	return r, nil
}

// prefixes are the message keys' prefix of each kind's title, law and
// recipient (PREFIX.title, PREFIX.law, PREFIX.to).
var prefixes = map[string]string{KindAPPI: "appi", KindPDPA: "pdpa", KindPDPID: "id", KindPDPATW: "tw", KindGDPR: "gdpr",
	KindProgress: "pg", KindAccess: "sa", KindProvide: "pr"}

// start checks the report's language and returns its builder and the
// header every report has: kind, language, title, law, recipient,
// controller (named in the language) and the time of generation.
func start(kind string, cfg Config) (*builder, *Report, error) {
	if cfg.Now.IsZero() {
		cfg.Now = time.Now()
	}
	lang, err := Lang(kind, cfg.Lang)
	if err != nil {
		return nil, nil, err
	}
	b := &builder{cfg: cfg, lang: lang}
	p := prefixes[kind]
	return b, &Report{Kind: kind, Lang: lang, Title: b.t(p + ".title"), Law: b.t(p + ".law"), Recipient: b.t(p + ".to"),
		Controller: cfg.Controller.NameIn(lang), GeneratedAt: cfg.Now.UTC()}, nil
}

type builder struct {
	in   *incident.Incident
	sc   *incident.Scope
	cfg  Config
	lang string
}

// t is the message key in the report's language.
func (b *builder) t(key string, args ...any) string { return msg(b.lang, key, args...) }

func (b *builder) persons(region string) *Persons {
	p := &Persons{Confirmed: b.sc.SubjectsExposed, Possible: b.sc.SubjectsPossible, Region: region,
		WorstCase: b.sc.WorstCaseSubjects, FieldsSeen: b.sc.FieldsExposed}
	p.Total = p.Confirmed + p.Possible
	p.InScope = p.Total
	if region != "" {
		p.InScope = 0
		if rc := b.sc.ByRegion[region]; rc != nil {
			p.InScope = rc.SubjectsExposed + rc.SubjectsPossible
		}
	}
	return p
}

func (b *builder) sensitive() bool {
	c := b.sc.ByClassification[string(sekisho.ClassSensitive)]
	return c != nil && c.SubjectsExposed > 0
}

func day(n int) time.Duration { return time.Duration(n) * 24 * time.Hour }

func ts(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// overview is the facts every form starts with.
func (b *builder) overview() string {
	in, sc := b.in, b.sc
	var who []string
	if len(in.Principals) > 0 {
		who = append(who, b.t("who.principals", strings.Join(in.Principals, ", ")))
	}
	if len(in.Devices) > 0 {
		who = append(who, b.t("who.devices", strings.Join(in.Devices, ", ")))
	}
	if len(in.Orgs) > 0 {
		who = append(who, b.t("who.orgs", strings.Join(in.Orgs, ", ")))
	}
	s := b.t("overview", ts(in.Since), ts(in.Until), strings.Join(who, "; "), ts(in.DiscoveredAt), in.Cause)
	s += b.t("overview.counts", sc.SubjectsExposed, sc.FieldsExposed, sc.SubjectsPossible, sc.DeniedAttempts)
	if in.Description != "" {
		s += " " + in.Description
	}
	return s
}

// kinds describes the kinds of personal data returned.
func (b *builder) kinds() string {
	if len(b.sc.ByClassification) == 0 {
		return b.t("kinds.none")
	}
	var parts []string
	for _, cl := range slices.Sorted(maps.Keys(b.sc.ByClassification)) {
		c := b.sc.ByClassification[cl]
		parts = append(parts, b.t("kinds.part", cl, c.SubjectsExposed, strings.Join(c.Fields, ", ")))
	}
	s := b.t("kinds", strings.Join(parts, "; "))
	if b.sensitive() {
		s += b.t("kinds.sensitive")
	}
	return s
}

func (b *builder) number(region string) string {
	p := b.persons(region)
	s := b.t("number", p.Confirmed, p.Possible, p.Total)
	if region != "" {
		s += b.t("number.region", p.InScope, strings.ToUpper(region))
	}
	s += b.t("number.worst", p.WorstCase)
	return s
}

func (b *builder) cause() Item {
	it := Item{Key: "cause", Title: "Cause", Source: SourceIncident, Text: b.t("cause", b.in.Cause, b.sc.DeniedAttempts)}
	it.ToComplete = b.t("cause.todo")
	return it
}

func person(key, title, what string) Item {
	return Item{Key: key, Title: title, Source: SourcePerson, ToComplete: what}
}

func (b *builder) measures() Item {
	return Item{Key: "measures", Title: "Measures taken and recurrence prevention", Source: SourcePerson,
		Text:       b.t("measures"),
		ToComplete: b.t("measures.todo")}
}

func (b *builder) appi(r *Report) {
	p := b.persons("")
	r.Persons = p
	if p.Total > 1000 {
		r.Because = append(r.Because, b.t("appi.why.1000", p.Total))
	}
	if b.sensitive() {
		r.Because = append(r.Because, b.t("appi.why.sens"))
	}
	if b.in.UnauthorizedAccess() {
		r.Because = append(r.Because, b.t("appi.why.unauth", b.in.Cause))
	}
	r.Required = len(r.Because) > 0
	if b.ciphertextOnly() {
		// Advanced encryption, keys not leaked: excluded from the duty.
		r.Required, r.Because = false, []string{}
	}
	final, basis := 30, b.t("appi.final.30")
	if b.in.UnauthorizedAccess() {
		final, basis = 60, b.t("appi.final.60")
	}
	d := b.in.DiscoveredAt
	r.Deadline = []Deadline{
		{Name: b.t("appi.prelim"), Due: d.Add(day(5)), Basis: b.t("appi.prelim.basis")},
		{Name: b.t("appi.final"), Due: d.Add(day(final)), Basis: basis},
	}
	// The items of the PPC's report form (個人データの漏えい等の報告), in
	// its order.
	r.Items = []Item{
		withTitle(b.reporter(), b.t("appi.1")),
		{Key: "overview", Title: b.t("appi.2"), Text: b.overview(), Source: SourceScope},
		{Key: "kinds", Title: b.t("appi.3"), Text: b.kinds(), Source: SourceScope},
		{Key: "persons", Title: b.t("appi.4"), Text: b.number(""), Source: SourceScope},
		withTitle(b.cause(), b.t("appi.5")),
		person("secondary-damage", b.t("appi.6"), b.t("appi.6.todo")),
		person("notification", b.t("appi.7"), b.t("appi.7.todo")),
		person("announcement", b.t("appi.8"), b.t("appi.8.todo")),
		withTitle(b.measures(), b.t("appi.9")),
		person("other", b.t("appi.10"), b.t("appi.10.todo")),
	}
	if !r.Required {
		r.Notes = append(r.Notes, b.t("note.appi.notrequired"))
	}
}

// reporter is the controller as configured: name, address, representative
// and contact point.
func (b *builder) reporter() Item {
	c := b.cfg.Controller
	it := Item{Key: "reporter", Title: "Reporter", Source: SourceConfig}
	if c.Empty() {
		it.Source, it.ToComplete = SourcePerson, b.t("reporter.todo")
		return it
	}
	if n := c.NameIn(b.lang); n != "" {
		it.Text = b.t("reporter", n)
	}
	if c.Address != "" {
		it.Text += b.t("reporter.address", c.Address)
	}
	if c.Representative != "" {
		it.Text += b.t("reporter.representative", c.Representative)
	}
	if c.Contact != "" {
		it.Text += b.t("reporter.contact", c.Contact)
	}
	it.Text = strings.ReplaceAll(strings.TrimSpace(it.Text), "..", ".")
	if c.NameIn(b.lang) == "" || c.Address == "" || c.Contact == "" {
		it.ToComplete = b.t("reporter.partial")
	}
	return it
}

func withTitle(it Item, title string) Item {
	it.Title = title
	return it
}

func (b *builder) pdpa(r *Report) {
	r.Persons = b.persons("th")
	r.Required = r.Persons.InScope > 0
	if r.Required {
		r.Because = []string{b.t("pdpa.why", r.Persons.InScope)}
	}
	r.Deadline = []Deadline{{Name: b.t("pdpa.deadline"), Due: b.in.DiscoveredAt.Add(72 * time.Hour), Basis: b.t("pdpa.basis")}}
	r.Items = []Item{
		withTitle(b.reporter(), b.t("controller")),
		{Key: "overview", Title: b.t("pdpa.overview"), Text: b.overview(), Source: SourceScope},
		{Key: "kinds", Title: b.t("pdpa.kinds"), Text: b.kinds(), Source: SourceScope},
		{Key: "persons", Title: b.t("pdpa.persons"), Text: b.number("th"), Source: SourceScope},
		b.contact(),
		person("consequences", b.t("pdpa.consequences"), b.t("pdpa.consequences.todo")),
		withTitle(b.measures(), b.t("pdpa.measures")),
	}
}

func (b *builder) pdpID(r *Report) {
	r.Persons = b.persons("id")
	r.Required = r.Persons.InScope > 0
	if r.Required {
		r.Because = []string{b.t("id.why", r.Persons.InScope)}
	}
	r.Deadline = []Deadline{{Name: b.t("id.deadline"), Due: b.in.DiscoveredAt.Add(72 * time.Hour), Basis: b.t("id.basis")}}
	r.Items = []Item{
		{Key: "data", Title: b.t("id.data"), Text: b.kinds() + b.t("join") + b.number("id"), Source: SourceScope},
		{Key: "when-how", Title: b.t("id.whenhow"), Text: b.overview(), Source: SourceScope},
		withTitle(b.measures(), b.t("id.measures")),
		person("public", b.t("id.public"), b.t("id.public.todo")),
	}
}

func (b *builder) pdpaTW(r *Report) {
	r.Persons = b.persons("tw")
	r.Required = r.Persons.InScope > 0
	if r.Required {
		r.Because = []string{b.t("tw.why", r.Persons.InScope)}
	}
	r.Deadline = []Deadline{}
	r.Items = []Item{
		{Key: "facts", Title: b.t("tw.facts"), Text: b.overview() + b.t("join") + b.kinds(), Source: SourceScope},
		{Key: "persons", Title: b.t("tw.persons"), Text: b.number("tw") + b.t("tw.persons.list"), Source: SourceScope},
		withTitle(b.measures(), b.t("tw.measures")),
		person("timing", b.t("tw.timing"), b.t("tw.timing.todo")),
	}
}

func (b *builder) gdpr(r *Report) {
	r.Persons = b.persons("")
	r.Required = r.Persons.Total > 0
	if r.Required {
		r.Because = []string{b.t("gdpr.why")}
	}
	r.Deadline = []Deadline{{Name: b.t("gdpr.deadline"), Due: b.in.DiscoveredAt.Add(72 * time.Hour), Basis: b.t("gdpr.basis")}}
	r.Items = []Item{
		{Key: "nature", Title: b.t("gdpr.nature"), Text: b.overview() + b.t("join") + b.kinds() + b.t("join") + b.number(""), Source: SourceScope},
		b.contact(),
		person("consequences", b.t("gdpr.consequences"), b.t("gdpr.consequences.todo")),
		withTitle(b.measures(), b.t("gdpr.measures")),
	}
}

func (b *builder) contact() Item {
	if c := b.cfg.Controller.Contact; c != "" {
		return Item{Key: "contact", Title: b.t("contact"), Text: c, Source: SourceConfig}
	}
	return person("contact", b.t("contact"), b.t("contact.todo"))
}

// tables are the scope's breakdowns.
func (b *builder) tables() []Table {
	sc := b.sc
	coll := Table{Title: b.t("table.collection"), Header: []string{b.t("col.collection"), b.t("col.persons.confirmed"), b.t("col.fields"), b.t("col.persons.possible"), b.t("col.denied"), b.t("col.fieldnames")}}
	for _, k := range slices.Sorted(maps.Keys(sc.ByCollection)) {
		c := sc.ByCollection[k]
		coll.Rows = append(coll.Rows, []string{k, itoa(c.SubjectsExposed), itoa(c.FieldsExposed), itoa(c.SubjectsPossible), itoa(c.DeniedAttempts), strings.Join(c.Fields, ", ")})
	}
	reg := Table{Title: b.t("table.region"), Header: []string{b.t("col.region"), b.t("col.country"), b.t("col.persons.confirmed"), b.t("col.fields"), b.t("col.persons.possible")}}
	for _, k := range slices.Sorted(maps.Keys(sc.ByRegion)) {
		c := sc.ByRegion[k]
		reg.Rows = append(reg.Rows, []string{k, c.Country, itoa(c.SubjectsExposed), itoa(c.FieldsExposed), itoa(c.SubjectsPossible)})
	}
	cls := Table{Title: b.t("table.class"), Header: []string{b.t("col.class"), b.t("col.persons.confirmed"), b.t("col.fields"), b.t("col.fieldnames")}}
	for _, k := range slices.Sorted(maps.Keys(sc.ByClassification)) {
		c := sc.ByClassification[k]
		cls.Rows = append(cls.Rows, []string{k, itoa(c.SubjectsExposed), itoa(c.FieldsExposed), strings.Join(c.Fields, ", ")})
	}
	return []Table{coll, reg, cls}
}

func itoa(n int) string { return fmt.Sprint(n) }

// logSizes describes the sizes of the logs a scope read.
func logSizes(sc *incident.Scope) string {
	if len(sc.LogSizes) == 0 {
		return fmt.Sprintf("log size %d", sc.LogSize)
	}
	names := make([]string, 0, len(sc.LogSizes))
	for k := range sc.LogSizes {
		names = append(names, k)
	}
	sort.Strings(names)
	parts := make([]string, len(names))
	for i, k := range names {
		parts[i] = fmt.Sprintf("%s=%d", k, sc.LogSizes[k])
	}
	return strings.Join(parts, ", ")
}

// encryption says which values were returned in plaintext and which
// records were only reached as ciphertext, and which exemption applies:
// APPI's for data under advanced encryption whose keys were not leaked,
// GDPR art. 34(3)(a) for data unintelligible to anyone not authorised.
func (b *builder) encryption(kind string) Item {
	sc := b.sc
	it := Item{Key: "encryption", Title: b.t("enc.title"), Source: SourceScope}
	it.Text = b.t("enc.counts", sc.SubjectsPlaintext, sc.SubjectsMaskedOnly)
	if sc.Ciphertext.Records > 0 {
		it.Text += b.t("enc.ciphertext", sc.Ciphertext.Records, strings.Join(sc.Ciphertext.Collections, ", "))
		if sc.Ciphertext.Note != "" {
			it.Text += " (" + sc.Ciphertext.Note + ")"
		}
	}
	switch {
	case b.ciphertextOnly():
		key := "enc.exempt." + kind
		if !has(b.lang, key) {
			key = "enc.exempt"
		}
		it.Text += b.t(key)
	case sc.SubjectsPlaintext > 0:
		it.Text += b.t("enc.notexempt")
	}
	it.ToComplete = b.t("enc.todo")
	return it
}

// entrustment names, for each grant the suspects acted through, the
// grantor (the controller) and the grantee (the entrusted party, 委託先).
func (b *builder) entrustment() Item {
	it := Item{Key: "entrustment", Title: b.t("ent.title"), Source: SourceScope}
	if len(b.sc.Entrustment) == 0 {
		it.Text = b.t("ent.none")
		return it
	}
	var parts []string
	for _, e := range b.sc.Entrustment {
		parts = append(parts, b.t("ent.part", e.Grant, e.Grantor, e.Grantee, e.Events, e.Subjects))
	}
	it.Text = b.t("ent.some", strings.Join(parts, "; "))
	it.ToComplete = b.t("ent.todo")
	return it
}

// ciphertextOnly reports whether the incident reached ciphertext only: no
// value returned or touched, records of a copy without keys.
func (b *builder) ciphertextOnly() bool {
	sc := b.sc
	return sc.SubjectsExposed == 0 && sc.SubjectsPossible == 0 && sc.Ciphertext.Records > 0
}
