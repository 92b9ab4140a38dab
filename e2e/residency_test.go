package e2e

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	_ "github.com/mattn/go-sqlite3"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"

	sk "github.com/sekisho/sekisho"
	"github.com/sekisho/sekisho/internal/pgtest"
	"github.com/sekisho/sekisho/postgres"
	"github.com/sekisho/sekisho/sqlite"
)

// residencyRegions are the four regions of the case: a store each.
var residencyRegions = []string{"jp", "th", "tw", "id"}

// TestResidencyFourRegions runs one node over a default store and a store
// per region (jp, th, tw, id), on PostgreSQL databases and on SQLite files.
// One principal reads records of every region through the node; then:
// the incident scope counts every subject by country, each backed by events
// of its region's own log; each region's checkpoint verifies with the
// transparency-dev libraries (signature, root over the leaves, inclusion
// proofs); no event naming a record of one region is in another region's
// store; the principal's volume budget counts the reads of every region,
// also after a restart (the guard rebuilds from every log); the witness
// directory gets each region's checkpoints; and audit verify --config finds
// an edited event in one region's store and names the region and index.
func TestResidencyFourRegions(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs a server")
	}
	t.Run("sqlite", func(t *testing.T) {
		stores := map[string]string{"": ""}
		for _, r := range residencyRegions {
			stores[r] = "sqlite:" + r + ".db"
		}
		testResidency(t, stores, "sqlite")
	})
	t.Run("postgres", func(t *testing.T) {
		pgtest.Server(t)
		stores := map[string]string{"": pgtest.DSN(t)}
		for _, r := range residencyRegions {
			stores[r] = pgtest.DSN(t)
		}
		testResidency(t, stores, "postgres")
	})
}

// residencyConfig writes serve's configuration file.
func residencyConfig(t *testing.T, dir string, stores map[string]string) string {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "data: %s\n", filepath.Join(dir, "data"))
	if stores[""] != "" {
		fmt.Fprintf(&b, "store: %s\n", stores[""])
	}
	fmt.Fprintf(&b, "witness_dir: %s\n", filepath.Join(dir, "witness"))
	b.WriteString("regions:\n")
	for _, r := range residencyRegions {
		fmt.Fprintf(&b, "  %s: %s\n", r, stores[r])
	}
	path := filepath.Join(dir, "sekisho.yaml")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// openRegionStore opens one region's store directly, for the test's own
// checks under the server.
func openRegionStore(t *testing.T, dataDir, url string) sk.Store {
	t.Helper()
	ctx := context.Background()
	var st sk.Store
	var err error
	if p, ok := strings.CutPrefix(url, "sqlite:"); ok {
		st, err = sqlite.OpenReadOnly(ctx, filepath.Join(dataDir, p))
	} else {
		st, err = postgres.Open(ctx, url)
	}
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func testResidency(t *testing.T, stores map[string]string, backend string) {
	dir := t.TempDir()
	cfg := residencyConfig(t, dir, stores)
	data := filepath.Join(dir, "data")
	key := masterKey()
	srv := startServer(t, data, key, "--config", cfg)
	admin := enrol(t, srv)
	auth := admin.authorize(t, srv)
	client := srv.http

	// 30 records per region, created in interleaved order; ids[i] is in
	// region residencyRegions[i%4].
	const perRegion = 30
	var ids []string
	regionOf := map[string]string{}
	for i := 0; i < perRegion*len(residencyRegions); i++ {
		reg := residencyRegions[i%len(residencyRegions)]
		body := fmt.Sprintf(`{"region":%q,"fields":{"display_name":"User %d","country":%q}}`, reg, i, strings.ToUpper(reg))
		resp, b, err := do(client, auth, "POST", srv.base+"/v1/collections/users/records", "support", []byte(body))
		if err != nil || resp.StatusCode != http.StatusCreated {
			t.Fatalf("create record in %s: %v %s", reg, err, b)
		}
		var rec struct{ ID string }
		if err := json.Unmarshal(b, &rec); err != nil || rec.ID == "" {
			t.Fatalf("create: %s", b)
		}
		ids = append(ids, rec.ID)
		regionOf[rec.ID] = reg
	}
	batch := func(auth func(*http.Request), from, to int) (*http.Response, []byte) {
		t.Helper()
		body, _ := json.Marshal(map[string]any{"ids": ids[from:to], "fields": []string{"display_name"}})
		resp, b, err := do(client, auth, "POST", srv.base+"/v1/collections/users/records:batchGet", "support", body)
		if err != nil {
			t.Fatal(err)
		}
		return resp, b
	}
	// Three bulk reads of 30 records, each spread over the four regions: 90
	// of the admin's budget of 100 records a minute.
	for i := 0; i < 3; i++ {
		if resp, b := batch(auth, 30*i, 30*(i+1)); resp.StatusCode != http.StatusOK {
			t.Fatalf("bulk read %d across regions: %s: %s", i, resp.Status, b)
		}
	}
	start := time.Now().UTC().Add(-time.Hour).Format(time.RFC3339)

	// Restart: the guard rebuilds its windows from every region's log.
	srv.kill()
	srv = startServer(t, data, key, "--config", cfg)
	auth = admin.authorize(t, srv)
	if resp, b := batch(auth, 90, 95); resp.StatusCode != http.StatusOK {
		t.Fatalf("a read within the budget after the restart (95 of 100): %s: %s", resp.Status, b)
	}

	// Incident scope, offline from the configuration: 95 subjects exposed,
	// by country, each with events of its own region's log.
	out, code := sekisho(t, "incident", "scope", "--config", cfg, "--principal", "e2e-admin", "--since", start, "--format", "json")
	if code != 0 {
		t.Fatalf("incident scope: exit %d: %s", code, out)
	}
	var sc struct {
		SubjectsExposed int `json:"subjects_exposed"`
		ByRegion        map[string]struct {
			Country         string `json:"country"`
			SubjectsExposed int    `json:"subjects_exposed"`
		} `json:"by_region"`
	}
	if err := json.Unmarshal([]byte(out), &sc); err != nil {
		t.Fatalf("scope JSON: %v\n%s", err, out)
	}
	wantBy := map[string]int{}
	for _, id := range ids[:95] {
		wantBy[regionOf[id]]++
	}
	if sc.SubjectsExposed != 95 {
		t.Errorf("scope: %d subjects exposed, want 95 (in four regions)", sc.SubjectsExposed)
	}
	for _, r := range residencyRegions {
		got := sc.ByRegion[r]
		if got.SubjectsExposed != wantBy[r] || got.Country != strings.ToUpper(r) {
			t.Errorf("scope of %s: %d subjects, country %q; want %d, %q", r, got.SubjectsExposed, got.Country, wantBy[r], strings.ToUpper(r))
		}
	}
	out, code = sekisho(t, "incident", "scope", "--config", cfg, "--principal", "e2e-admin", "--since", start, "--format", "subjects")
	if code != 0 {
		t.Fatalf("incident scope subjects: exit %d", code)
	}
	rows, err := csv.NewReader(strings.NewReader(out)).ReadAll()
	if err != nil || len(rows) != 96 {
		t.Fatalf("subjects CSV: %d rows, %v", len(rows), err)
	}
	col := map[string]int{}
	for i, h := range rows[0] {
		col[h] = i
	}

	// The auditor's interface per region: signed checkpoints with the
	// origin <origin>/<region>, the root over the region's leaves, and an
	// inclusion proof of every event the scope names.
	vkey := (&auditor{t: t, base: srv.base, auth: auth, client: client}).get("/v1/audit/verifier-key", "text/plain")
	verifier, err := note.NewVerifier(strings.TrimSpace(string(vkey)))
	if err != nil {
		t.Fatal(err)
	}
	var origin string
	for _, reg := range residencyRegions {
		a := &auditor{t: t, base: srv.base, auth: auth, client: client}
		raw := a.get("/v1/audit/checkpoint?region="+reg, "text/plain")
		n, err := note.Open(raw, note.VerifierList(verifier))
		if err != nil {
			t.Fatalf("%s checkpoint: %v", reg, err)
		}
		lines := strings.Split(n.Text, "\n")
		if !strings.HasSuffix(lines[0], "/"+reg) || !strings.HasPrefix(lines[0], "sekisho.local/") {
			t.Errorf("%s checkpoint origin %q, want <deployment origin>/%s", reg, lines[0], reg)
		}
		o := strings.TrimSuffix(lines[0], "/"+reg)
		if origin != "" && o != origin {
			t.Errorf("regions sign different deployment origins: %q and %q", origin, o)
		}
		origin = o
		size, _ := strconv.ParseUint(lines[1], 10, 64)
		root, _ := base64.StdEncoding.DecodeString(lines[2])
		var leaves [][]byte
		for from := uint64(0); from < size; {
			var p struct {
				Events []struct {
					Index uint64 `json:"index"`
					Leaf  string `json:"leaf"`
				} `json:"events"`
			}
			a.getJSONLoose(fmt.Sprintf("/v1/audit/events?region=%s&from=%d&limit=1000", reg, from), &p)
			if len(p.Events) == 0 {
				break
			}
			for _, e := range p.Events {
				l, _ := base64.StdEncoding.DecodeString(e.Leaf)
				leaves = append(leaves, l)
			}
			from = p.Events[len(p.Events)-1].Index + 1
		}
		leaves = leaves[:min(uint64(len(leaves)), size)]
		if uint64(len(leaves)) != size || !bytes.Equal(mth(leaves), root) {
			t.Fatalf("%s: the root over %d leaves does not match the checkpoint of size %d", reg, len(leaves), size)
		}
		// Every leaf of this region names only this region's records.
		for i, l := range leaves {
			var ev struct {
				Records []string `json:"records"`
			}
			json.Unmarshal(l, &ev)
			for _, id := range ev.Records {
				if regionOf[id] != reg {
					t.Errorf("%s log event %d names record %s of region %q", reg, i, id, regionOf[id])
				}
			}
		}
		// Inclusion proofs of the scope's events of this region.
		proved := 0
		for _, row := range rows[1:] {
			if row[col["region"]] != reg {
				continue
			}
			if row[col["event_log"]] != reg {
				t.Errorf("subject %s of %s: events in log %q, want its region's own", row[col["record_id"]], reg, row[col["event_log"]])
			}
			for _, f := range strings.Fields(row[col["event_indexes"]]) {
				idx, _ := strconv.ParseUint(f, 10, 64)
				if idx >= size {
					t.Fatalf("event %d beyond the %s checkpoint %d", idx, reg, size)
				}
				var pr struct {
					Hashes []string `json:"hashes"`
				}
				a.getJSONLoose(fmt.Sprintf("/v1/audit/proof/inclusion?region=%s&index=%d&size=%d", reg, idx, size), &pr)
				leafHash := rfc6962.DefaultHasher.HashLeaf(leaves[idx])
				if err := proof.VerifyInclusion(rfc6962.DefaultHasher, idx, size, leafHash, b64s(t, pr.Hashes), root); err != nil {
					t.Errorf("%s event %d: inclusion proof: %v", reg, idx, err)
				}
				proved++
			}
		}
		if proved < wantBy[reg] {
			t.Errorf("%s: %d inclusion proofs for %d subjects", reg, proved, wantBy[reg])
		}
	}
	// An unknown log is refused, not answered from the default log.
	if resp, b, _ := do(client, auth, "GET", srv.base+"/v1/audit/checkpoint?region=xx", "", nil); resp.StatusCode != http.StatusNotFound {
		t.Errorf("checkpoint of an unknown region: %s %s, want 404", resp.Status, b)
	}
	// Last (the guard may quarantine the admin for it): a bulk read past
	// the budget, 125 of 100 records a minute counted in four regions' logs.
	resp, b := batch(auth, 90, 120)
	if resp.StatusCode != http.StatusForbidden || !bytes.Contains(b, []byte("budget")) {
		t.Fatalf("a bulk read past the budget (125 of 100, counted in four regions' logs) = %s %s, want 403 budget", resp.Status, b)
	}
	srv.kill() // the final checkpoints are signed; the stores are ours now

	// No event naming a record of one region is in another region's store.
	for _, reg := range residencyRegions {
		st := openRegionStore(t, data, stores[reg])
		leaves, err := st.AuditLeaves(context.Background(), 0, 100000)
		if err != nil {
			t.Fatal(err)
		}
		named := 0
		for _, e := range leaves {
			for _, id := range e.Records {
				named++
				if regionOf[id] != reg {
					t.Errorf("the %s store's log names record %s of %s (event %d)", reg, id, regionOf[id], e.Index)
				}
			}
		}
		if named == 0 {
			t.Errorf("the %s store's log names no record", reg)
		}
		st.Close()
		// The witness directory has the region's checkpoints.
		files, _ := filepath.Glob(filepath.Join(dir, "witness", reg, "checkpoint-*"))
		if len(files) == 0 {
			t.Errorf("no witness checkpoint of %s in %s", reg, filepath.Join(dir, "witness", reg))
		}
		for _, f := range files {
			raw, _ := os.ReadFile(f)
			if n, err := note.Open(raw, note.VerifierList(verifier)); err != nil || !strings.HasPrefix(n.Text, origin+"/"+reg+"\n") {
				t.Errorf("witness file %s: %v", f, err)
			}
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "witness", "th")); err != nil {
		t.Error(err)
	}

	// audit verify --config: one row per region, all OK (positive control).
	out, code = sekisho(t, "audit", "verify", "--config", cfg)
	if code != 0 {
		t.Fatalf("audit verify --config of an untouched deployment: exit %d\n%s", code, out)
	}
	for _, reg := range append([]string{"default"}, residencyRegions...) {
		if !regexpLine(out, "^"+reg+`\s+OK\s`) {
			t.Errorf("audit verify: no OK row for %s:\n%s", reg, out)
		}
	}
	// Edit one event of th's store: verify names th and the index.
	const edited = 2
	editEvent(t, data, stores["th"], edited)
	out, code = sekisho(t, "audit", "verify", "--config", cfg)
	if code != 5 {
		t.Fatalf("audit verify after an edit in th: exit %d, want 5\n%s", code, out)
	}
	if !regexpLine(out, `^th\s+TAMPERED\s`) || !regexpLine(out, fmt.Sprintf(`^th\s+%d\s+leaf\s`, edited)) {
		t.Errorf("audit verify does not name th and index %d:\n%s", edited, out)
	}
	for _, reg := range []string{"default", "jp", "tw", "id"} {
		if !regexpLine(out, "^"+reg+`\s+OK\s`) {
			t.Errorf("audit verify: %s should still be OK:\n%s", reg, out)
		}
	}
	t.Logf("%s: audit verify --config after editing th event %d:\n%s", backend, edited, out)
}

// getJSONLoose decodes a response into v, ignoring keys v does not name.
func (a *auditor) getJSONLoose(path string, v any) {
	a.t.Helper()
	if err := json.Unmarshal(a.get(path, "application/json"), v); err != nil {
		a.t.Fatalf("GET %s: %v", path, err)
	}
}

// regexpLine reports whether a line of out matches the pattern.
func regexpLine(out, pattern string) bool {
	re := regexp.MustCompile(pattern)
	for _, l := range strings.Split(out, "\n") {
		if re.MatchString(l) {
			return true
		}
	}
	return false
}

// editEvent changes one byte of the leaf of event idx in a store, as an
// operator with database access would.
func editEvent(t *testing.T, dataDir, url string, idx int) {
	t.Helper()
	ctx := context.Background()
	if p, ok := strings.CutPrefix(url, "sqlite:"); ok {
		db, err := sql.Open("sqlite3", filepath.Join(dataDir, p))
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		res, err := db.ExecContext(ctx, "UPDATE audit_events SET leaf = CAST(replace(CAST(leaf AS TEXT), 'support', 'suppora') AS BLOB) WHERE idx = ?", idx)
		if err != nil {
			t.Fatal(err)
		}
		if n, _ := res.RowsAffected(); n != 1 {
			t.Fatalf("edited %d rows", n)
		}
		return
	}
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	tag, err := conn.Exec(ctx, "UPDATE audit_entries SET leaf = convert_to(replace(convert_from(leaf, 'UTF8'), 'support', 'suppora'), 'UTF8') WHERE idx = $1", idx)
	if err != nil {
		t.Fatal(err)
	}
	if tag.RowsAffected() != 1 {
		t.Fatalf("edited %d rows", tag.RowsAffected())
	}
}
