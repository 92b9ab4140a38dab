package main

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/sekisho/sekisho/incident"
)

// twinOf returns the twin the flags choose, as a verb gets it.
func twinOf(t *testing.T, flags ...string) (twin, *bytes.Buffer) {
	t.Helper()
	c := &cobra.Command{}
	var errb bytes.Buffer
	c.SetErr(&errb)
	src := &incidentSource{}
	src.flags(c)
	for i := 0; i < len(flags); i += 2 {
		if err := c.Flags().Set(flags[i], flags[i+1]); err != nil {
			t.Fatal(err)
		}
	}
	return src.twin(), &errb
}

// The twins of the CLI (the API, and the local store read beside the
// running server) do the same work: one table of calls runs on both and
// their answers agree.
func TestTwinsAgree(t *testing.T) {
	url, tokenFile, dir := startServerAt(t)
	admin := filepath.Join(t.TempDir(), "admin")
	if out, code := cli(t, "login", "--server", url, "--bootstrap-token-file", tokenFile, "--profile", admin); code != 0 {
		t.Fatalf("login: %d %s", code, out)
	}
	start := time.Now().Add(-time.Minute).UTC()
	out, code := cli(t, "api", "--profile", admin, "POST", "/v1/collections/users/records", "--header", "Sekisho-Purpose: support",
		"--data", `{"region":"th","fields":{"display_name":"Somchai","email":"s@example.com"}}`)
	if code != 0 {
		t.Fatalf("create: %d %s", code, out)
	}
	var rec struct{ ID string }
	json.Unmarshal([]byte(out), &rec)
	if out, code := cli(t, "api", "--profile", admin, "GET", "/v1/collections/users/records/"+rec.ID, "--header", "Sekisho-Purpose: support"); code != 0 {
		t.Fatalf("read: %d %s", code, out)
	}
	end := time.Now().Add(time.Minute).UTC().Truncate(time.Second)
	suspects := func() *incident.Incident {
		return &incident.Incident{Principals: []string{"admin"}, Since: start, Until: end, Cause: "unauthorized-access"}
	}
	api, apiErr := twinOf(t, "profile", admin)
	local, _ := twinOf(t, "data", dir)
	if _, ok := api.(*apiTwin); !ok {
		t.Fatalf("--profile chose %T", api)
	}
	if _, ok := local.(*localTwin); !ok {
		t.Fatalf("--data chose %T", local)
	}
	opened, err := api.openIncident(t.Context(), suspects())
	if err != nil || !strings.HasPrefix(opened.ID, "inc-") {
		t.Fatalf("open: %v, %v", opened, err)
	}
	id := opened.ID

	type answers struct {
		listed   bool
		numbers  map[string]any
		subjects string
		adhoc    any
		report   string
		csv      string
	}
	got := map[string]answers{}
	for _, tw := range []struct {
		name string
		tw   twin
	}{{"api", api}, {"local", local}} {
		t.Run(tw.name, func(t *testing.T) {
			ctx := t.Context()
			var a answers
			ins, err := tw.tw.incidents(ctx)
			if err != nil {
				t.Fatal(err)
			}
			a.listed = slices.ContainsFunc(ins, func(in *incident.Incident) bool { return in.ID == id })
			b, err := tw.tw.scope(ctx, id, nil, "json", "")
			if err != nil || json.Unmarshal(b, &a.numbers) != nil {
				t.Fatalf("scope: %v %s", err, b)
			}
			if a.numbers["subjects_exposed"] != float64(1) {
				t.Errorf("scope: %s", b)
			}
			if b, err = tw.tw.scope(ctx, id, nil, "subjects", "th"); err != nil || !strings.Contains(string(b), rec.ID) {
				t.Errorf("subjects: %v %s", err, b)
			}
			a.subjects = string(b)
			var adhoc map[string]any
			if b, err = tw.tw.scope(ctx, "", suspects(), "json", ""); err != nil || json.Unmarshal(b, &adhoc) != nil {
				t.Fatalf("ad-hoc scope: %v %s", err, b)
			}
			a.adhoc = adhoc["subjects_exposed"]
			if b, err = tw.tw.report(ctx, "pdpa", id, reportOpts{format: "md", lang: "en"}); err != nil || !strings.Contains(string(b), "within 72 hours") {
				t.Errorf("pdpa: %v %s", err, b)
			}
			a.report = string(b)
			if b, err = tw.tw.provision(ctx, "operator", start, end, "csv", ""); err != nil {
				t.Errorf("provision: %v", err)
			}
			a.csv = string(b)
			got[tw.name] = a
		})
	}
	a, l := got["api"], got["local"]
	if !a.listed || !l.listed {
		t.Errorf("incident %s listed: api %v, local %v", id, a.listed, l.listed)
	}
	for _, k := range []string{"incident", "subjects_exposed", "fields_exposed", "subjects_possible", "denied_attempts", "worst_case_subjects"} {
		if a.numbers[k] != l.numbers[k] {
			t.Errorf("scope %s: api %v, local %v", k, a.numbers[k], l.numbers[k])
		}
	}
	// log_size is the log's size when each scope was computed: the API's
	// ad-hoc scope recorded an incident (one more event) in between.
	if withoutLogSize(t, a.subjects) != withoutLogSize(t, l.subjects) || a.csv != l.csv || a.adhoc != l.adhoc {
		t.Errorf("api and local differ:\nsubjects %q\n         %q\nprovision %q\n          %q\nad hoc %v, %v", a.subjects, l.subjects, a.csv, l.csv, a.adhoc, l.adhoc)
	}
	if a.report == "" || l.report == "" {
		t.Error("a report is empty")
	}
	// The API records an ad-hoc incident and says its id; offline it is not recorded.
	if !strings.Contains(apiErr.String(), "incident id: inc-") {
		t.Errorf("api ad-hoc scope said %q on stderr", apiErr.String())
	}
	ins, err := local.incidents(t.Context())
	if err != nil || len(ins) != 2 {
		t.Errorf("%d incidents after the ad-hoc scopes (api's recorded, local's not), want 2: %v", len(ins), err)
	}
}

// withoutLogSize is a subjects CSV without its log_size column.
func withoutLogSize(t *testing.T, s string) string {
	t.Helper()
	rows, err := csv.NewReader(strings.NewReader(s)).ReadAll()
	if err != nil || len(rows) == 0 {
		t.Fatalf("subjects CSV: %v %q", err, s)
	}
	col := slices.Index(rows[0], "log_size")
	if col < 0 {
		t.Fatalf("no log_size column: %q", rows[0])
	}
	var b strings.Builder
	for _, r := range rows {
		fmt.Fprintln(&b, slices.Delete(slices.Clone(r), col, col+1))
	}
	return b.String()
}
