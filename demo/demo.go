// Package demo replays the 2023 attack chain (a subcontractor's PC, then an
// affiliate's shared personnel system, then the operator's data) against a
// fresh zero-trust vault and against a "shared trust" copy of it, and prints
// what sekisho refused, detected and scoped, every number read back from
// the audit log. The command (sekisho demo line-breach) gives it the wiring:
// how a data directory is opened and served, as serve does it.
package demo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/sekisho/sekisho"
	"github.com/sekisho/sekisho/access"
	"github.com/sekisho/sekisho/access/dpop"
	"github.com/sekisho/sekisho/audit"
	"github.com/sekisho/sekisho/client"
	"github.com/sekisho/sekisho/gen"
	"github.com/sekisho/sekisho/incident"
	"github.com/sekisho/sekisho/keys"
	"github.com/sekisho/sekisho/report"
	"github.com/sekisho/sekisho/vault"
)

// Options say how to run the demo.
type Options struct {
	// Data, when set, is where the zero-trust vault is left (the
	// shared-trust copy goes to Data-shared-trust); "" is a temporary
	// directory, removed.
	Data    string
	Records int    // records to generate (at least 1000)
	Seed    uint64 // seed of the generated records
	Out     io.Writer
	// Open opens a data directory and serves it, as serve does (required).
	Open Opener
	// LockFile names the data directory's lock file, not copied with it.
	LockFile string
	// ServeAddr is the address serve listens on by default: the saved
	// admin profile points there.
	ServeAddr string
}

// NodeOptions say how to open one vault of the replay.
type NodeOptions struct {
	Dir           string
	MasterKeyFile string
	Now           func() time.Time
	// Guard runs the exfiltration guard (false for shared trust).
	Guard bool
	// Org and Region are the root org and its home region.
	Org, Region string
	// Location is the guard's off-hours zone.
	Location *time.Location
}

// Node is an opened data directory and its request path.
type Node struct {
	Handler http.Handler
	Vault   *vault.Vault
	// Load returns the import command's pipeline into Vault for records of
	// collection owned by c's org (importer.VaultSink).
	Load  func(c sekisho.Caller, collection string) Sink
	Store sekisho.Store
	Log   *audit.Log
	Logs  *audit.Logs
	// BootstrapToken is the data directory's bootstrap admin token.
	BootstrapToken string
	// Close stops the request path and closes the data directory.
	Close func()
}

// Sink takes records in batches and writes them, as the import command
// does: batch k is sealed while k-1 commits. Write returns one error (or
// nil) per record, numbered from line; Flush waits for every commit.
type Sink interface {
	Write(ctx context.Context, records []*sekisho.RecordInput, line int) ([]error, error)
	Flush(ctx context.Context) error
}

// Opener opens and serves a data directory.
type Opener func(ctx context.Context, o NodeOptions) (*Node, error)

// Result is what a run found: the incident and the two scopes, read back
// from the audit logs.
type Result struct {
	IncidentID string
	ZeroTrust  *incident.Scope
	Shared     *incident.Scope
	Dirs       [2]string
	Suspects   *incident.Incident
	Profile    string // with Data: DATA/admin-profile
}

// jst is the operator's time zone; the replay runs on a clock in 2023.
var jst = time.FixedZone("JST", 9*3600)

// clock is the replay's clock: a set instant that runs on with real time.
type clock struct {
	mu   sync.Mutex
	base time.Time
	ref  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.base.Add(time.Since(c.ref))
}

// Set moves the clock to t (forward: days pass between the chain's steps).
func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.base, c.ref = t, time.Now()
}

// The timeline of the 2023 case, in JST.
var (
	tLoaded     = time.Date(2023, 9, 1, 9, 0, 0, 0, jst)
	tInfected   = time.Date(2023, 9, 14, 10, 0, 0, 0, jst)
	tPivot      = time.Date(2023, 10, 2, 13, 0, 0, 0, jst)
	tNoticed    = time.Date(2023, 10, 9, 9, 0, 0, 0, jst)
	tWindowFrom = time.Date(2023, 9, 14, 0, 0, 0, 0, jst)
	tWindowTo   = time.Date(2023, 10, 28, 0, 0, 0, 0, jst)
)

// world is one vault under replay: the opened data directory, its node
// on a loopback port, and the in-process clients of every actor.
type world struct {
	node  *Node
	hs    *http.Server
	url   string
	clock *clock

	admin, admin2    *client.Client
	contractor, sync *client.Client
	devices          map[string]string // principal -> device id
}

func (w *world) Close() {
	if w.hs != nil {
		w.hs.Close()
	}
	if w.node != nil {
		w.node.Close()
	}
}

// openWorld opens dir and serves it on a loopback port.
func openWorld(ctx context.Context, open Opener, dir, masterKeyFile string, clk *clock, withGuard bool) (*world, error) {
	w := &world{clock: clk, devices: map[string]string{}}
	var err error
	if w.node, err = open(ctx, NodeOptions{Dir: dir, MasterKeyFile: masterKeyFile, Now: clk.Now, Guard: withGuard, Org: "operator", Region: "jp", Location: jst}); err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		w.Close()
		return nil, err
	}
	w.url = "http://" + ln.Addr().String()
	w.hs = &http.Server{Handler: w.node.Handler, ReadHeaderTimeout: 10 * time.Second}
	go w.hs.Serve(ln)
	return w, nil
}

// newClient makes a client of the world with a fresh device key; from
// attacker is true for the attacker's machine (source address 127.0.0.2).
func (w *world) newClient(key *dpop.Key, fromAttacker bool) (*client.Client, error) {
	if key == nil {
		var err error
		if key, err = dpop.GenerateKey("ed25519"); err != nil {
			return nil, err
		}
	}
	c := client.New(w.url, key)
	c.Now = w.clock.Now
	d := &net.Dialer{Timeout: 5 * time.Second}
	if fromAttacker {
		d.LocalAddr = &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}
	}
	c.HTTP = &http.Client{Timeout: 2 * time.Minute, Transport: &http.Transport{DialContext: d.DialContext, MaxIdleConnsPerHost: 4}}
	return c, nil
}

// enrol creates principal p of org with roles and an approved device.
func (w *world) enrol(ctx context.Context, approver *client.Client, p, org, kind string, roles ...string) (*client.Client, error) {
	if err := w.admin.JSON(ctx, "POST", "/v1/principals", "", access.Principal{ID: p, Org: org, Kind: kind, Roles: roles}, nil); err != nil {
		return nil, fmt.Errorf("create principal %s: %w", p, err)
	}
	c, err := w.newClient(nil, false)
	if err != nil {
		return nil, err
	}
	d, err := c.Enrol(ctx, p, p+"-laptop")
	if err != nil {
		return nil, fmt.Errorf("enrol %s: %w", p, err)
	}
	if err := approver.JSON(ctx, "POST", "/v1/devices/"+d.ID+"/approve", "", nil, nil); err != nil {
		return nil, fmt.Errorf("approve %s: %w", d.ID, err)
	}
	w.devices[p] = d.ID
	return c, nil
}

// split returns the counts of users, partners and employees for n records in
// the case's proportions (about 300k users, 86k partners, 51k employees).
func split(n int) (users, partners, employees int) {
	users = n * 300 / 437
	partners = n * 86 / 437
	return users, partners, n - users - partners
}

// load generates and imports the records: users and partners of the
// operator, employees of the operator and of the affiliate.
func load(ctx context.Context, node *Node, n int, seed uint64, out io.Writer) error {
	users, partners, employees := split(n)
	g := gen.New(seed)
	loader := func(org string) sekisho.Caller {
		return sekisho.Caller{Principal: "demo-loader", Org: org, Device: "local", Roles: []string{"admin"}, Source: "local", Purpose: "import", RequestID: "demo-load"}
	}
	parts := []struct {
		collection, org string
		n               int
	}{
		{"users", "operator", users}, {"partners", "operator", partners},
		{"employees", "operator", employees * 3 / 5}, {"employees", "affiliate", employees - employees*3/5},
	}
	start := time.Now()
	for _, p := range parts {
		// The import command's pipeline: batch k is sealed while k-1 commits.
		sink := node.Load(loader(p.org), p.collection)
		for done := 0; done < p.n; {
			recs := make([]*sekisho.RecordInput, min(5000, p.n-done))
			for i := range recs {
				recs[i], _ = g.Record(p.collection)
			}
			errs, err := sink.Write(ctx, recs, done+1)
			if err != nil {
				return err
			}
			for _, e := range errs {
				if e != nil {
					return fmt.Errorf("generated record refused: %w", e)
				}
			}
			done += len(recs)
		}
		if err := sink.Flush(ctx); err != nil {
			return err
		}
		fmt.Fprintf(out, "  %-9s %7d records of %s\n", p.collection, p.n, p.org)
	}
	el := time.Since(start)
	fmt.Fprintf(out, "  loaded %d records in %s (%.0f records/s)\n", n, el.Round(time.Second), float64(n)/el.Seconds())
	return nil
}

// Run runs the whole demo.
func Run(ctx context.Context, o Options) (*Result, error) {
	out := o.Out
	if o.Open == nil {
		return nil, errors.New("demo: no Opener")
	}
	if o.Records < 1000 {
		return nil, errors.New("--records must be at least 1000")
	}
	tmp, err := os.MkdirTemp("", "sekisho-demo-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	dirA := o.Data
	if dirA == "" {
		dirA = filepath.Join(tmp, "zero-trust")
	} else if entries, err := os.ReadDir(dirA); err == nil && len(entries) > 0 {
		return nil, fmt.Errorf("--data %s is not empty: the demo needs a fresh vault", dirA)
	}
	dirB := filepath.Join(tmp, "shared-trust")
	if o.Data != "" {
		dirB = strings.TrimRight(o.Data, "/") + "-shared-trust"
		if entries, err := os.ReadDir(dirB); err == nil && len(entries) > 0 {
			return nil, fmt.Errorf("%s is not empty: the demo needs a fresh vault", dirB)
		}
	}
	// The master key lives outside both data directories: where serve
	// would look for it for dirA, and named explicitly for the copy.
	keyFile, err := keys.DefaultMasterKeyFile(dirA)
	if err != nil {
		return nil, err
	}
	if o.Data == "" {
		keyFile = filepath.Join(tmp, "master.key")
	}
	if _, _, err := keys.LoadMasterKey(dirA, "", keyFile, true); err != nil {
		return nil, err
	}
	res := &Result{Dirs: [2]string{dirA, dirB}}
	clk := &clock{}
	clk.Set(tLoaded)

	fmt.Fprintf(out, "sekisho demo line-breach: the 2023 chain against a zero-trust vault and a shared-trust one\n\n")
	fmt.Fprintf(out, "1. A fresh vault with the operator, its affiliate and a subcontractor (%s)\n", dirA)
	w, err := openWorld(ctx, o.Open, dirA, keyFile, clk, true)
	if err != nil {
		return nil, err
	}
	if err := load(ctx, w.node, o.Records, o.Seed, out); err != nil {
		w.Close()
		return nil, err
	}
	personnel, err := setupWorld(ctx, w, out)
	if err != nil {
		w.Close()
		return nil, err
	}
	w.Close()
	if err := copyDir(dirA, dirB, o.LockFile); err != nil {
		return nil, fmt.Errorf("copy the vault for the shared-trust run: %w", err)
	}

	fmt.Fprintf(out, "\n2. The chain, against zero trust (grant of 4 employee fields in jp for purpose ops, %d records an hour; guard on)\n", personnel.budget)
	a, err := openWorld(ctx, o.Open, dirA, keyFile, clk, true)
	if err != nil {
		return nil, err
	}
	if err := a.reconnect(ctx, w); err != nil {
		a.Close()
		return nil, err
	}
	if err := a.grantZeroTrust(ctx, personnel.budget); err != nil {
		a.Close()
		return nil, err
	}
	if err := runChain(ctx, a, personnel, out); err != nil {
		a.Close()
		return nil, err
	}
	inc, scopeA, err := a.openIncident(ctx)
	if err != nil {
		a.Close()
		return nil, err
	}
	res.IncidentID, res.ZeroTrust, res.Suspects = inc.ID, scopeA, inc
	if err := a.detections(ctx, out); err != nil {
		a.Close()
		return nil, err
	}
	a.Close()

	fmt.Fprintf(out, "\n3. The same chain, against shared trust (the affiliate granted everything, no budget, no guard)\n")
	clk.Set(tLoaded.Add(48 * time.Hour))
	b, err := openWorld(ctx, o.Open, dirB, keyFile, clk, false)
	if err != nil {
		return nil, err
	}
	if err := b.reconnect(ctx, w); err != nil {
		b.Close()
		return nil, err
	}
	if err := b.grantEverything(ctx); err != nil {
		b.Close()
		return nil, err
	}
	if err := runChain(ctx, b, personnel, out); err != nil {
		b.Close()
		return nil, err
	}
	_, scopeB, err := b.openIncident(ctx)
	b.Close()
	if err != nil {
		return nil, err
	}
	res.Shared = scopeB

	fmt.Fprintf(out, "\n4. Incident scope of the zero-trust vault, from its audit log\n\n")
	if err := incident.WriteTable(out, scopeA); err != nil {
		return nil, err
	}
	fmt.Fprintf(out, "\n5. Side by side\n\n")
	sideBySide(out, scopeA, scopeB)

	fmt.Fprintf(out, "\n6. APPI preliminary report (zero-trust vault)\n\n")
	rep, err := report.Breach(report.KindAPPI, inc, scopeA, report.Config{Controller: report.Controller{Name: map[string]string{"en": "The operator (demo)", "ja": "運営会社（デモ）"}}, Lang: report.LangEN, Now: clk.Now()})
	if err != nil {
		return nil, err
	}
	out.Write(report.Markdown(rep))
	if o.Data != "" {
		// The admin's device key, approved in the vault, as a profile: so
		// that serve --data DIR can be explored as that admin.
		profile := filepath.Join(dirA, "admin-profile")
		p := &client.Profile{Server: "http://" + o.ServeAddr, Principal: "admin", Org: "operator", Device: w.admin.Key.Thumbprint()}
		if err := client.SaveProfile(profile, p, w.admin.Key); err != nil {
			return nil, fmt.Errorf("save the admin's profile: %w", err)
		}
		res.Profile = profile
		fmt.Fprintf(out, "\nThe zero-trust vault is in %s (the shared-trust one in %s), with its admin's profile in %s. Try:\n"+
			"  sekisho audit verify --data %s\n  sekisho incident scope --data %s --incident %s --format json\n"+
			"  sekisho serve --data %s            # then, in another terminal:\n"+
			"  sekisho incident list --profile %s\n  sekisho quarantine list --profile %s\n"+
			"  open http://%s/console, sign in as admin, then let this profile approve the browser's device:\n"+
			"  sekisho device approve --profile %s -- DEVICE_ID\n",
			dirA, dirB, profile, dirA, dirA, inc.ID, dirA, profile, profile, o.ServeAddr, profile)
	}
	fmt.Fprintf(out, "\nincident id: %s\n", inc.ID)
	return res, nil
}

// personnelFeed is what the affiliate's personnel system holds: the ids of
// the operator's jp employees it syncs, with a honeytoken planted among them.
type personnelFeed struct {
	ids        []string
	honeytoken int // position of the planted decoy
	budget     int64
	everything map[string][]string // collection -> every id, for the bulk read
}

// setupWorld bootstraps the admins, the orgs, principals and devices, the
// honeytokens, and reads the feeds the attacker will find.
func setupWorld(ctx context.Context, w *world, out io.Writer) (*personnelFeed, error) {
	var err error
	if w.admin, err = w.newClient(nil, false); err != nil {
		return nil, err
	}
	boot, err := w.admin.Bootstrap(ctx, w.node.BootstrapToken, "admin", "admin-laptop")
	if err != nil {
		return nil, fmt.Errorf("bootstrap: %w", err)
	}
	w.devices["admin"] = boot.Device.ID
	for _, org := range []access.Org{{ID: "affiliate", Name: "The affiliate", HomeRegion: "jp"}, {ID: "subcontractor", Name: "A subcontractor", HomeRegion: "jp"}} {
		if err := w.admin.JSON(ctx, "POST", "/v1/orgs", "", org, nil); err != nil {
			return nil, fmt.Errorf("create org %s: %w", org.ID, err)
		}
	}
	if w.admin2, err = w.enrol(ctx, w.admin, "admin2", "operator", "person", "admin"); err != nil {
		return nil, err
	}
	if w.sync, err = w.enrol(ctx, w.admin, "personnel-sync", "affiliate", "service", "service"); err != nil {
		return nil, err
	}
	if w.contractor, err = w.enrol(ctx, w.admin, "contractor", "subcontractor", "person", "member"); err != nil {
		return nil, err
	}
	fmt.Fprintf(out, "  orgs operator, affiliate, subcontractor; principals admin, admin2 (operator), personnel-sync (affiliate service), contractor (subcontractor); devices enrolled and approved\n")

	var ht struct {
		Honeytokens []struct{ ID string } `json:"honeytokens"`
	}
	for _, c := range []string{"employees", "users"} {
		if err := w.admin.JSON(ctx, "POST", "/v1/collections/"+c+"/honeytokens", "", map[string]any{"region": "jp", "count": 20}, &ht); err != nil {
			return nil, fmt.Errorf("honeytokens: %w", err)
		}
	}
	fmt.Fprintf(out, "  40 honeytokens planted (20 employees, 20 users, jp), indistinguishable from real records over the API\n")

	feed := &personnelFeed{everything: map[string][]string{}}
	st := w.node.Store
	for _, c := range []string{"users", "partners", "employees"} {
		for after := ""; ; {
			ids, err := st.ListRecordIDs(ctx, c, "operator", after, 10000)
			if err != nil {
				return nil, err
			}
			if len(ids) == 0 {
				break
			}
			feed.everything[c] = append(feed.everything[c], ids...)
			after = ids[len(ids)-1]
		}
	}
	// The personnel feed: the operator's jp employees, real ones only; a
	// decoy employee goes in below, where the operator planted it.
	var empDecoy string
	for start := 0; start < len(feed.everything["employees"]); start += 1000 {
		chunk := feed.everything["employees"][start:min(len(feed.everything["employees"]), start+1000)]
		recs, err := st.GetRecords(ctx, "employees", chunk)
		if err != nil {
			return nil, err
		}
		for _, r := range recs {
			switch {
			case r.Honeytoken && r.Region == "jp" && empDecoy == "":
				empDecoy = r.ID
			case !r.Honeytoken && r.Region == "jp":
				feed.ids = append(feed.ids, r.ID)
			}
		}
	}
	if empDecoy == "" || len(feed.ids) < 40 {
		return nil, errors.New("too few jp employees for the replay; use more --records")
	}
	feed.budget = int64(min(200, len(feed.ids)/3))
	feed.honeytoken = int(feed.budget) * 3 / 2
	feed.ids = append(feed.ids[:feed.honeytoken], append([]string{empDecoy}, feed.ids[feed.honeytoken:]...)...)
	fmt.Fprintf(out, "  the affiliate's personnel system syncs %d jp employees of the operator (a decoy among them at position %d)\n", len(feed.ids), feed.honeytoken+1)
	return feed, nil
}

// reconnect gives a reopened world the clients of the world that set it up
// (the same principals and device keys; the copy has the same devices).
func (w *world) reconnect(ctx context.Context, from *world) error {
	var err error
	for _, p := range []struct {
		dst **client.Client
		src *client.Client
	}{{&w.admin, from.admin}, {&w.admin2, from.admin2}, {&w.sync, from.sync}, {&w.contractor, from.contractor}} {
		if *p.dst, err = w.newClient(p.src.Key, false); err != nil {
			return err
		}
	}
	w.devices = from.devices
	return nil
}

func (w *world) grantZeroTrust(ctx context.Context, budget int64) error {
	g := access.Grant{GrantorOrg: "operator", GranteeOrg: "affiliate", GranteePrincipal: "personnel-sync",
		Collections: []string{"employees"}, Fields: []string{"name", "employee_number", "department", "email"},
		Regions: []string{"jp"}, Purposes: []string{"ops"}, Expires: w.clock.Now().AddDate(0, 11, 0),
		BudgetPerHour: budget, BudgetTotal: budget * 50}
	return w.admin.JSON(ctx, "POST", "/v1/grants", "", g, nil)
}

func (w *world) grantEverything(ctx context.Context) error {
	g := access.Grant{GrantorOrg: "operator", GranteeOrg: "affiliate",
		Collections: []string{"users", "partners", "employees"}, Regions: []string{"jp", "th", "tw", "id"},
		Purposes: access.DefaultPurposes, Expires: w.clock.Now().AddDate(0, 11, 0)}
	var created access.Grant
	if err := w.admin.JSON(ctx, "POST", "/v1/grants", "", g, &created); err != nil {
		return err
	}
	if created.Status == access.StatusPending {
		return w.admin2.JSON(ctx, "POST", "/v1/grants/"+created.ID+"/approve", "", nil, nil)
	}
	return nil
}

// step prints one line of the replay.
func step(out io.Writer, at time.Time, format string, args ...any) {
	fmt.Fprintf(out, "  [%s] %s\n", at.In(jst).Format("2006-01-02 15:04 MST"), fmt.Sprintf(format, args...))
}

// outcome names how a request ended: "allowed" or the problem type.
func outcome(err error) string {
	if err == nil {
		return "allowed"
	}
	if t := client.ProblemType(err); t != "" {
		return "refused: " + t
	}
	return "failed: " + err.Error()
}

type batchGetBody struct {
	IDs    []string `json:"ids"`
	Fields []string `json:"fields,omitempty"`
}

// runChain replays the attack. What it prints of each request is the
// server's answer; every count in the summary comes from the audit log.
func runChain(ctx context.Context, w *world, feed *personnelFeed, out io.Writer) error {
	w.clock.Set(tInfected)
	// (a) Malware on the subcontractor's PC copies its access token.
	if _, err := w.contractor.Refresh(ctx); err != nil {
		return fmt.Errorf("contractor token: %w", err)
	}
	tok, exp := w.contractor.CurrentToken()
	thief, err := w.newClient(nil, true)
	if err != nil {
		return err
	}
	thief.SetToken(tok, exp)
	emp := feed.ids[0]
	err = thief.JSON(ctx, "GET", "/v1/collections/employees/records/"+emp+"?fields=name,email", "ops", nil, nil)
	step(out, w.clock.Now(), "stolen token of the subcontractor's PC, used from the attacker's machine with its own key: %s", outcome(err))

	// (b) The malware takes the device key too; the attacker is now the PC.
	pc, err := w.newClient(w.contractor.Key, true)
	if err != nil {
		return err
	}
	err = pc.JSON(ctx, "GET", "/v1/collections/employees/records/"+emp+"?fields=name,email", "ops", nil, nil)
	step(out, w.clock.Now(), "the subcontractor's device key, from the attacker's machine, reading an operator employee: %s", outcome(err))
	var found struct {
		Records []any `json:"records"`
	}
	err = pc.JSON(ctx, "POST", "/v1/collections/employees/lookup", "ops", map[string]any{"field": "email", "value": "admin@corp.example"}, &found)
	step(out, w.clock.Now(), "  ... a lookup by email: %s, %d records (its org's blind-index key matches nothing of the operator's)", outcome(err), len(found.Records))
	var listed map[string][]json.RawMessage
	err = pc.JSON(ctx, "GET", "/v1/grants", "", nil, &listed)
	step(out, w.clock.Now(), "  ... listing grants: %s, %d grants (its own org's only)", outcome(err), len(listed["grants"]))

	// (c) Pivot: the affiliate's service account of the shared personnel
	// system, its key taken from the affiliate's server.
	w.clock.Set(tPivot)
	svc, err := w.newClient(w.sync.Key, true)
	if err != nil {
		return err
	}
	fields := []string{"name", "employee_number", "department", "email"}
	err = svc.JSON(ctx, "POST", "/v1/collections/employees/records:batchGet", "ops", batchGetBody{IDs: feed.ids[:1], Fields: []string{"salary_band"}}, nil)
	step(out, w.clock.Now(), "the affiliate's personnel-sync account, from the attacker's machine, asks for salary bands: %s", outcome(err))
	err = svc.JSON(ctx, "POST", "/v1/collections/users/records:batchGet", "ops", batchGetBody{IDs: feed.everything["users"][:1], Fields: []string{"phone"}}, nil)
	step(out, w.clock.Now(), "  ... asks for a messaging user's phone: %s", outcome(err))

	// (d) It pages through the personnel feed. A budget refusal makes it
	// wait an hour and go on; any other refusal ends this phase.
	page := max(10, int(feed.budget)/4)
	read, waited := 0, false
	for i := 0; i < len(feed.ids); {
		ids := feed.ids[i:min(len(feed.ids), i+page)]
		var got struct {
			Records []any `json:"records"`
		}
		err := svc.JSON(ctx, "POST", "/v1/collections/employees/records:batchGet", "ops", batchGetBody{IDs: ids, Fields: fields}, &got)
		if err == nil {
			read += len(got.Records)
			i += page
			waited = false
			continue
		}
		step(out, w.clock.Now(), "  bulk read of the personnel feed, %d employees a request: after %d records returned, %s", page, read, outcome(err))
		if t := client.ProblemType(err); strings.Contains(t, "budget") && !waited {
			w.clock.Set(w.clock.Now().Add(61 * time.Minute))
			step(out, w.clock.Now(), "  ... an hour later the attacker goes on")
			waited = true
			continue
		}
		break
	}
	if read == len(feed.ids)-1 || read == len(feed.ids) {
		step(out, w.clock.Now(), "  bulk read of the personnel feed: all %d records returned, nothing refused", read)
	}

	// (e) The bulk read of everything the attacker can name.
	denied, returned := 0, 0
	for _, c := range []string{"employees", "users", "partners"} {
		ids := feed.everything[c]
		for i := 0; i < len(ids); i += 1000 {
			var got struct {
				Records []any `json:"records"`
			}
			err := svc.JSON(ctx, "POST", "/v1/collections/"+c+"/records:batchGet", "ops", batchGetBody{IDs: ids[i:min(len(ids), i+1000)]}, &got)
			if err != nil {
				denied++
				if denied == 1 {
					step(out, w.clock.Now(), "  then a bulk read of every %s it can name, 1,000 a request: %s", c, outcome(err))
				}
				continue
			}
			returned += len(got.Records)
		}
	}
	step(out, w.clock.Now(), "  the bulk read ends: %d requests refused, %d records returned", denied, returned)
	w.clock.Set(tNoticed)
	step(out, w.clock.Now(), "suspicious access noticed; an incident is opened for the two accounts, their devices and orgs")
	return nil
}

// openIncident records the incident and computes its scope from the log.
func (w *world) openIncident(ctx context.Context) (*incident.Incident, *incident.Scope, error) {
	inc := &incident.Incident{
		ID:           incident.NewID(),
		Principals:   []string{"contractor", "personnel-sync"},
		Devices:      []string{w.devices["contractor"], w.devices["personnel-sync"]},
		Orgs:         []string{"affiliate", "subcontractor"},
		Since:        tWindowFrom.UTC(),
		Until:        tWindowTo.UTC(),
		DiscoveredAt: tNoticed.UTC(),
		Cause:        incident.CauseUnauthorizedAccess,
		Description:  "Malware on a subcontractor's PC; credentials of the affiliate's personnel system used to reach the operator's data (demo replay).",
	}
	if err := incident.Create(ctx, w.node.Store, inc, w.clock.Now()); err != nil {
		return nil, nil, err
	}
	// Checkpoint, so the scope counts events a signed tree covers.
	if _, err := w.node.Log.Checkpoint(ctx); err != nil {
		return nil, nil, err
	}
	sc, err := incident.Compute(ctx, w.node.Store, access.NewDirectory(w.node.Store), w.node.Logs.Stores(), inc)
	if err != nil {
		return nil, nil, err
	}
	return inc, sc, nil
}

// detections prints, from the audit log, each refusal of the affiliate's
// account and how many records had been returned before it.
func (w *world) detections(ctx context.Context, out io.Writer) error {
	entries, err := w.node.Store.QueryAudit(ctx, sekisho.AuditFilter{Principal: "personnel-sync", Since: tWindowFrom, Until: tWindowTo})
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "  read back from the audit log (principal personnel-sync):\n")
	returned, printed := 0, 0
	seen := map[string]bool{}
	for _, e := range entries {
		ev, err := sekisho.UnmarshalEvent(e.Leaf)
		if err != nil {
			return err
		}
		if ev.Decision == sekisho.Allow && len(ev.Fields) > 0 {
			returned += len(ev.Records)
			continue
		}
		key := ev.Policy + ev.Reason
		if ev.Decision == sekisho.Deny && !seen[key] && printed < 8 {
			seen[key] = true
			printed++
			step(out, ev.Time, "  event %d: deny by %s after %d records returned: %s", e.Index, ev.Policy, returned, ev.Reason)
		}
	}
	qs, err := w.node.Store.ListObjects(ctx, "quarantine", "")
	if err != nil {
		return err
	}
	for _, q := range qs {
		var qb struct {
			ID, Rule, Reason string
			Since            time.Time
		}
		if err := json.Unmarshal(q.Body, &qb); err != nil {
			return err
		}
		fmt.Fprintf(out, "  quarantined: %s since %s (rule %s: %s)\n", qb.ID, qb.Since.In(jst).Format("2006-01-02 15:04 MST"), qb.Rule, qb.Reason)
	}
	return nil
}

// sideBySide prints the two scopes.
func sideBySide(out io.Writer, a, b *incident.Scope) {
	tw := tabwriter.NewWriter(out, 2, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "\tzero trust\tshared trust\n")
	fmt.Fprintf(tw, "data subjects exposed (values returned)\t%d\t%d\n", a.SubjectsExposed, b.SubjectsExposed)
	fmt.Fprintf(tw, "field values exposed\t%d\t%d\n", a.FieldsExposed, b.FieldsExposed)
	colls := map[string]bool{}
	for c := range a.ByCollection {
		colls[c] = true
	}
	for c := range b.ByCollection {
		colls[c] = true
	}
	names := make([]string, 0, len(colls))
	for c := range colls {
		names = append(names, c)
	}
	sort.Strings(names)
	for _, c := range names {
		fmt.Fprintf(tw, "  %s exposed\t%d\t%d\n", c, subjectsOf(a, c), subjectsOf(b, c))
	}
	fmt.Fprintf(tw, "subjects possibly exposed (touched, nothing returned)\t%d\t%d\n", a.SubjectsPossible, b.SubjectsPossible)
	fmt.Fprintf(tw, "denied attempts\t%d\t%d\n", a.DeniedAttempts, b.DeniedAttempts)
	fmt.Fprintf(tw, "worst case (reachable under the grants held)\t%d\t%d\n", a.WorstCaseSubjects, b.WorstCaseSubjects)
	tw.Flush()
}

func subjectsOf(s *incident.Scope, collection string) int {
	if c, ok := s.ByCollection[collection]; ok && c != nil {
		return c.SubjectsExposed
	}
	return 0
}

// copyDir copies the files of a closed data directory, but its lock file.
func copyDir(src, dst, lockFile string) error {
	if err := os.MkdirAll(dst, 0o700); err != nil {
		return err
	}
	entries, err := os.ReadDir(src)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if e.IsDir() || e.Name() == lockFile {
			continue
		}
		in, err := os.Open(filepath.Join(src, e.Name()))
		if err != nil {
			return err
		}
		info, _ := in.Stat()
		outf, err := os.OpenFile(filepath.Join(dst, e.Name()), os.O_WRONLY|os.O_CREATE|os.O_TRUNC, info.Mode().Perm())
		if err != nil {
			in.Close()
			return err
		}
		_, err = io.Copy(outf, in)
		in.Close()
		if cerr := outf.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
	}
	return nil
}
