package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/sekisho/sekisho/gen"
)

// databunkerCommand is the first argument that runs the same read, lookup
// and create workloads against a running Databunker (the open-source PII
// vault, API v1) instead of sekisho, with a bare floor of its own measured
// in the same run (docs/bench-databunker.md):
//
//	scripts/databunker.sh build && scripts/databunker.sh start /tmp/dbk-run
//	go run ./bench databunker -url "$(cat /tmp/dbk-run/url)" -token DEMO -pid "$(cat /tmp/dbk-run/pid)" \
//	  -records 100000 -concurrency 32 -out /tmp/bench-dbk
//
// Databunker is a measurement peer, not a dependency: this talks to it over
// HTTP only.
const databunkerCommand = "databunker"

// bunkerToken is Databunker's credential: one static token in
// X-Bunker-Token on every request (the root token here, DEMO in demo mode).
type bunkerToken string

func (t bunkerToken) Apply(req *http.Request) error {
	req.Header.Set("X-Bunker-Token", string(t))
	return nil
}

func (t bunkerToken) String() string { return "Databunker root token (X-Bunker-Token, static)" }

// dbResults is results.json of a Databunker run. The workload keys are
// sekisho's (floor, hot_read, lookup_phone, create) so that the two
// results.json files compare key by key; Requests says what each one is
// against Databunker.
type dbResults struct {
	Peer        string    `json:"peer"` // "databunker"
	URL         string    `json:"url"`
	Store       string    `json:"store"` // -store: sqlite or postgres, as the operator started it
	Machine     machine   `json:"machine"`
	Commit      string    `json:"commit"` // sekisho's (the bench's) commit
	Records     int       `json:"records"`
	Seed        uint64    `json:"seed"`
	DurationS   float64   `json:"duration_s"`
	Concurrency int       `json:"concurrency"`
	Credential  string    `json:"credential"`
	Started     time.Time `json:"started"`
	Finished    time.Time `json:"finished"`

	HotReadFloorRatio     float64 `json:"hot_read_floor_ratio"`
	LookupPhoneFloorRatio float64 `json:"lookup_phone_floor_ratio,omitempty"`
	CreateFloorRatio      float64 `json:"create_floor_ratio,omitempty"`
	ImportRPS             float64 `json:"import_rps,omitempty"`
	HotBodyBytes          int     `json:"hot_body_bytes"`

	Load      *dbLoad                    `json:"load,omitempty"`
	Workloads map[string]*workloadResult `json:"workloads"`
	// AuditPerRequest is, per workload, the rows Databunker's audit table
	// gained during the measured phase over the requests it answered
	// (GET /v1/audit/admin's total before and after).
	AuditPerRequest map[string]float64 `json:"audit_events_per_request,omitempty"`
	// AuditPerOK is the same over the requests answered 200: below 1, some
	// answered reads or creates left no audit row.
	AuditPerOK map[string]float64 `json:"audit_events_per_ok,omitempty"`
	Requests   map[string]string  `json:"requests"`
	Notes      []string           `json:"notes"`
}

// dbLoad is the load of the generated records through POST /v1/user
// (Databunker's open-source edition has no bulk import).
type dbLoad struct {
	Records     int     `json:"records"` // generated
	Loaded      int     `json:"loaded"`  // answered 200 with a token
	SkippedDup  int     `json:"skipped_duplicate_phone"`
	Errors      int     `json:"errors"`
	FirstError  string  `json:"first_error,omitempty"`
	Concurrency int     `json:"concurrency"`
	Seconds     float64 `json:"seconds"`
	RecordsPerS float64 `json:"records_per_s"`
	CPUsPer1k   float64 `json:"cpu_s_per_1k,omitempty"` // Databunker's, with -pid
	RSSMiB      float64 `json:"rss_mib,omitempty"`
}

// dbUsers is what a load leaves for later runs (-users): the tokens of a
// sample of the loaded users and a sample of their phones.
type dbUsers struct {
	URL     string    `json:"url"`
	Records int       `json:"records"`
	Seed    uint64    `json:"seed"`
	Tokens  []string  `json:"tokens"`
	Phones  []string  `json:"phones"`
	Load    *dbLoad   `json:"load"`
	Loaded  time.Time `json:"loaded_at"`
}

type dbOptions struct {
	url, token, out, users, only, store string
	pid, records, conc, loadConc        int
	duration                            time.Duration
	seed                                uint64
}

func databunkerMain(args []string) error {
	var o dbOptions
	fs := flag.NewFlagSet("bench "+databunkerCommand, flag.ExitOnError)
	fs.StringVar(&o.url, "url", "", "base URL of a running Databunker (scripts/databunker.sh start prints it)")
	fs.StringVar(&o.token, "token", "DEMO", "its root token (X-Bunker-Token); DEMO in demo mode")
	fs.IntVar(&o.pid, "pid", 0, "Databunker's process id, to report its CPU per 1k requests and RSS (optional)")
	fs.StringVar(&o.store, "store", "sqlite", "the store Databunker was started on (sqlite or postgres), for the report")
	fs.IntVar(&o.records, "records", 100_000, "records to generate and load, as `bench -records` (70% users, 15% partners, 15% employees, package gen)")
	fs.Uint64Var(&o.seed, "seed", 1, "seed of the generated records and of the request mix, as `bench -seed`")
	fs.IntVar(&o.conc, "concurrency", 32, "closed-loop workers (connections)")
	fs.IntVar(&o.loadConc, "load-concurrency", 0, "workers of the load (POST /v1/user); 0: -concurrency")
	fs.DurationVar(&o.duration, "duration", 10*time.Second, "measured time of each workload (plus a warm-up of a fifth of it, at most 2s)")
	fs.StringVar(&o.out, "out", "bench-out-databunker", "directory for results.json, results.md, users.json and the floor's log")
	fs.StringVar(&o.users, "users", "", "users.json of an earlier load into the same Databunker: skip the load")
	fs.StringVar(&o.only, "only", "", "comma-separated workloads (floor,hot_read,lookup_phone,create); default all")
	fs.Parse(args)
	if o.url == "" {
		return errors.New("-url is required: the base URL of a running Databunker (see docs/bench-databunker.md)")
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if o.records < 300 {
		return errors.New("-records must be at least 300")
	}
	if o.loadConc <= 0 {
		o.loadConc = o.conc
	}
	o.url = strings.TrimRight(o.url, "/")
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := os.MkdirAll(o.out, 0o755); err != nil {
		return err
	}
	res, err := runDatabunker(ctx, o)
	if res != nil {
		if werr := writeDBResults(o.out, res); werr != nil && err == nil {
			err = werr
		}
	}
	return err
}

func runDatabunker(ctx context.Context, o dbOptions) (*dbResults, error) {
	res := &dbResults{Peer: "databunker", URL: o.url, Store: o.store, Machine: describeMachine(), Records: o.records, Seed: o.seed,
		DurationS: o.duration.Seconds(), Concurrency: o.conc, Started: time.Now().UTC(), Workloads: map[string]*workloadResult{},
		AuditPerRequest: map[string]float64{}, AuditPerOK: map[string]float64{}, Notes: []string{}, Requests: map[string]string{
			"floor":        "GET {floor}/v1/user/token/{token}: a bare net/http handler in its own process answering Databunker's body of one real read, same client, same header",
			"hot_read":     "GET /v1/user/token/{token}, random tokens of the loaded users (the whole record, decrypted)",
			"lookup_phone": "GET /v1/user/phone/{phone}, random phones of the loaded users (hashed index)",
			"create":       "POST /v1/user of a generated user, email and phone made unique per request (Databunker rejects a duplicate)",
		}}
	if root, err := moduleRoot(); err == nil {
		res.Commit = gitCommit(root)
	}
	hc := newHTTPClient(max(o.conc, o.loadConc, 256), nil)
	cred := bunkerToken(o.token)
	res.Credential = cred.String()
	cl := &loader{hc: hc, cred: cred}
	if _, err := bunkerGet(ctx, cl, o.url+"/v1/status"); err != nil {
		return nil, fmt.Errorf("databunker at %s: %w", o.url, err)
	}

	var users *dbUsers
	if o.users != "" {
		b, err := os.ReadFile(o.users)
		if err != nil {
			return nil, err
		}
		users = &dbUsers{}
		if err := json.Unmarshal(b, users); err != nil {
			return nil, fmt.Errorf("%s: %w", o.users, err)
		}
		res.Records, res.Seed = users.Records, users.Seed
		res.Load = users.Load
		res.Notes = append(res.Notes, fmt.Sprintf("the users were loaded by an earlier run (%s, %s); its load figures are reported", o.users, users.Loaded.Format(time.RFC3339)))
	} else {
		var err error
		if users, err = loadDatabunker(ctx, cl, o); err != nil {
			return res, err
		}
		res.Load = users.Load
		b, _ := json.MarshalIndent(users, "", " ")
		if err := os.WriteFile(filepath.Join(o.out, "users.json"), b, 0o644); err != nil {
			return res, err
		}
	}
	if res.Load != nil {
		res.ImportRPS = res.Load.RecordsPerS
	}
	if len(users.Tokens) < 100 || len(users.Phones) < 10 {
		return res, fmt.Errorf("only %d user tokens and %d phones loaded", len(users.Tokens), len(users.Phones))
	}
	tokens, phones := users.Tokens, users.Phones

	// The floor answers the body of one real read.
	body, err := bunkerGet(ctx, cl, o.url+"/v1/user/token/"+tokens[0])
	if err != nil {
		return res, fmt.Errorf("read one user: %w", err)
	}
	res.HotBodyBytes = len(body)
	out, err := filepath.Abs(o.out)
	if err != nil {
		return res, err
	}
	bodyFile := filepath.Join(out, "floor-body.json")
	if err := os.WriteFile(bodyFile, body, 0o600); err != nil {
		return res, err
	}
	floorAddr, err := freeAddr()
	if err != nil {
		return res, err
	}
	self, err := os.Executable()
	if err != nil {
		return res, err
	}
	floor, err := start(self, []string{floorCommand, bodyFile, floorAddr}, nil, filepath.Join(out, "floor.log"))
	if err != nil {
		return res, err
	}
	defer floor.stop(5 * time.Second)
	if err := floor.waitReadyWith(newHTTPClient(1, nil), "http://"+floorAddr+"/healthz", 30*time.Second); err != nil {
		return res, err
	}

	floorWL := func(rng *mrand.Rand) request {
		return request{method: "GET", url: "http://" + floorAddr + "/v1/user/token/" + tokens[rng.IntN(len(tokens))], want: 200}
	}
	read := func(rng *mrand.Rand) request {
		return request{method: "GET", url: o.url + "/v1/user/token/" + tokens[rng.IntN(len(tokens))], want: 200}
	}
	lookup := func(rng *mrand.Rand) request {
		return request{method: "GET", url: o.url + "/v1/user/phone/" + url.PathEscape(phones[rng.IntN(len(phones))]), want: 200}
	}
	pool := createPool(o.seed + 1)
	run := uint32(time.Now().UnixNano() % 1_000_000)
	var seq atomic.Uint32
	create := func(rng *mrand.Rand) request {
		b, _ := uniqueCreateBody(pool[rng.IntN(len(pool))], run, seq.Add(1))
		return request{method: "POST", url: o.url + "/v1/user", body: b, want: 200}
	}

	want := func(name string) bool { return o.only == "" || strings.Contains(","+o.only+",", ","+name+",") }
	for _, s := range []struct {
		name string
		pid  int
		wl   workload
	}{{"floor", floor.pid(), floorWL}, {"hot_read", o.pid, read}, {"lookup_phone", o.pid, lookup}, {"create", o.pid, create}} {
		if !want(s.name) {
			continue
		}
		closedLoop(ctx, cl, s.wl, o.conc, min(o.duration/5, 2*time.Second), o.seed+1000)
		var cpu0 float64
		if s.pid > 0 {
			if cpu0, err = cpuSeconds(s.pid); err != nil {
				return res, err
			}
		}
		a0, aerr := auditTotal(ctx, cl, o.url)
		r := closedLoop(ctx, cl, s.wl, o.conc, o.duration, o.seed)
		a1, aerr1 := auditTotal(ctx, cl, o.url)
		var cpu, rss float64
		if s.pid > 0 {
			cpu1, err := cpuSeconds(s.pid)
			if err != nil {
				return res, err
			}
			cpu = cpu1 - cpu0
			rss, _, _ = memMiB(s.pid)
		}
		w := newWorkloadResult(r, cpu, rss, fmt.Sprintf("closed, %d conns", o.conc))
		if s.pid == 0 {
			w.CPUsPer1k = 0 // unknown without -pid
		}
		res.Workloads[s.name] = w
		if s.name != "floor" && aerr == nil && aerr1 == nil && r.Requests > 0 {
			res.AuditPerRequest[s.name] = float64(a1-a0) / float64(r.Requests)
			if ok := r.Requests - r.Errors; ok > 0 {
				res.AuditPerOK[s.name] = float64(a1-a0) / float64(ok)
			}
		}
		logf("%-14s %s", s.name, w.line())
		if r.FirstErr != nil {
			res.Notes = append(res.Notes, fmt.Sprintf("%s: %d of %d requests failed, first: %v", s.name, r.Errors, r.Requests, r.FirstErr))
		}
		if err := ctx.Err(); err != nil {
			return res, err
		}
	}
	if f := res.Workloads["floor"]; f != nil && f.ThroughputRPS > 0 {
		if w := res.Workloads["hot_read"]; w != nil {
			res.HotReadFloorRatio = w.ThroughputRPS / f.ThroughputRPS
		}
		if w := res.Workloads["lookup_phone"]; w != nil {
			res.LookupPhoneFloorRatio = w.ThroughputRPS / f.ThroughputRPS
		}
		if w := res.Workloads["create"]; w != nil {
			res.CreateFloorRatio = w.ThroughputRPS / f.ThroughputRPS
		}
	}
	res.Finished = time.Now().UTC()
	return res, nil
}

// loadDatabunker posts the generated records (the same ones `bench
// -records N -seed S` imports into sekisho: users, partners and employees
// as Databunker users, which is its one kind of record) and keeps a sample
// of the users' tokens and phones for the reads.
func loadDatabunker(ctx context.Context, cl *loader, o dbOptions) (*dbUsers, error) {
	counts := map[string]int{"users": o.records * 70 / 100, "partners": o.records * 15 / 100}
	counts["employees"] = o.records - counts["users"] - counts["partners"]
	type job struct {
		body []byte
		user bool
		i    int
	}
	g := gen.New(o.seed)
	seen := map[string]bool{}
	var jobs []job
	ld := &dbLoad{Records: o.records, Concurrency: o.loadConc}
	for _, c := range []string{"users", "partners", "employees"} {
		for i := range counts[c] {
			rec, err := g.Record(c)
			if err != nil {
				return nil, err
			}
			var phone string
			json.Unmarshal(rec.Fields["phone"], &phone)
			if seen[phone] {
				// Databunker holds phones unique: a generated phone that
				// repeats an earlier one would be refused.
				ld.SkippedDup++
				continue
			}
			seen[phone] = true
			b, err := bunkerUserBody(rec.Fields)
			if err != nil {
				return nil, err
			}
			jobs = append(jobs, job{body: b, user: c == "users", i: i})
		}
	}
	every := max(1, counts["users"]/20_000) // the bench samples 20,000 user ids
	u := &dbUsers{URL: o.url, Records: o.records, Seed: o.seed, Load: ld}
	var mu sync.Mutex
	var cpu0 float64
	if o.pid > 0 {
		cpu0, _ = cpuSeconds(o.pid)
	}
	logf("loading %d records into %s with %d connections", len(jobs), o.url, o.loadConc)
	next := make(chan job)
	var wg sync.WaitGroup
	t0 := time.Now()
	for range o.loadConc {
		wg.Go(func() {
			for j := range next {
				tok, err := bunkerCreate(ctx, cl, o.url, j.body)
				mu.Lock()
				if err != nil {
					ld.Errors++
					if ld.FirstError == "" {
						ld.FirstError = err.Error()
					}
				} else {
					ld.Loaded++
					if j.user && j.i%every == 0 {
						u.Tokens = append(u.Tokens, tok)
						var f struct{ Phone string }
						json.Unmarshal(j.body, &f)
						u.Phones = append(u.Phones, f.Phone)
					}
				}
				n := ld.Loaded + ld.Errors
				mu.Unlock()
				if n%20_000 == 0 {
					logf("loaded %d of %d (%.0f/s)", n, len(jobs), float64(n)/time.Since(t0).Seconds())
				}
			}
		})
	}
	for _, j := range jobs {
		if ctx.Err() != nil {
			break
		}
		next <- j
	}
	close(next)
	wg.Wait()
	ld.Seconds = time.Since(t0).Seconds()
	ld.RecordsPerS = float64(ld.Loaded) / ld.Seconds
	if o.pid > 0 {
		if cpu1, err := cpuSeconds(o.pid); err == nil && ld.Loaded > 0 {
			ld.CPUsPer1k = (cpu1 - cpu0) / float64(ld.Loaded) * 1000
		}
		ld.RSSMiB, _, _ = memMiB(o.pid)
	}
	u.Loaded = time.Now().UTC()
	logf("load: %d of %d records in %.1fs (%.0f records/s), %d errors, %d skipped (repeated phone)", ld.Loaded, len(jobs), ld.Seconds, ld.RecordsPerS, ld.Errors, ld.SkippedDup)
	return u, ctx.Err()
}

// bunkerUserBody is a generated record as Databunker's user object: its
// fields flat at the top level (email and phone are what Databunker
// indexes).
func bunkerUserBody(fields map[string]json.RawMessage) ([]byte, error) {
	return json.Marshal(fields)
}

// createPool is the pool of user records the create workload draws from:
// the same 10,000 generated users as the bench's create (gen seed+1).
func createPool(seed uint64) []map[string]json.RawMessage {
	g := gen.New(seed)
	pool := make([]map[string]json.RawMessage, 10_000)
	for i := range pool {
		pool[i] = g.User().Fields
	}
	return pool
}

// uniqueCreateBody is one create's body: the pooled user with an email and
// a phone no other create of this run (run) or the load used. Databunker
// refuses a second user with the same email or phone, so a repeated body
// would measure its refusal. The phones are Japanese 050 numbers (the
// generator makes none) with the run and a sequence number in them.
func uniqueCreateBody(fields map[string]json.RawMessage, run, seq uint32) ([]byte, error) {
	var email string
	if err := json.Unmarshal(fields["email"], &email); err != nil {
		return nil, fmt.Errorf("pooled user's email: %w", err)
	}
	f := make(map[string]json.RawMessage, len(fields))
	for k, v := range fields {
		f[k] = v
	}
	f["email"], _ = json.Marshal(fmt.Sprintf("c%06d.%d.%s", run%1_000_000, seq, email))
	f["phone"], _ = json.Marshal(fmt.Sprintf("+8150%06d%07d", run%1_000_000, seq%10_000_000))
	return json.Marshal(f)
}

// bunkerAnswer is the envelope of Databunker's JSON answers.
type bunkerAnswer struct {
	Status  string `json:"status"`
	Token   string `json:"token"`
	Message string `json:"message"`
	Total   *int64 `json:"total"`
}

// parseBunkerAnswer reads one answer of Databunker: a 200 with
// {"status":"ok",...} is success; anything else is an error that carries
// its message (Databunker answers most errors with 405 and
// {"status":"error","message":...}, and a refused token with a 403 and a
// plain-text body).
func parseBunkerAnswer(status int, body []byte) (*bunkerAnswer, error) {
	var a bunkerAnswer
	jerr := json.Unmarshal(body, &a)
	if status != http.StatusOK {
		msg := strings.TrimSpace(string(body))
		if jerr == nil && a.Message != "" {
			msg = a.Message
		}
		if len(msg) > 200 {
			msg = msg[:200]
		}
		return nil, fmt.Errorf("status %d: %s", status, msg)
	}
	if jerr != nil {
		return nil, fmt.Errorf("status 200 but not a JSON answer: %w", jerr)
	}
	if a.Status != "ok" {
		return nil, fmt.Errorf("status 200 but %q: %s", a.Status, a.Message)
	}
	return &a, nil
}

func bunkerDo(ctx context.Context, cl *loader, method, u string, body []byte) (*bunkerAnswer, []byte, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return nil, nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if err := cl.cred.Apply(req); err != nil {
		return nil, nil, err
	}
	resp, err := cl.hc.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, nil, err
	}
	if strings.HasSuffix(u, "/v1/status") { // answers a plain OK
		if resp.StatusCode != http.StatusOK {
			return nil, b, fmt.Errorf("status %d: %s", resp.StatusCode, b)
		}
		return &bunkerAnswer{Status: "ok"}, b, nil
	}
	a, err := parseBunkerAnswer(resp.StatusCode, b)
	return a, b, err
}

func bunkerGet(ctx context.Context, cl *loader, u string) ([]byte, error) {
	_, b, err := bunkerDo(ctx, cl, "GET", u, nil)
	return b, err
}

// bunkerCreate posts one user and returns its token.
func bunkerCreate(ctx context.Context, cl *loader, base string, body []byte) (string, error) {
	a, _, err := bunkerDo(ctx, cl, "POST", base+"/v1/user", body)
	if err != nil {
		return "", err
	}
	if a.Token == "" {
		return "", errors.New("create answered without a token")
	}
	return a.Token, nil
}

// auditTotal is the number of rows in Databunker's audit table
// (GET /v1/audit/admin, root only; the listing itself is not audited).
func auditTotal(ctx context.Context, cl *loader, base string) (int64, error) {
	a, _, err := bunkerDo(ctx, cl, "GET", base+"/v1/audit/admin?limit=1", nil)
	if err != nil {
		return 0, err
	}
	if a.Total == nil {
		return 0, errors.New("audit listing without a total")
	}
	return *a.Total, nil
}

func writeDBResults(dir string, r *dbResults) error {
	return writeJSONAndMarkdown(dir, r, dbMarkdown(r))
}

// dbMarkdown is results.md of a Databunker run.
func dbMarkdown(r *dbResults) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Databunker at %s (%s store), %d records, %s per workload, %d closed-loop connections; %s (%d cores, load %s); bench commit %s\n\n",
		r.URL, r.Store, r.Records, time.Duration(r.DurationS*float64(time.Second)), r.Concurrency, r.Machine.CPUModel, r.Machine.Cores, r.Machine.LoadAvg, r.Commit)
	fmt.Fprintf(&b, "| workload | request | throughput | / floor | p50 ms | p99 ms | p99.9 ms | errors | server CPU s / 1k | server RSS MiB | audit rows / request | audit rows / 200 |\n")
	fmt.Fprintf(&b, "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n")
	f := r.Workloads["floor"]
	for _, name := range []string{"floor", "hot_read", "lookup_phone", "create"} {
		w := r.Workloads[name]
		if w == nil {
			continue
		}
		ratio := ""
		if f != nil && f.ThroughputRPS > 0 {
			ratio = fmt.Sprintf("%.3f", w.ThroughputRPS/f.ThroughputRPS)
		}
		req, _, _ := strings.Cut(r.Requests[name], ",")
		req, _, _ = strings.Cut(req, ":")
		audit, auditOK := "", ""
		if a, ok := r.AuditPerRequest[name]; ok {
			audit = fmt.Sprintf("%.2f", a)
		}
		if a, ok := r.AuditPerOK[name]; ok {
			auditOK = fmt.Sprintf("%.2f", a)
		}
		fmt.Fprintf(&b, "| %s | `%s` | %.0f req/s | %s | %.2f | %.2f | %.2f | %d | %.3f | %.0f | %s | %s |\n",
			name, req, w.ThroughputRPS, ratio, w.P50ms, w.P99ms, w.P999ms, w.Errors, w.CPUsPer1k, w.RSSMiB, audit, auditOK)
	}
	if l := r.Load; l != nil {
		fmt.Fprintf(&b, "| load (`POST /v1/user`, %d conns) | %d of %d records | %.0f rec/s | | | | | %d | %.3f | %.0f | | |\n",
			l.Concurrency, l.Loaded, l.Records, l.RecordsPerS, l.Errors, l.CPUsPer1k, l.RSSMiB)
	}
	fmt.Fprintf(&b, "\n**hot_read_floor_ratio = %.3f**, lookup_phone / floor = %.3f, create / floor = %.3f; load %.0f records/s.\n",
		r.HotReadFloorRatio, r.LookupPhoneFloorRatio, r.CreateFloorRatio, r.ImportRPS)
	if l := r.Load; l != nil && (l.SkippedDup > 0 || l.FirstError != "") {
		fmt.Fprintf(&b, "\nLoad: %d generated records skipped (a phone repeated from an earlier one; Databunker keeps phones unique)", l.SkippedDup)
		if l.FirstError != "" {
			fmt.Fprintf(&b, "; first error: %s", l.FirstError)
		}
		b.WriteString(".\n")
	}
	if len(r.Notes) > 0 {
		b.WriteString("\nNotes:\n")
		for _, n := range r.Notes {
			fmt.Fprintf(&b, "- %s\n", n)
		}
	}
	fmt.Fprintf(&b, "\nCredential: %s.\n", r.Credential)
	return b.String()
}
