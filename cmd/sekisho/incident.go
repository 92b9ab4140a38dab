package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/sekisho/sekisho"
	"github.com/sekisho/sekisho/access"
	"github.com/sekisho/sekisho/audit"
	"github.com/sekisho/sekisho/client"
	"github.com/sekisho/sekisho/incident"
	"github.com/sekisho/sekisho/keys"
	"github.com/sekisho/sekisho/sqlite"
)

// incidentSource says where incidents are read and computed: through a
// running server's API with the profile's credential (the default), or
// offline from a data directory (--data) or a PostgreSQL store (--store),
// read-only and without the directory's lock, like `sekisho audit`.
type incidentSource struct {
	profile, data, store, config string
	cmd                          *cobra.Command
}

func (s *incidentSource) flags(cmd *cobra.Command) {
	s.cmd = cmd
	fl := cmd.Flags()
	fl.StringVar(&s.profile, "profile", "", "profile directory, for the API (default: $SEKISHO_PROFILE or sekisho under the user config directory)")
	fl.StringVar(&s.data, "data", "", "offline: a data directory, read without a server (read-only, without its lock)")
	fl.StringVar(&s.store, "store", "", "offline: a PostgreSQL URL (postgres://...) instead of the data directory's SQLite")
	fl.StringVar(&s.config, "config", "", "offline: serve's configuration file: its data, store and regions: map (every region's store and audit log is read) and, for reports, its controller section")
}

func (s *incidentSource) offline() bool { return s.data != "" || s.store != "" || s.config != "" }

// openReadOnly opens the store of --data (read-only SQLite, no lock) or
// --store; with --config, every region's store too, behind a regions.Router.
func (s *incidentSource) openReadOnly(ctx context.Context) (sekisho.Store, error) {
	d := deployment{data: s.data, store: s.store}
	dataSet, storeSet := s.data != "", s.store != ""
	if s.cmd != nil {
		dataSet, storeSet = s.cmd.Flags().Changed("data"), s.cmd.Flags().Changed("store")
	}
	if err := d.fromConfig(s.config, dataSet, storeSet); err != nil {
		return nil, err
	}
	return d.open(ctx)
}

// keyCustody is where the data directory's KEKs live (nil when there is no
// data directory: a --store URL alone).
func (s *incidentSource) keyCustody() (*keys.Custody, error) {
	d := deployment{data: s.data, store: s.store}
	dataSet, storeSet := s.data != "", s.store != ""
	if s.cmd != nil {
		dataSet, storeSet = s.cmd.Flags().Changed("data"), s.cmd.Flags().Changed("store")
	}
	if err := d.fromConfig(s.config, dataSet, storeSet); err != nil {
		return nil, err
	}
	return readCustody(d.data)
}

// client loads the profile's client.
func (s *incidentSource) client() (string, *client.Client, error) {
	dir, _, c, err := loadProfile(s.profile)
	if err != nil {
		return "", nil, usageErrorf("%w (or work offline with --data DIR)", err)
	}
	return dir, c, nil
}

// open records in through the API (POST /v1/incidents) and returns it as
// the server stored it.
func (s *incidentSource) open(ctx context.Context, in *incident.Incident) (*incident.Incident, error) {
	dir, c, err := s.client()
	if err != nil {
		return nil, err
	}
	var out incident.Incident
	err = c.JSON(ctx, http.MethodPost, "/v1/incidents", "", in.Request(), &out)
	client.SaveToken(dir, c)
	if err != nil {
		return nil, err
	}
	return &out, nil
}

// get fetches path through the API and returns the body of a 2xx answer.
func (s *incidentSource) get(ctx context.Context, path string) ([]byte, error) {
	dir, c, err := s.client()
	if err != nil {
		return nil, err
	}
	defer client.SaveToken(dir, c)
	resp, err := c.Do(ctx, http.MethodGet, path, nil, nil)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode/100 != 2 {
		var p client.Problem
		if json.Unmarshal(b, &p) == nil && p.Detail != "" {
			return nil, &p
		}
		return nil, fmt.Errorf("GET %s: %s", path, resp.Status)
	}
	return b, nil
}

// suspectFlags are the flags that describe an incident.
type suspectFlags struct {
	principals, devices, orgs             []string
	cipherColls                           []string
	cipherNote                            string
	since, until, discovered, cause, desc string
}

func (f *suspectFlags) flags(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringSliceVar(&f.principals, "principal", nil, "suspected principal (repeatable, or comma-separated)")
	fl.StringSliceVar(&f.devices, "device", nil, "suspected device (repeatable, or comma-separated)")
	fl.StringSliceVar(&f.orgs, "org", nil, "suspected org: the events of its principals (repeatable, or comma-separated)")
	fl.StringVar(&f.since, "since", "", "start of the window, RFC 3339 (inclusive)")
	fl.StringVar(&f.until, "until", "", "end of the window, RFC 3339 (exclusive; default: now)")
	fl.StringVar(&f.discovered, "discovered", "", "when the incident was discovered, RFC 3339 (default: until); regulators' deadlines run from it")
	fl.StringVar(&f.cause, "cause", "", "cause: "+strings.Join(incident.Causes, ", "))
	fl.StringVar(&f.desc, "description", "", "free text about the incident (no personal data)")
	fl.StringSliceVar(&f.cipherColls, "ciphertext-copy", nil, "collections whose records were reached as ciphertext only (a copy of the database without the keys)")
	fl.StringVar(&f.cipherNote, "ciphertext-note", "", "with --ciphertext-copy: how (e.g. backup lost, keys not on it)")
}

func (f *suspectFlags) given() bool {
	return len(f.principals)+len(f.devices)+len(f.orgs) > 0 || f.since != ""
}

func parseTimeFlag(name, v string) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return time.Time{}, fmt.Errorf("--%s %q: want an RFC 3339 time, e.g. 2023-09-14T00:00:00Z", name, v)
	}
	return t, nil
}

func (f *suspectFlags) incident() (*incident.Incident, error) {
	in := &incident.Incident{Principals: f.principals, Devices: f.devices, Orgs: f.orgs, Cause: f.cause, Description: f.desc}
	if len(f.cipherColls) > 0 {
		in.CiphertextCopy = &incident.CiphertextCopy{Collections: f.cipherColls, Note: f.cipherNote}
	}
	var err error
	if in.Since, err = parseTimeFlag("since", f.since); err != nil {
		return nil, err
	}
	if in.Until, err = parseTimeFlag("until", f.until); err != nil {
		return nil, err
	}
	if in.Until.IsZero() {
		// The window's end is exclusive: round now up to the next second,
		// so that the events of the current second are in it.
		in.Until = time.Now().UTC().Truncate(time.Second).Add(time.Second)
	}
	if in.DiscoveredAt, err = parseTimeFlag("discovered", f.discovered); err != nil {
		return nil, err
	}
	if err := in.Validate(); err != nil {
		return nil, err
	}
	return in, nil
}

func newIncidentCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "incident",
		Short: "Open incidents and compute their exact scope from the audit log",
		Long: `An incident is a set of suspected principals, devices and/or orgs and a time
window. Its scope is computed from the audit log alone: the data subjects and
field values actually returned (by collection, region and classification),
the subjects only touched (possible), the attempts the vault refused, and the
worst case (what the suspects could have read under their roles and grants).
Every subject links back to the audit events that count it.

Through a running server (the profile's credential, like 'sekisho api') or
offline from a data directory with --data (read-only, beside a running server).`,
	}
	cmd.AddCommand(newIncidentOpenCmd(), newIncidentScopeCmd(), newIncidentListCmd(), newIncidentNoticesCmd())
	return cmd
}

func newIncidentOpenCmd() *cobra.Command {
	var src incidentSource
	var f suspectFlags
	var format string
	cmd := &cobra.Command{
		Use:   "open --principal P|--device D|--org O --since T [--until T] [--discovered T] [--cause C]",
		Short: "Record an incident and print its id",
		Example: `  sekisho incident open --principal sub-admin --device Jt6... --since 2023-09-14T00:00:00Z --until 2023-10-27T00:00:00Z \
      --discovered 2023-10-27T09:00:00Z --cause malware
  sekisho incident open --data ./sekisho-data --org subcontractor --since 2023-09-14T00:00:00Z`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			in, err := f.incident()
			if err != nil {
				return err
			}
			if in, err = src.twin().openIncident(cmd.Context(), in); err != nil {
				return err
			}
			if format == "json" {
				return writeJSON(cmd.OutOrStdout(), in)
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "incident id: %s\n", in.ID)
			return err
		},
	}
	src.flags(cmd)
	f.flags(cmd)
	addFormatFlag(cmd.Flags(), &format, "table", "table", "json")
	return cmd
}

// openIncidentOffline writes the incident into a stopped instance's store
// (it takes the data directory's lock, so not beside a running server). Like
// the API, it records an incident.create event in the audit log, and before
// the incident is stored (write-ahead).
func openIncidentOffline(ctx context.Context, src incidentSource, in *incident.Incident) error {
	if src.data == "" {
		return errors.New("incident open offline needs --data DIR: the audit log's signing key is in the data directory")
	}
	if fi, err := os.Stat(src.data); err != nil || !fi.IsDir() {
		return fmt.Errorf("data directory %s does not exist (give --data DIR)", src.data)
	}
	if src.store == "" {
		lock, err := lockDir(src.data)
		if err != nil {
			return err
		}
		defer lock.Close()
	}
	st, err := openStore(ctx, src.data, src.store, sqlite.Options{})
	if err != nil {
		return err
	}
	defer st.Close()
	signer, verifier, err := audit.LoadOrCreateKeys(src.data, audit.DefaultOrigin)
	if err != nil {
		return err
	}
	log, err := audit.New(ctx, st, signer, audit.Options{Verifier: verifier})
	if err != nil {
		return fmt.Errorf("open audit log: %w", err)
	}
	defer log.Close()
	// The local operator, with the data directory's lock: as an auditor.
	host, _ := os.Hostname()
	c := sekisho.Caller{Principal: "cli-incident", Device: "local:" + host, Source: "local", Roles: []string{access.RoleAuditor},
		RequestID: "incident-open-" + time.Now().UTC().Format("20060102T150405Z")}
	svc := &incident.Service{Store: st, Directory: access.NewDirectory(st), Audit: log}
	out, err := svc.Open(ctx, c, in.Request())
	if err != nil {
		return err
	}
	*in = *out
	return nil
}

func newIncidentListCmd() *cobra.Command {
	var src incidentSource
	var format string
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the recorded incidents",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ins, err := src.twin().incidents(cmd.Context())
			if err != nil {
				return err
			}
			if format == "json" {
				if ins == nil {
					ins = []*incident.Incident{}
				}
				return writeJSON(cmd.OutOrStdout(), map[string]any{"incidents": ins})
			}
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			defer w.Flush()
			fmt.Fprintln(w, "ID\tSINCE\tUNTIL\tDISCOVERED\tCAUSE\tSUSPECTS")
			for _, in := range ins {
				sus := strings.Join(append(append(append([]string{}, in.Principals...), in.Devices...), in.Orgs...), ",")
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", in.ID, in.Since.Format(time.RFC3339), in.Until.Format(time.RFC3339),
					in.DiscoveredAt.Format(time.RFC3339), in.Cause, sus)
			}
			return nil
		},
	}
	src.flags(cmd)
	addFormatFlag(cmd.Flags(), &format, "table", "table", "json")
	return cmd
}

func newIncidentScopeCmd() *cobra.Command {
	var src incidentSource
	var f suspectFlags
	var id, format, region, notifyDir string
	cmd := &cobra.Command{
		Use:   "scope (--incident ID | --principal P --device D --org O --since T --until T) [--format json|table|csv|subjects|denied]",
		Short: "Compute an incident's scope from the audit log",
		Long: `Compute an incident's scope from the audit log: of a recorded incident
(--incident ID), or of suspects and a window given as flags.

Formats: table (for a person), json (the numbers; keys incident, suspects,
window, subjects_exposed, fields_exposed, by_collection, by_region,
by_classification, subjects_possible, denied_attempts, worst_case_subjects),
csv (the numbers, a row per dimension), subjects (the per-subject notification
list as CSV, with the audit event indexes of each subject; --region narrows
it), denied (the refused attempts as CSV). --notify-dir DIR writes one
notification list per region, DIR/subjects-REGION.csv.

Offline (--data), flags describe an ad-hoc incident that is not recorded;
through the API, they record one (as 'incident open' does) and print its id
on standard error.`,
		Example: `  sekisho incident scope --principal sub-admin --since 2023-09-14T00:00:00Z --until 2023-10-27T00:00:00Z --format table
  sekisho incident scope --data ./sekisho-data --incident inc-0123456789abcdef --format json
  sekisho incident scope --data ./sekisho-data --incident inc-0123456789abcdef --notify-dir ./notify`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			if (id == "") == !f.given() {
				return usageErrorf("give --incident ID, or the suspects (--principal, --device, --org) and --since, not both")
			}
			var adhoc *incident.Incident
			if id == "" {
				var err error
				if adhoc, err = f.incident(); err != nil {
					return err
				}
			}
			if notifyDir != "" {
				// The notification list of every region, split by region.
				b, err := src.twin().scope(ctx, id, adhoc, "subjects", "")
				if err != nil {
					return err
				}
				return splitSubjects(cmd.OutOrStdout(), b, notifyDir)
			}
			b, err := src.twin().scope(ctx, id, adhoc, orDefault(format, "table"), region)
			if err != nil {
				return err
			}
			_, err = cmd.OutOrStdout().Write(b)
			return err
		},
	}
	src.flags(cmd)
	f.flags(cmd)
	cmd.Flags().StringVar(&id, "incident", "", "a recorded incident's id")
	addFormatFlag(cmd.Flags(), &format, "table", incident.Formats...)
	cmd.Flags().StringVar(&region, "region", "", "with --format subjects: only this region's subjects")
	cmd.Flags().StringVar(&notifyDir, "notify-dir", "", "write the notification list of each region to DIR/subjects-REGION.csv")
	return cmd
}

// splitSubjects writes a subjects CSV as one file per region.
func splitSubjects(out io.Writer, all []byte, dir string) error {
	rows, err := csv.NewReader(bytes.NewReader(all)).ReadAll()
	if err != nil {
		return fmt.Errorf("subjects list: %w", err)
	}
	if len(rows) == 0 {
		return fmt.Errorf("subjects list is empty")
	}
	col := -1
	for i, h := range rows[0] {
		if h == "region" {
			col = i
		}
	}
	if col < 0 {
		return fmt.Errorf("subjects list has no region column")
	}
	by := map[string][][]string{}
	var regions []string
	for _, r := range rows[1:] {
		if by[r[col]] == nil {
			regions = append(regions, r[col])
		}
		by[r[col]] = append(by[r[col]], r)
	}
	slices.Sort(regions)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	for _, reg := range regions {
		var b bytes.Buffer
		w := csv.NewWriter(&b)
		w.Write(rows[0])
		w.WriteAll(by[reg])
		path := filepath.Join(dir, "subjects-"+reg+".csv")
		if err := os.WriteFile(path, b.Bytes(), 0o600); err != nil {
			return err
		}
		fmt.Fprintf(out, "%s: %d subjects\n", path, len(by[reg]))
	}
	return nil
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}
