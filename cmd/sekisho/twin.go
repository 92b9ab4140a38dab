package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/sekisho/sekisho/access"
	"github.com/sekisho/sekisho/client"
	"github.com/sekisho/sekisho/guard"
	"github.com/sekisho/sekisho/incident"
	"github.com/sekisho/sekisho/regions"
	"github.com/sekisho/sekisho/report"
)

// twin does the work of the verbs that run both through a running server
// and offline: incident open, list, scope and notices, report (every kind)
// and subject report. apiTwin does it through the API with the profile's
// credential; localTwin on the local store (--data, --store, --config:
// read-only and without the lock, beside a running server, except incident
// open, notices and subject report, which write the audit log and take the
// data directory's lock). Each verb checks its flags, calls its twin and
// prints: its logic is written once.
type twin interface {
	// openIncident records an incident, with its write-ahead
	// incident.create event, and returns it as stored.
	openIncident(ctx context.Context, in *incident.Incident) (*incident.Incident, error)
	// incidents lists the recorded incidents.
	incidents(ctx context.Context) ([]*incident.Incident, error)
	// scope renders (incident.Render's formats; region narrows the
	// subjects) the scope of the recorded incident id or, when id is "", of
	// adhoc's suspects and window: the API records adhoc first (and says
	// its id on standard error), offline it is computed unrecorded.
	scope(ctx context.Context, id string, adhoc *incident.Incident, format, region string) ([]byte, error)
	// report renders a regulator report of incident id, or (kind progress)
	// the progress report.
	report(ctx context.Context, kind, id string, o reportOpts) ([]byte, error)
	// provision renders org's record of provision of [since, until).
	provision(ctx context.Context, org string, since, until time.Time, format, lang string) ([]byte, error)
	// subjectReport renders the subject access report of a record.
	subjectReport(ctx context.Context, collection, id, format, lang string) ([]byte, error)
	// notices gathers what incident notices writes from: the incident, the
	// persons of its scope, the items exposed and a reader of the persons'
	// contact fields. Call its done when finished.
	notices(ctx context.Context, id string) (*noticeInput, error)
}

// reportOpts are report's flags that a twin needs.
type reportOpts struct {
	format, lang, since string
	// controller and contact: offline only (through the API the server's
	// configuration names the controller).
	controller, contact string
}

// noticeInput is what incident notices writes from.
type noticeInput struct {
	in       *incident.Incident
	subjects []noticeSubject
	items    []string
	rd       noticeReader
	ctl      report.Controller
	done     func()
}

// twin returns the twin the flags choose: offline when --data, --store or
// --config is given, else the API.
func (s *incidentSource) twin() twin {
	if s.offline() {
		return &localTwin{s}
	}
	return &apiTwin{s}
}

// apiTwin is a twin through a running server's API.
type apiTwin struct{ src *incidentSource }

func (a *apiTwin) openIncident(ctx context.Context, in *incident.Incident) (*incident.Incident, error) {
	return a.src.open(ctx, in)
}

func (a *apiTwin) incidents(ctx context.Context) ([]*incident.Incident, error) {
	b, err := a.src.get(ctx, "/v1/incidents")
	if err != nil {
		return nil, err
	}
	var m struct {
		Incidents []*incident.Incident `json:"incidents"`
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	return m.Incidents, nil
}

func (a *apiTwin) scope(ctx context.Context, id string, adhoc *incident.Incident, format, region string) ([]byte, error) {
	if id == "" {
		out, err := a.src.open(ctx, adhoc)
		if err != nil {
			return nil, err
		}
		id = out.ID
		fmt.Fprintf(a.src.cmd.ErrOrStderr(), "incident id: %s\n", id)
	}
	q := url.Values{"format": {format}}
	if region != "" {
		q.Set("region", region)
	}
	return a.src.get(ctx, "/v1/incidents/"+url.PathEscape(id)+"/scope?"+q.Encode())
}

func (a *apiTwin) report(ctx context.Context, kind, id string, o reportOpts) ([]byte, error) {
	path := "/v1/reports/progress"
	if kind != report.KindProgress {
		path = "/v1/incidents/" + url.PathEscape(id) + "/report/" + kind
	}
	q := url.Values{"format": {o.format}}
	if o.lang != "" {
		q.Set("lang", o.lang)
	}
	if o.since != "" && kind == report.KindProgress {
		q.Set("since", o.since)
	}
	return a.src.get(ctx, path+"?"+q.Encode())
}

func (a *apiTwin) provision(ctx context.Context, org string, since, until time.Time, format, lang string) ([]byte, error) {
	q := url.Values{"format": {format}, "since": {since.Format(time.RFC3339Nano)}, "until": {until.Format(time.RFC3339Nano)}}
	if org != "" {
		q.Set("org", org)
	}
	if lang != "" {
		q.Set("lang", lang)
	}
	return a.src.get(ctx, "/v1/reports/provision?"+q.Encode())
}

func (a *apiTwin) subjectReport(ctx context.Context, collection, id, format, lang string) ([]byte, error) {
	q := url.Values{"format": {format}}
	if lang != "" {
		q.Set("lang", lang)
	}
	return a.src.get(ctx, "/v1/collections/"+url.PathEscape(collection)+"/records/"+url.PathEscape(id)+"/access-report?"+q.Encode())
}

func (a *apiTwin) notices(ctx context.Context, id string) (*noticeInput, error) {
	ins, err := a.src.get(ctx, "/v1/incidents/"+url.PathEscape(id))
	if err != nil {
		return nil, err
	}
	n := &noticeInput{in: &incident.Incident{}}
	if err := json.Unmarshal(ins, n.in); err != nil {
		return nil, err
	}
	b, err := a.src.get(ctx, "/v1/incidents/"+url.PathEscape(id)+"/scope?format=subjects")
	if err != nil {
		return nil, err
	}
	rows, err := csv.NewReader(bytes.NewReader(b)).ReadAll()
	if err != nil || len(rows) == 0 {
		return nil, fmt.Errorf("subjects list: %v", err)
	}
	seen := map[string]bool{}
	for _, r := range rows[1:] {
		n.subjects = append(n.subjects, noticeSubject{r[0], r[1], r[2], r[3]})
		for _, f := range strings.Fields(r[6]) {
			if !seen[r[0]+"."+f] {
				seen[r[0]+"."+f] = true
				n.items = append(n.items, r[0]+"."+f)
			}
		}
	}
	slices.Sort(n.items)
	dir, c, err := a.src.client()
	if err != nil {
		return nil, err
	}
	n.rd = &apiNoticeReader{c: c}
	n.done = func() { client.SaveToken(dir, c) }
	return n, nil
}

// localTwin is a twin on the local store.
type localTwin struct{ src *incidentSource }

func (l *localTwin) openIncident(ctx context.Context, in *incident.Incident) (*incident.Incident, error) {
	if err := openIncidentOffline(ctx, *l.src, in); err != nil {
		return nil, err
	}
	return in, nil
}

func (l *localTwin) incidents(ctx context.Context) ([]*incident.Incident, error) {
	st, err := l.src.openReadOnly(ctx)
	if err != nil {
		return nil, err
	}
	defer st.Close()
	return incident.List(ctx, st)
}

func (l *localTwin) scope(ctx context.Context, id string, adhoc *incident.Incident, format, region string) ([]byte, error) {
	st, err := l.src.openReadOnly(ctx)
	if err != nil {
		return nil, err
	}
	defer st.Close()
	in := adhoc
	if id != "" {
		if in, err = incident.Get(ctx, st, id); err != nil {
			return nil, err
		}
	} else {
		in.ID = "ad-hoc"
	}
	sc, err := incident.Compute(ctx, st, access.NewDirectory(st), regions.LogStores(st), in)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	if err := incident.Render(&b, sc, format, region); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

func (l *localTwin) report(ctx context.Context, kind, id string, o reportOpts) ([]byte, error) {
	st, err := l.src.openReadOnly(ctx)
	if err != nil {
		return nil, err
	}
	defer st.Close()
	ctl, err := configController(l.src.config)
	if err != nil {
		return nil, err
	}
	if o.controller != "" {
		if ctl.Name == nil {
			ctl.Name = map[string]string{}
		}
		ctl.Name[report.LangEN] = o.controller
	}
	if o.contact != "" {
		ctl.Contact = o.contact
	}
	cfg := report.Config{Controller: ctl, Lang: o.lang, Now: time.Now(), Logs: regions.LogStores(st),
		Directory: access.NewDirectory(st), Rules: guard.Rules{Store: st}}
	var r *report.Report
	if kind == report.KindProgress {
		if cfg.Since, err = parseTimeFlag("since", o.since); err != nil {
			return nil, err
		}
		if cfg.Keys, err = l.src.keyCustody(); err != nil {
			return nil, err
		}
		r, err = report.Progress(ctx, st, cfg)
	} else {
		in, gerr := incident.Get(ctx, st, id)
		if gerr != nil {
			return nil, gerr
		}
		sc, serr := incident.Compute(ctx, st, access.NewDirectory(st), regions.LogStores(st), in)
		if serr != nil {
			return nil, serr
		}
		r, err = report.Breach(kind, in, sc, cfg)
	}
	if err != nil {
		return nil, err
	}
	b, _, err := report.Render(r, o.format)
	return b, err
}

func (l *localTwin) provision(ctx context.Context, org string, since, until time.Time, format, lang string) ([]byte, error) {
	if org == "" {
		return nil, usageErrorf("offline, report provision needs --org O")
	}
	st, err := l.src.openReadOnly(ctx)
	if err != nil {
		return nil, err
	}
	defer st.Close()
	rows, sizes, err := report.Provisions(ctx, regions.LogStores(st), org, since, until)
	if err != nil {
		return nil, err
	}
	if format == "csv" {
		return report.ProvisionCSV(rows)
	}
	ctl, err := configController(l.src.config)
	if err != nil {
		return nil, err
	}
	if ctl.Empty() {
		if ctl, err = report.ControllerOf(ctx, st, org, ctl); err != nil {
			return nil, err
		}
	}
	r, err := report.ProvisionReport(org, since, until, rows, sizes, report.Config{Controller: ctl, Lang: lang, Now: time.Now()})
	if err != nil {
		return nil, err
	}
	b, _, err := report.Render(r, format)
	return b, err
}

func (l *localTwin) subjectReport(ctx context.Context, collection, id, format, lang string) ([]byte, error) {
	return subjectReportOffline(ctx, l.src, collection, id, format, lang)
}

func (l *localTwin) notices(ctx context.Context, id string) (*noticeInput, error) {
	src := l.src
	if src.data == "" {
		return nil, usageErrorf("offline, notices need --data DIR (the instance's keys open the contact fields)")
	}
	if err := existingDataDir(src.data); err != nil {
		return nil, err
	}
	inst, err := openInstance(ctx, instanceOptions{DataDir: src.data, Store: src.store, Stderr: src.cmd.ErrOrStderr()})
	if err != nil {
		return nil, err
	}
	n := &noticeInput{done: func() { inst.Close() }}
	if err := func() error {
		if n.in, err = incident.Get(ctx, inst.store, id); err != nil {
			return err
		}
		sc, err := incident.Compute(ctx, inst.store, access.NewDirectory(inst.store), regions.LogStores(inst.store), n.in)
		if err != nil {
			return err
		}
		for _, s := range sc.Subjects {
			n.subjects = append(n.subjects, noticeSubject{s.Collection, s.ID, s.Org, s.Region})
		}
		n.items = scopeItems(sc)
		if n.ctl, err = configController(src.config); err != nil {
			return err
		}
		host, _ := os.Hostname()
		n.rd = &localNoticeReader{v: inst.vault, device: "local:" + host}
		return nil
	}(); err != nil {
		inst.Close()
		return nil, err
	}
	return n, nil
}
