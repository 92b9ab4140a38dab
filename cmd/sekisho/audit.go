package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/mod/sumdb/note"

	"github.com/sekisho/sekisho"
	"github.com/sekisho/sekisho/audit"
	"github.com/sekisho/sekisho/httpapi"
	"github.com/sekisho/sekisho/regions"
)

func newAuditCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "Verify and read the tamper-evident audit log, without a running server",
		Long: `Verify and read the audit log of a data directory (or of a PostgreSQL store).

These commands only read (but cluster, which rewrites a closed month of a
PostgreSQL log in place): they open the database read-only and do not take the
data directory's lock, so they run beside a running server as well as after it
stopped or crashed. (Opening a PostgreSQL store applies the migrations it
lacks and makes this month's and the next month's audit partitions, as serve
does.)`,
	}
	cmd.AddCommand(newAuditVerifyCmd(), newAuditEventsCmd(), newAuditCheckpointCmd(), newAuditTailCmd(), newAuditClusterCmd())
	return cmd
}

// auditSource says where an audit log is read from.
type auditSource struct {
	data, store, key, config, region string
	cmd                              *cobra.Command
}

func (a *auditSource) flags(cmd *cobra.Command) {
	a.cmd = cmd
	fl := cmd.Flags()
	fl.StringVar(&a.data, "data", "./sekisho-data", "data directory (embedded database and audit verifier key)")
	fl.StringVar(&a.store, "store", "", "PostgreSQL URL (postgres://...); default: the embedded SQLite of --data")
	fl.StringVar(&a.key, "key", "", "audit verifier key file to check signatures with (default: DATA/"+audit.VerifierKeyFile+"; an auditor passes the key it pinned)")
	fl.StringVar(&a.config, "config", "", "serve's configuration file (data, store and the regions: map): read every region's audit log")
}

// auditLog is one log read by the audit commands: its name ("default" or a
// region) and its store.
type auditLog struct {
	name  string
	store sekisho.AuditStore
}

// openLogs opens every audit log of the deployment read-only (the SQLite
// files with mode=ro and without the data directory's lock, see
// sqlite.OpenReadOnly): the default store's, and with --config each
// region's. With --region only that log ("default" for the default one).
func (a *auditSource) openLogs(ctx context.Context) ([]auditLog, io.Closer, error) {
	d := deployment{data: a.data, store: a.store}
	if err := d.fromConfig(a.config, a.cmd != nil && a.cmd.Flags().Changed("data"), a.cmd != nil && a.cmd.Flags().Changed("store")); err != nil {
		return nil, nil, err
	}
	a.data, a.store = d.data, d.store
	st, err := d.open(ctx)
	if err != nil {
		return nil, nil, err
	}
	var logs []auditLog
	var names []string
	for _, l := range regions.LogStores(st) {
		name := l.Region
		if name == "" {
			name = audit.DefaultLog
		}
		names = append(names, name)
		if a.region == "" || a.region == "all" || a.region == name {
			logs = append(logs, auditLog{name: name, store: l.Store})
		}
	}
	if len(logs) == 0 {
		st.Close()
		return nil, nil, fmt.Errorf("--region %s: no such audit log (logs: %s; a region without a store of its own keeps its events in the default log)", a.region, strings.Join(names, ", "))
	}
	return logs, st, nil
}

func (a *auditSource) verifier() (note.Verifier, error) {
	path := a.key
	if path == "" {
		path = filepath.Join(a.data, audit.VerifierKeyFile)
	}
	return audit.LoadVerifier(path)
}

type auditVerifyFlags struct {
	src        auditSource
	checkpoint string
	format     string
}

func newAuditVerifyCmd() *cobra.Command {
	var f auditVerifyFlags
	cmd := &cobra.Command{
		Use:   "verify",
		Short: "Recompute the Merkle tree and check it against every signed checkpoint",
		Long: `Recompute the audit log's Merkle tree from every stored event and check it
against the stored subtree hashes, every stored checkpoint (signature, root and
the consistency of successive checkpoints) and, with --checkpoint, a checkpoint
kept outside the store (by an auditor, a regulator or a witness).

Every changed, deleted, reordered or inserted event is reported with its index,
as is a log truncated below a checkpoint. With --config FILE (serve's
configuration, with its regions: map) every region's log is verified, one
row per region, and a problem names its region and index.

Exit status: 0 when the log verifies, 5 when tampering was found, 1 when the
check could not run (no database, a bad key or checkpoint file).`,
		Example: `  sekisho audit verify --data ./sekisho-data
  sekisho audit verify --data ./sekisho-data --checkpoint witness/checkpoint-1200 --key pinned-verifier-key
  sekisho audit verify --data ./sekisho-data --format json
  sekisho audit verify --config sekisho.yaml            # every region's log, one row each
  sekisho audit verify --config sekisho.yaml --region th --checkpoint witness/th/checkpoint-52`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runAuditVerify(cmd.Context(), cmd.OutOrStdout(), f) },
	}
	f.src.flags(cmd)
	cmd.Flags().StringVar(&f.src.region, "region", "", "only this log: a region with a store of its own, or default (default: every log of --config)")
	cmd.Flags().StringVar(&f.checkpoint, "checkpoint", "", "a checkpoint note kept outside the store, to check the log against")
	addFormatFlag(cmd.Flags(), &f.format, "table", "table", "json")
	return cmd
}

func runAuditVerify(ctx context.Context, out io.Writer, f auditVerifyFlags) error {
	if f.format != "table" && f.format != "json" {
		return fmt.Errorf("--format %q: want table or json", f.format)
	}
	var external []byte
	if f.checkpoint != "" {
		b, err := os.ReadFile(f.checkpoint)
		if err != nil {
			return fmt.Errorf("read checkpoint: %w", err)
		}
		external = b
	}
	logs, closer, err := f.src.openLogs(ctx)
	if err != nil {
		return err
	}
	defer closer.Close()
	v, err := f.src.verifier()
	if err != nil {
		return err
	}
	if external != nil && len(logs) > 1 {
		return usageErrorf("--checkpoint is a checkpoint of one log: give --region (one of the logs of --config)")
	}
	if len(logs) > 1 || f.src.region != "" {
		return verifyLogs(ctx, out, logs, v, external, f.format)
	}
	start := time.Now()
	rep, err := audit.Verify(ctx, logs[0].store, v, external)
	if err != nil {
		return err
	}
	if f.format == "json" {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return err
		}
	} else if err := writeVerifyTable(out, rep, time.Since(start)); err != nil {
		return err
	}
	if !rep.OK {
		return &exitError{code: exitTampered, err: fmt.Errorf("audit log tampered with: %d problems, the first at index %d", len(rep.Problems)+rep.Omitted, firstIndex(rep))}
	}
	return nil
}

// logReport is the verification of one log of a deployment.
type logReport struct {
	Region string `json:"region"`
	*audit.Report
	Took string `json:"took"`
}

// verifyLogs verifies every log and prints one row per log; the exit status
// says whether any log was tampered with, naming the log and index.
func verifyLogs(ctx context.Context, out io.Writer, logs []auditLog, v note.Verifier, external []byte, format string) error {
	var reps []logReport
	ok := true
	for _, l := range logs {
		start := time.Now()
		rep, err := audit.Verify(ctx, l.store, v, external)
		if err != nil {
			return fmt.Errorf("log %s: %w", l.name, err)
		}
		if err := checkOrigins(ctx, l, logs, rep); err != nil {
			return fmt.Errorf("log %s: %w", l.name, err)
		}
		reps = append(reps, logReport{Region: l.name, Report: rep, Took: time.Since(start).Round(time.Millisecond).String()})
		ok = ok && rep.OK
	}
	if format == "json" {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		if err := enc.Encode(struct {
			OK   bool        `json:"ok"`
			Logs []logReport `json:"logs"`
		}{ok, reps}); err != nil {
			return err
		}
	} else {
		tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "REGION\tRESULT\tEVENTS\tCHECKPOINTS\tPROBLEMS\tTOOK")
		for _, r := range reps {
			result := "OK"
			if !r.OK {
				result = "TAMPERED"
			}
			fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%s\n", r.Region, result, r.Size, r.Checkpoints, len(r.Problems)+r.Omitted, r.Took)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		if !ok {
			fmt.Fprintln(out)
			tw = tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "REGION\tINDEX\tKIND\tPROBLEM")
			for _, r := range reps {
				for _, p := range r.Problems {
					fmt.Fprintf(tw, "%s\t%d\t%s\t%s\n", r.Region, p.Index, p.Kind, p.Message)
				}
				if r.Omitted > 0 {
					fmt.Fprintf(tw, "%s\t\t\t... and %d more\n", r.Region, r.Omitted)
				}
			}
			if err := tw.Flush(); err != nil {
				return err
			}
		}
	}
	if !ok {
		var bad []string
		for _, r := range reps {
			if !r.OK {
				bad = append(bad, fmt.Sprintf("log %s: %d problems, the first at index %d", r.Region, len(r.Problems)+r.Omitted, firstIndex(r.Report)))
			}
		}
		return &exitError{code: exitTampered, err: fmt.Errorf("audit log tampered with: %s", strings.Join(bad, "; "))}
	}
	return nil
}

// checkOrigins adds a problem for every stored checkpoint of a region's log
// whose origin line does not end in /<region>, and of the default log that
// ends in another log's /<region>: a checkpoint moved between logs.
func checkOrigins(ctx context.Context, l auditLog, logs []auditLog, rep *audit.Report) error {
	cps, err := l.store.Checkpoints(ctx)
	if err != nil {
		return err
	}
	for _, cp := range cps {
		text, _, _ := bytes.Cut(cp.Note, []byte("\n\n"))
		body, err := audit.ParseCheckpointBody(string(text) + "\n")
		if err != nil {
			continue // Verify reported the checkpoint already
		}
		wrong := false
		if l.name == audit.DefaultLog {
			for _, o := range logs {
				if o.name != audit.DefaultLog && strings.HasSuffix(body.Origin, "/"+o.name) {
					wrong = true
				}
			}
		} else {
			wrong = !strings.HasSuffix(body.Origin, "/"+l.name)
		}
		if wrong {
			rep.OK = false
			rep.Problems = append(rep.Problems, audit.Problem{Index: cp.Size, Kind: audit.ProblemOrigin,
				Message: fmt.Sprintf("checkpoint %d names origin %q, not a checkpoint of log %s", cp.Size, body.Origin, l.name)})
		}
	}
	return nil
}

func firstIndex(rep *audit.Report) uint64 {
	if len(rep.Problems) == 0 {
		return 0
	}
	return rep.Problems[0].Index
}

func writeVerifyTable(out io.Writer, rep *audit.Report, took time.Duration) error {
	if rep.OK {
		_, err := fmt.Fprintf(out, "OK: %d events, %d checkpoints verified in %s\n", rep.Size, rep.Checkpoints, took.Round(time.Millisecond))
		return err
	}
	fmt.Fprintf(out, "TAMPERED: %d events, %d checkpoints checked, %d problems\n\n", rep.Size, rep.Checkpoints, len(rep.Problems)+rep.Omitted)
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "INDEX\tKIND\tPROBLEM")
	for _, p := range rep.Problems {
		fmt.Fprintf(tw, "%d\t%s\t%s\n", p.Index, p.Kind, p.Message)
	}
	if rep.Omitted > 0 {
		fmt.Fprintf(tw, "\t\t... and %d more\n", rep.Omitted)
	}
	return tw.Flush()
}

type auditEventsFlags struct {
	src                               auditSource
	principal, device, org, record    string
	requestID, decision, since, until string
	from                              uint64
	limit                             int
}

func newAuditEventsCmd() *cobra.Command {
	var f auditEventsFlags
	cmd := &cobra.Command{
		Use:   "events",
		Short: "Print the matching audit events as NDJSON, one event object a line",
		Long: `Print the audit events that match every given filter, in log order, as NDJSON:
one event a line, exactly the JSON that was hashed into the Merkle tree (keys v,
time, request_id, org, principal, device, source, purpose, action, collection,
records, fields, masked, decision, policy, reason, ...), for auditors and SIEM
imports. --since is inclusive, --until exclusive; both take RFC 3339 times or a
duration back from now (24h).`,
		Example: `  sekisho audit events --data ./sekisho-data --principal alice --since 2026-01-01T00:00:00Z --until 2026-01-08T00:00:00Z
  sekisho audit events --data ./sekisho-data --request-id 4f6c9e0d2a7b41c3a1e5d8f0b2c4a6e8
  sekisho audit events --data ./sekisho-data --decision deny --since 1h | jq .reason`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runAuditEvents(cmd.Context(), cmd.OutOrStdout(), f) },
	}
	f.src.flags(cmd)
	fl := cmd.Flags()
	fl.StringVar(&f.principal, "principal", "", "only events of this principal")
	fl.StringVar(&f.device, "device", "", "only events of this device")
	fl.StringVar(&f.org, "org", "", "only events of this org's principals or about its records")
	fl.StringVar(&f.record, "record", "", "only events that touched this record id")
	fl.StringVar(&f.requestID, "request-id", "", "only the events of this request (its X-Request-Id)")
	fl.StringVar(&f.decision, "decision", "", "only allow or deny")
	fl.StringVar(&f.since, "since", "", "only events at or after this time (RFC 3339, or a duration ago such as 24h)")
	fl.StringVar(&f.until, "until", "", "only events before this time (RFC 3339, or a duration ago)")
	fl.Uint64Var(&f.from, "from", 0, "first log index to consider")
	fl.IntVar(&f.limit, "limit", 0, "print at most this many events (0: all)")
	fl.StringVar(&f.src.region, "region", "", "the log to read: a region with a store of its own, default, or all (default: the default log)")
	return cmd
}

// parseWhen reads an RFC 3339 time, or a duration meaning that long ago.
func parseWhen(now time.Time, v string) (string, error) {
	if v == "" {
		return "", nil
	}
	if d, err := time.ParseDuration(v); err == nil {
		return now.Add(-d).UTC().Format(time.RFC3339Nano), nil
	}
	return v, nil
}

// filter builds the store filter; the names and checks are the API's
// (httpapi.ParseAuditFilter), so the CLI and GET /v1/audit/events agree.
func (f auditEventsFlags) filter(now time.Time) (sekisho.AuditFilter, error) {
	if f.limit < 0 {
		return sekisho.AuditFilter{}, errors.New("--limit must not be negative")
	}
	since, err := parseWhen(now, f.since)
	if err != nil {
		return sekisho.AuditFilter{}, err
	}
	until, err := parseWhen(now, f.until)
	if err != nil {
		return sekisho.AuditFilter{}, err
	}
	q := url.Values{}
	for k, v := range map[string]string{"principal": f.principal, "device": f.device, "org": f.org, "record": f.record,
		"request_id": f.requestID, "decision": f.decision, "since": since, "until": until} {
		if v != "" {
			q.Set(k, v)
		}
	}
	flt, err := httpapi.ParseAuditFilter(q)
	if err != nil {
		var e *sekisho.Error
		if errors.As(err, &e) && e.Field != "" {
			return flt, fmt.Errorf("--%s: %s", strings.ReplaceAll(e.Field, "_", "-"), e.Message)
		}
		return flt, err
	}
	flt.From = f.from
	return flt, nil
}

// eventsPage is how many events `audit events` reads per query.
const eventsPage = 1000

func runAuditEvents(ctx context.Context, out io.Writer, f auditEventsFlags) error {
	flt, err := f.filter(time.Now())
	if err != nil {
		return err
	}
	if f.src.region == "" {
		f.src.region = audit.DefaultLog
	}
	logs, closer, err := f.src.openLogs(ctx)
	if err != nil {
		return err
	}
	defer closer.Close()
	w := bufio.NewWriterSize(out, 64<<10)
	printed, bad := 0, 0
	from := flt.From
	for _, l := range logs {
		flt.From = from
		if err := printEvents(ctx, w, l, flt, f.limit, &printed, &bad); err != nil {
			return err
		}
	}
	if err := w.Flush(); err != nil {
		return err
	}
	if bad > 0 {
		return &exitError{code: exitTampered, err: fmt.Errorf("%d stored events do not decode; run sekisho audit verify", bad)}
	}
	return nil
}

// printEvents prints the matching events of one log, up to limit in all.
func printEvents(ctx context.Context, w *bufio.Writer, l auditLog, flt sekisho.AuditFilter, limit int, printed, bad *int) error {
	store := l.store
	for limit == 0 || *printed < limit {
		flt.Limit = eventsPage
		if limit > 0 {
			flt.Limit = min(eventsPage, limit-*printed)
		}
		entries, err := store.QueryAudit(ctx, flt)
		if err != nil {
			return err
		}
		for _, e := range entries {
			ev, err := sekisho.UnmarshalEvent(e.Leaf)
			if err != nil {
				// Not printed: a line that is not an event would break the
				// reader's NDJSON; the count goes to the exit status.
				*bad++
				fmt.Fprintf(os.Stderr, "sekisho: event %d of log %s does not decode (%v); run sekisho audit verify\n", e.Index, l.name, err)
				continue
			}
			w.Write(sekisho.MarshalEvent(ev))
			w.WriteByte('\n')
			*printed++
		}
		if len(entries) < flt.Limit {
			break
		}
		flt.From = entries[len(entries)-1].Index + 1
	}
	return nil
}

func newAuditCheckpointCmd() *cobra.Command {
	var src auditSource
	cmd := &cobra.Command{
		Use:   "checkpoint",
		Short: "Print the latest signed checkpoint, to keep outside the operator",
		Long: `Print the latest stored checkpoint note (C2SP tlog-checkpoint, the same bytes as
GET /v1/audit/checkpoint), after checking its signature. Keep the output
somewhere the operator cannot rewrite; later, sekisho audit verify --checkpoint
FILE proves that the log still extends it.`,
		Example: `  sekisho audit checkpoint --data ./sekisho-data > checkpoint-$(date +%F)
  sekisho audit checkpoint --config sekisho.yaml --region th > th-checkpoint-$(date +%F)`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			if src.region == "" {
				src.region = audit.DefaultLog
			}
			logs, closer, err := src.openLogs(ctx)
			if err != nil {
				return err
			}
			defer closer.Close()
			v, err := src.verifier()
			if err != nil {
				return err
			}
			cps, err := logs[0].store.Checkpoints(ctx)
			if err != nil {
				return err
			}
			if len(cps) == 0 {
				return errors.New("no checkpoint yet: a running server signs one every few seconds once events were logged")
			}
			latest := cps[len(cps)-1]
			if _, err := audit.OpenCheckpoint(latest.Note, v); err != nil {
				return &exitError{code: exitTampered, err: fmt.Errorf("the latest stored checkpoint (size %d) is not validly signed: %w; run sekisho audit verify", latest.Size, err)}
			}
			_, err = cmd.OutOrStdout().Write(latest.Note)
			return err
		},
	}
	src.flags(cmd)
	cmd.Flags().StringVar(&src.region, "region", "", "the log: a region with a store of its own (with --config), or default")
	return cmd
}
