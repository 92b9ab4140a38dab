package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/sekisho/sekisho"
)

type auditTailFlags struct {
	src      auditSource
	lines    int
	follow   bool
	interval time.Duration
	format   string
}

func newAuditTailCmd() *cobra.Command {
	var f auditTailFlags
	cmd := &cobra.Command{
		Use:   "tail",
		Short: "Print the newest audit events; with --follow, every event appended after them",
		Long: `Print the last --lines events of the audit log, oldest first, and with --follow
keep printing the events appended after them (read every --interval) until
interrupted. It only reads, beside a running server. With --config and
--region it follows one region's log (or all).`,
		Example: `  sekisho audit tail --data ./sekisho-data
  sekisho audit tail --data ./sekisho-data --follow --format json
  sekisho audit tail --config sekisho.yaml --region jp --follow`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runAuditTail(cmd.Context(), cmd.OutOrStdout(), f) },
	}
	f.src.flags(cmd)
	fl := cmd.Flags()
	fl.StringVar(&f.src.region, "region", "", "the log to follow: a region with a store of its own, default, or all (default: the default log)")
	fl.IntVarP(&f.lines, "lines", "n", 10, "how many of the newest events to print first")
	fl.BoolVarP(&f.follow, "follow", "f", false, "keep printing events as they are appended")
	fl.DurationVar(&f.interval, "interval", time.Second, "with --follow, how often to read the log")
	addFormatFlag(fl, &f.format, "table", "table", "json")
	return cmd
}

// tailLine is one event as audit tail --format json prints it.
type tailLine struct {
	Log   string        `json:"log"`
	Index uint64        `json:"index"`
	Event sekisho.Event `json:"event"`
}

func runAuditTail(ctx context.Context, out io.Writer, f auditTailFlags) error {
	if f.format != "table" && f.format != "json" {
		return fmt.Errorf("--format %q: want table or json", f.format)
	}
	if f.interval <= 0 {
		f.interval = time.Second
	}
	logs, closer, err := f.src.openLogs(ctx)
	if err != nil {
		return err
	}
	defer closer.Close()
	next := make([]uint64, len(logs))
	for i, l := range logs {
		size, err := l.store.AuditSize(ctx)
		if err != nil {
			return fmt.Errorf("audit log %s: %w", l.name, err)
		}
		next[i] = size - min(size, uint64(max(f.lines, 0)))
	}
	enc := json.NewEncoder(out)
	for {
		for i, l := range logs {
			for {
				entries, err := l.store.AuditLeaves(ctx, next[i], 1000)
				if err != nil {
					if ctx.Err() != nil {
						return nil
					}
					return fmt.Errorf("audit log %s: %w", l.name, err)
				}
				for _, e := range entries {
					ev, err := sekisho.UnmarshalEvent(e.Leaf)
					if err != nil {
						return fmt.Errorf("audit log %s: event %d: %w", l.name, e.Index, err)
					}
					if f.format == "json" {
						err = enc.Encode(tailLine{Log: l.name, Index: e.Index, Event: ev})
					} else {
						_, err = fmt.Fprintf(out, "%s  %-8s #%-7d %-16s %-10s %s/%s  %s  %s\n", ev.Time.UTC().Format(time.RFC3339),
							l.name, e.Index, ev.Principal, ev.Action, ev.Collection, strings.Join(ev.Records, ","), ev.Decision, ev.Policy)
					}
					if err != nil {
						return err
					}
					next[i] = e.Index + 1
				}
				if len(entries) < 1000 {
					break
				}
			}
		}
		if !f.follow {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(f.interval):
		}
	}
}
