package main

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/sekisho/sekisho/postgres"
)

type auditClusterFlags struct {
	src    auditSource
	month  string
	format string
}

func newAuditClusterCmd() *cobra.Command {
	var f auditClusterFlags
	cmd := &cobra.Command{
		Use:   "cluster",
		Short: "Rewrite a closed month of a PostgreSQL audit log in principal order, for fast incident scopes",
		Long: `Rewrite one closed month of the audit log in (principal, time) order: the month's
partition is CLUSTERed on its principal index, so that an incident scope of
one principal over a week of it reads a few pages instead of a page in every
few of the month (docs/scope-at-scale.md). Events, indexes and checkpoints do
not change; sekisho audit verify passes before and after.

PostgreSQL only: its audit log is partitioned by month (UTC). The month must
have ended an hour ago. The rewrite locks the month's partition for its whole
length (83 s for 8.5M events on 2 cores). Appends, which go to the current
month, and the requests that make them go on, and so do reads bounded in time
that are planned for their bounds; but every read of the log by index (the
nodes' sync of the guard's counters, the export to a SIEM, audit tail, verify
and backup) and a time-bounded read on a connection that has switched to a
generic plan wait for it, as they touch every partition: run it when those
can wait. It needs the partition's size again in free disk, and as much again
for the sort's temporary files unless maintenance_work_mem holds it (a
run-time parameter in the URL: postgres://...?maintenance_work_mem=8GB). Run
it once a month, for the month that ended (a month before the log was
partitioned, in audit_entries_before, cannot be clustered alone).

This command writes: unlike the other audit commands, run it against the
production store deliberately.`,
		Example: `  sekisho audit cluster --store postgres://sekisho@db/sekisho --month 2026-11
  sekisho audit cluster --store 'postgres://sekisho@db/sekisho?maintenance_work_mem=8GB' --month 2026-11
  sekisho audit cluster --config sekisho.yaml --region jp --month 2026-11 --format json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runAuditCluster(cmd.Context(), cmd.OutOrStdout(), f, time.Now())
		},
	}
	f.src.flags(cmd)
	fl := cmd.Flags()
	fl.MarkHidden("key") // nothing is verified here
	fl.StringVar(&f.src.region, "region", "", "only this log: a region with a store of its own, or default (default: every log of --config)")
	fl.StringVar(&f.month, "month", "", "the closed month to cluster, YYYY-MM in UTC (required)")
	addFormatFlag(fl, &f.format, "table", "table", "json")
	return cmd
}

// clusteredLog is one line of audit cluster's output.
type clusteredLog struct {
	Log string `json:"log"`
	postgres.Clustered
}

func runAuditCluster(ctx context.Context, out io.Writer, f auditClusterFlags, now time.Time) error {
	if f.month == "" {
		return fmt.Errorf("--month: give the month to cluster, YYYY-MM (UTC)")
	}
	month, err := time.Parse("2006-01", f.month)
	if err != nil {
		return fmt.Errorf("--month %q: want YYYY-MM, such as %s", f.month, now.UTC().AddDate(0, -1, 0).Format("2006-01"))
	}
	logs, closer, err := f.src.openLogs(ctx)
	if err != nil {
		return err
	}
	defer closer.Close()
	type clusterer interface {
		ClusterAuditMonth(ctx context.Context, month, now time.Time) (postgres.Clustered, error)
	}
	for _, l := range logs {
		if _, ok := l.store.(clusterer); !ok {
			return fmt.Errorf("audit log %s is on SQLite: only a PostgreSQL audit log is partitioned by month and clustered", l.name)
		}
	}
	var done []clusteredLog
	var failed error
	for _, l := range logs {
		c, err := l.store.(clusterer).ClusterAuditMonth(ctx, month, now)
		if err != nil {
			// The logs clustered before it are still reported.
			failed = fmt.Errorf("audit log %s: %w", l.name, err)
			break
		}
		done = append(done, clusteredLog{Log: l.name, Clustered: c})
	}
	if len(done) > 0 || failed == nil {
		if err := printClustered(out, f.format, done); err != nil {
			return err
		}
	}
	return failed
}

func printClustered(out io.Writer, format string, done []clusteredLog) error {
	if format == "json" {
		return writeJSON(out, done)
	}
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "LOG\tPARTITION\tEVENTS\tMIB\tTOOK")
	for _, c := range done {
		fmt.Fprintf(w, "%s\t%s\t%d\t%.1f\t%s\n", c.Log, c.Partition, c.Events, float64(c.Bytes)/(1<<20), c.Took.Round(time.Millisecond))
	}
	return w.Flush()
}
