package main

import (
	"fmt"
	"net/url"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/sekisho/sekisho/client"
	"github.com/sekisho/sekisho/vault"
)

var holdCols = []string{"record", "collection", "org", "reason", "set_by", "set_at"}

func newRetentionCmd() *cobra.Command {
	a := &adminCall{}
	cmd := &cobra.Command{Use: "retention", Short: "See what the retention sweeper erases (serve --retention-interval runs it)"}
	a.flags(cmd)
	var collection string
	plan := &cobra.Command{Use: "plan --collection C",
		Short: "Dry run: list the records a sweep would erase now, and the held ones; erases nothing, audited",
		Example: `  sekisho retention plan --collection users
  sekisho retention plan --collection users --format json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if collection == "" {
				return fmt.Errorf("name the collection with --collection")
			}
			dir, _, c, err := loadProfile(a.profile)
			if err != nil {
				return err
			}
			var p vault.RetentionPlan
			err = c.JSON(cmd.Context(), "GET", "/v1/collections/"+url.PathEscape(collection)+"/retention/plan", "", nil, &p)
			client.SaveToken(dir, c)
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			if a.format == "json" {
				return writeJSON(w, p)
			}
			tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "STATUS\tCOLLECTION\tID\tORG\tREGION\tEXPIRY\tHOLD")
			for _, e := range p.Expired {
				fmt.Fprintf(tw, "erase\t%s\t%s\t%s\t%s\t%s\t-\n", e.Collection, e.ID, e.Org, e.Region, e.Expiry.Format(time.RFC3339))
			}
			for _, e := range p.Held {
				fmt.Fprintf(tw, "held\t%s\t%s\t%s\t%s\t%s\t%s\n", e.Collection, e.ID, e.Org, e.Region, e.Expiry.Format(time.RFC3339), e.Hold)
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			fmt.Fprintf(w, "%d records scanned at %s: %d would be erased, %d are held\n", p.Scanned, p.At.Format(time.RFC3339), len(p.Expired), len(p.Held))
			return nil
		}}
	plan.Flags().StringVar(&collection, "collection", "", "collection to plan")
	cmd.AddCommand(plan)
	return cmd
}

func newHoldCmd() *cobra.Command {
	a := &adminCall{}
	cmd := &cobra.Command{Use: "hold", Short: "Legal holds: a held record is not erased by retention until the hold is lifted"}
	a.flags(cmd)
	var reason string
	set := &cobra.Command{Use: "set RECORD --reason TEXT", Short: "Put a record on legal hold (an admin of the record's org; audited)",
		Example: `  sekisho hold set 7kq3x2m4vhd6zj5pl2n4rc3yfu --reason "litigation 2026-17"`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if reason == "" {
				return fmt.Errorf("a legal hold needs --reason")
			}
			return a.do(cmd, "PUT", "/v1/holds/"+url.PathEscape(args[0]), map[string]string{"reason": reason}, "", holdCols...)
		}}
	set.Flags().StringVar(&reason, "reason", "", "why the record is held (recorded in the audit log)")
	cmd.AddCommand(set,
		&cobra.Command{Use: "lift RECORD", Short: "Lift a record's legal hold (audited); retention applies again", Args: cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				dir, _, c, err := loadProfile(a.profile)
				if err != nil {
					return err
				}
				err = c.JSON(cmd.Context(), "DELETE", "/v1/holds/"+url.PathEscape(args[0]), "", nil, nil)
				client.SaveToken(dir, c)
				if err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "legal hold on %s lifted\n", args[0])
				return nil
			}},
		&cobra.Command{Use: "list", Short: "List the legal holds on your org's records", Args: cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				return a.do(cmd, "GET", "/v1/holds", nil, "holds", holdCols...)
			}},
	)
	return cmd
}
