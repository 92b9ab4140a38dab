package report

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/sekisho/sekisho"
	"github.com/sekisho/sekisho/incident"
)

// Kinds of report.
const (
	KindAPPI     = "appi"
	KindPDPA     = "pdpa"
	KindPDPID    = "pdp-id"
	KindPDPATW   = "pdpa-tw"
	KindGDPR     = "gdpr"
	KindProgress = "progress"
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
)

// Config is what a report needs besides the incident and its scope.
type Config struct {
	// Controller is the business operator filing the report.
	Controller string `json:"controller,omitempty"`
	// Contact is the contact point (a DPO, a privacy office).
	Contact string `json:"contact,omitempty"`
	// Now stamps the report; default time.Now.
	Now time.Time `json:"-"`
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
	if cfg.Now.IsZero() {
		cfg.Now = time.Now()
	}
	b := &builder{in: in, sc: sc, cfg: cfg}
	var r *Report
	switch kind {
	case KindAPPI:
		r = b.appi()
	case KindPDPA:
		r = b.pdpa()
	case KindPDPID:
		r = b.pdpID()
	case KindPDPATW:
		r = b.pdpaTW()
	case KindGDPR:
		r = b.gdpr()
	default:
		return nil, sekisho.FieldErrorf(sekisho.EInvalid, "kind", "report kind %q is not one of %s", kind, strings.Join(Kinds, ", "))
	}
	r.Kind, r.Incident, r.Controller = kind, in.ID, cfg.Controller
	r.GeneratedAt = cfg.Now.UTC()
	for i := range r.Deadline {
		r.Deadline[i].Due = r.Deadline[i].Due.UTC()
		r.Deadline[i].Overdue = r.Deadline[i].Due.Before(r.GeneratedAt)
	}
	r.Tables = append(r.Tables, b.tables()...)
	r.Notes = append(r.Notes,
		fmt.Sprintf("Every number comes from the audit log (%d events of the suspects in the window, log size %d); the per-subject list with the audit event indexes behind each subject is `sekisho incident scope --incident %s --format subjects` (CSV), and each event's inclusion proof is GET /v1/audit/proof/inclusion?index=N&size=%d.", sc.Events, sc.LogSize, in.ID, sc.LogSize),
		"A draft for the person who files it: check the regulator's current form and thresholds before filing.")
	return r, nil
}

type builder struct {
	in  *incident.Incident
	sc  *incident.Scope
	cfg Config
}

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
		who = append(who, "principals "+strings.Join(in.Principals, ", "))
	}
	if len(in.Devices) > 0 {
		who = append(who, "devices "+strings.Join(in.Devices, ", "))
	}
	if len(in.Orgs) > 0 {
		who = append(who, "organisations "+strings.Join(in.Orgs, ", "))
	}
	s := fmt.Sprintf("Between %s and %s, %s acted on personal data held in the vault. The incident was discovered at %s (cause recorded: %s). ",
		ts(in.Since), ts(in.Until), strings.Join(who, "; "), ts(in.DiscoveredAt), in.Cause)
	s += fmt.Sprintf("The audit log shows %d data subjects whose field values were returned (%d field values), %d more touched without a value returned, and %d attempts refused by the vault.",
		sc.SubjectsExposed, sc.FieldsExposed, sc.SubjectsPossible, sc.DeniedAttempts)
	if in.Description != "" {
		s += " " + in.Description
	}
	return s
}

// kinds describes the kinds of personal data returned.
func (b *builder) kinds() string {
	if len(b.sc.ByClassification) == 0 {
		return "No field value was returned to the suspects."
	}
	var parts []string
	for _, cl := range keys(b.sc.ByClassification) {
		c := b.sc.ByClassification[cl]
		parts = append(parts, fmt.Sprintf("%s (%d persons): %s", cl, c.SubjectsExposed, strings.Join(c.Fields, ", ")))
	}
	s := "Fields returned, by classification: " + strings.Join(parts, "; ") + "."
	if b.sensitive() {
		s += " Sensitive data is involved."
	}
	return s
}

func (b *builder) number(region string) string {
	p := b.persons(region)
	s := fmt.Sprintf("%d persons confirmed (values returned) and %d possibly affected (touched without values returned): %d in total.", p.Confirmed, p.Possible, p.Total)
	if region != "" {
		s += fmt.Sprintf(" Of them, %d are data subjects resident in %s.", p.InScope, strings.ToUpper(region))
	}
	s += fmt.Sprintf(" In the worst case the suspects could have read %d records under the roles and grants they held.", p.WorstCase)
	return s
}

func (b *builder) cause() Item {
	it := Item{Key: "cause", Title: "Cause", Source: SourceIncident,
		Text: fmt.Sprintf("Recorded cause: %s. %d of the suspects' requests were refused by the vault (default deny, grants, budgets).", b.in.Cause, b.sc.DeniedAttempts)}
	it.ToComplete = "How the credentials or devices were obtained and how the attacker got in (forensics of the machines concerned)."
	return it
}

func person(key, title, what string) Item {
	return Item{Key: key, Title: title, Source: SourcePerson, ToComplete: what}
}

func (b *builder) measures() Item {
	return Item{Key: "measures", Title: "Measures taken and recurrence prevention", Source: SourcePerson,
		Text:       "Controls in place in the vault: every record sealed under its own key; every credential bound to an enrolled device; access across organisations only through explicit grants; every decision in a tamper-evident audit log (see the progress report).",
		ToComplete: "Revocations done (principals, devices, grants), and the measures decided to prevent recurrence, with dates."}
}

func (b *builder) appi() *Report {
	r := &Report{Title: "Report of a personal data breach to the Personal Information Protection Commission",
		Law: "Japan: Act on the Protection of Personal Information (APPI) art. 26; PPC Enforcement Rules art. 7 and 8", Recipient: "Personal Information Protection Commission (PPC)"}
	p := b.persons("")
	r.Persons = p
	if p.Total > 1000 {
		r.Because = append(r.Because, fmt.Sprintf("more than 1,000 persons are affected (%d)", p.Total))
	}
	if b.sensitive() {
		r.Because = append(r.Because, "sensitive personal data (special care-required) is involved")
	}
	if b.in.UnauthorizedAccess() {
		r.Because = append(r.Because, "the cause is unauthorized access ("+b.in.Cause+")")
	}
	r.Required = len(r.Because) > 0
	final := 30
	basis := "Enforcement Rules art. 8(2): within 30 days of awareness"
	if b.in.UnauthorizedAccess() {
		final, basis = 60, "Enforcement Rules art. 8(2): within 60 days of awareness where the breach was caused by unauthorized access"
	}
	d := b.in.DiscoveredAt
	r.Deadline = []Deadline{
		{Name: "Preliminary report", Due: d.Add(day(5)), Basis: "Enforcement Rules art. 8(1): promptly, about 3 to 5 days from awareness (the latest of that range is shown)"},
		{Name: "Final report", Due: d.Add(day(final)), Basis: basis},
	}
	r.Items = []Item{
		{Key: "overview", Title: "1. Overview", Text: b.overview(), Source: SourceScope},
		{Key: "kinds", Title: "2. Kinds of personal data concerned", Text: b.kinds(), Source: SourceScope},
		{Key: "persons", Title: "3. Number of persons concerned", Text: b.number(""), Source: SourceScope},
		withTitle(b.cause(), "4. Cause"),
		person("secondary-damage", "5. Secondary damage or its risk", "Whether secondary damage occurred or may occur (fraud, phishing, publication of the data), and what it is."),
		person("notification", "6. Notification of the persons", "Whether and when the persons were notified or will be (the per-region notification lists: `sekisho incident scope --format subjects --region R`)."),
		person("announcement", "7. Public announcement", "Whether and when the incident was or will be announced publicly."),
		withTitle(b.measures(), "8. Measures to prevent recurrence"),
		person("other", "9. Other matters for reference", "Reports to other authorities (police, other countries' regulators), and the contact point."),
	}
	if !r.Required {
		r.Notes = append(r.Notes, "By the scope alone none of the mandatory conditions holds; a person checks the others (data whose misuse may cause financial damage, an unauthorized purpose).")
	}
	return r
}

func withTitle(it Item, title string) Item {
	it.Title = title
	return it
}

func (b *builder) pdpa() *Report {
	r := &Report{Title: "Notification of a personal data breach to the Office of the Personal Data Protection Committee",
		Law: "Thailand: Personal Data Protection Act B.E. 2562 (2019) s. 37(4); PDPC notification on breach notification (2022)", Recipient: "Office of the Personal Data Protection Committee (PDPC)"}
	r.Persons = b.persons("th")
	r.Required = r.Persons.InScope > 0
	if r.Required {
		r.Because = []string{fmt.Sprintf("%d data subjects resident in Thailand are concerned; notify unless the breach is unlikely to result in a risk to their rights and freedoms", r.Persons.InScope)}
	}
	r.Deadline = []Deadline{{Name: "Notice to the PDPC Office", Due: b.in.DiscoveredAt.Add(72 * time.Hour), Basis: "s. 37(4): without delay and within 72 hours of becoming aware"}}
	r.Items = []Item{
		{Key: "overview", Title: "Details of the breach", Text: b.overview(), Source: SourceScope},
		{Key: "kinds", Title: "Personal data concerned", Text: b.kinds(), Source: SourceScope},
		{Key: "persons", Title: "Number of data subjects and records", Text: b.number("th"), Source: SourceScope},
		b.contact(),
		person("consequences", "Likely consequences", "The risk to the data subjects' rights and freedoms; whether it is high (then the data subjects are notified too, without delay)."),
		withTitle(b.measures(), "Measures taken or proposed"),
	}
	return r
}

func (b *builder) pdpID() *Report {
	r := &Report{Title: "Notification of a failure of personal data protection",
		Law: "Indonesia: Law No. 27 of 2022 on Personal Data Protection (UU PDP) art. 46", Recipient: "The data subjects and the personal data protection authority (lembaga)"}
	r.Persons = b.persons("id")
	r.Required = r.Persons.InScope > 0
	if r.Required {
		r.Because = []string{fmt.Sprintf("%d data subjects resident in Indonesia are concerned", r.Persons.InScope)}
	}
	r.Deadline = []Deadline{{Name: "Written notice to the data subjects and the authority", Due: b.in.DiscoveredAt.Add(72 * time.Hour), Basis: "art. 46(1): at the latest 3 x 24 hours"}}
	r.Items = []Item{
		{Key: "data", Title: "Personal data disclosed", Text: b.kinds() + " " + b.number("id"), Source: SourceScope},
		{Key: "when-how", Title: "When and how the data was disclosed", Text: b.overview(), Source: SourceScope},
		withTitle(b.measures(), "Efforts to handle and recover from the failure"),
		person("public", "Announcement to the public", "Art. 46(3): whether the failure must also be announced to the public."),
	}
	return r
}

func (b *builder) pdpaTW() *Report {
	r := &Report{Title: "Notice to the data subjects of a personal data breach",
		Law: "Taiwan: Personal Data Protection Act art. 12; Enforcement Rules art. 22", Recipient: "The data subjects concerned"}
	r.Persons = b.persons("tw")
	r.Required = r.Persons.InScope > 0
	if r.Required {
		r.Because = []string{fmt.Sprintf("%d data subjects resident in Taiwan are concerned", r.Persons.InScope)}
	}
	r.Deadline = []Deadline{}
	r.Items = []Item{
		{Key: "facts", Title: "The facts of the breach", Text: b.overview() + " " + b.kinds(), Source: SourceScope},
		{Key: "persons", Title: "Persons to notify", Text: b.number("tw") + " The notification list: `sekisho incident scope --format subjects --region tw`.", Source: SourceScope},
		withTitle(b.measures(), "Measures taken"),
		person("timing", "Timing and means of the notice", "Art. 12: notify by appropriate means once the facts are clarified; check whether the sector's competent authority also requires a report (some require one within 72 hours)."),
	}
	return r
}

func (b *builder) gdpr() *Report {
	r := &Report{Title: "Notification of a personal data breach to the supervisory authority",
		Law: "GDPR art. 33 (reference form)", Recipient: "The competent supervisory authority"}
	r.Persons = b.persons("")
	r.Required = r.Persons.Total > 0
	if r.Required {
		r.Because = []string{"personal data was or may have been disclosed; notify unless the breach is unlikely to result in a risk to the rights and freedoms of natural persons"}
	}
	r.Deadline = []Deadline{{Name: "Notification to the supervisory authority", Due: b.in.DiscoveredAt.Add(72 * time.Hour), Basis: "art. 33(1): without undue delay and, where feasible, not later than 72 hours after becoming aware"}}
	r.Items = []Item{
		{Key: "nature", Title: "(a) Nature of the breach, categories and approximate number of data subjects and records", Text: b.overview() + " " + b.kinds() + " " + b.number(""), Source: SourceScope},
		b.contact(),
		person("consequences", "(c) Likely consequences", "The likely consequences for the data subjects; whether the risk is high (art. 34: then they are told too)."),
		withTitle(b.measures(), "(d) Measures taken or proposed"),
	}
	return r
}

func (b *builder) contact() Item {
	if b.cfg.Contact != "" {
		return Item{Key: "contact", Title: "Contact point (data protection officer)", Text: b.cfg.Contact, Source: SourceConfig}
	}
	return person("contact", "Contact point (data protection officer)", "Name and contact details of the data protection officer or contact point.")
}

// tables are the scope's breakdowns.
func (b *builder) tables() []Table {
	sc := b.sc
	coll := Table{Title: "By collection", Header: []string{"collection", "persons confirmed", "field values", "persons possible", "denied attempts", "fields"}}
	for _, k := range keys(sc.ByCollection) {
		c := sc.ByCollection[k]
		coll.Rows = append(coll.Rows, []string{k, itoa(c.SubjectsExposed), itoa(c.FieldsExposed), itoa(c.SubjectsPossible), itoa(c.DeniedAttempts), strings.Join(c.Fields, ", ")})
	}
	reg := Table{Title: "By region", Header: []string{"region", "country", "persons confirmed", "field values", "persons possible"}}
	for _, k := range keys(sc.ByRegion) {
		c := sc.ByRegion[k]
		reg.Rows = append(reg.Rows, []string{k, c.Country, itoa(c.SubjectsExposed), itoa(c.FieldsExposed), itoa(c.SubjectsPossible)})
	}
	cls := Table{Title: "By classification", Header: []string{"classification", "persons confirmed", "field values", "fields"}}
	for _, k := range keys(sc.ByClassification) {
		c := sc.ByClassification[k]
		cls.Rows = append(cls.Rows, []string{k, itoa(c.SubjectsExposed), itoa(c.FieldsExposed), strings.Join(c.Fields, ", ")})
	}
	return []Table{coll, reg, cls}
}

func itoa(n int) string { return fmt.Sprint(n) }

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
