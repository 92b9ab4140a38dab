package main

import (
	"fmt"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/sekisho/sekisho/incident"
	"github.com/sekisho/sekisho/report"
)

func newReportCmd() *cobra.Command {
	var src incidentSource
	var id, format, out, controller, contact string
	cmd := &cobra.Command{
		Use:   "report appi|pdpa|pdp-id|pdpa-tw|gdpr|progress [--incident ID] [--format md|json|pdf]",
		Short: "Generate a regulator report of an incident, or the periodic progress report",
		Long: `Generate a report from an incident's scope (computed from the audit log) and the
store's configuration:

  appi      Japan, APPI art. 26: report to the Personal Information Protection
            Commission (preliminary within about 3-5 days, final within 30 days,
            60 where unauthorized access was the cause)
  pdpa      Thailand, PDPA s. 37(4): notice to the PDPC Office within 72 hours
  pdp-id    Indonesia, PDP Law art. 46: notice to persons and authority, 3 x 24 hours
  pdpa-tw   Taiwan, PDPA art. 12: notice to the persons
  gdpr      GDPR art. 33 notification (reference form)
  progress  the periodic progress report: controls in place and their coverage

The report fills in what the audit log and the store know and marks, as
"TO BE COMPLETED BY A PERSON", what they cannot (secondary damage, the
notification of persons, the public announcement, ...).

Through a running server with the profile's credential, or offline with
--data DIR (read-only).`,
		Example: `  sekisho report appi --incident inc-0123456789abcdef
  sekisho report gdpr --incident inc-0123456789abcdef --format pdf --out gdpr.pdf
  sekisho report progress --data ./sekisho-data --format json`,
		Args:      cobra.ExactArgs(1),
		ValidArgs: report.Kinds,
		RunE: func(cmd *cobra.Command, args []string) error {
			kind := args[0]
			if !slices.Contains(report.Kinds, kind) {
				return usageErrorf("report %q: want one of %s", kind, strings.Join(report.Kinds, ", "))
			}
			if kind != report.KindProgress && id == "" {
				return usageErrorf("report %s needs --incident ID (sekisho incident list shows them)", kind)
			}
			if format == "pdf" && out == "" {
				return usageErrorf("--format pdf writes a binary file: give --out FILE")
			}
			ctx := cmd.Context()
			var b []byte
			if src.offline() {
				st, err := src.openReadOnly(ctx)
				if err != nil {
					return err
				}
				defer st.Close()
				cfg := report.Config{Controller: controller, Contact: contact, Now: time.Now()}
				var r *report.Report
				if kind == report.KindProgress {
					r, err = report.Progress(ctx, st, cfg)
				} else {
					in, gerr := incident.Get(ctx, st, id)
					if gerr != nil {
						return gerr
					}
					sc, serr := incident.Compute(ctx, st, in)
					if serr != nil {
						return serr
					}
					r, err = report.Breach(kind, in, sc, cfg)
				}
				if err != nil {
					return err
				}
				if b, _, err = report.Render(r, format); err != nil {
					return err
				}
			} else {
				path := "/v1/reports/progress"
				if kind != report.KindProgress {
					path = "/v1/incidents/" + url.PathEscape(id) + "/report/" + kind
				}
				var err error
				if b, err = src.get(ctx, path+"?format="+format); err != nil {
					return err
				}
			}
			if out != "" {
				if err := os.WriteFile(out, b, 0o600); err != nil {
					return err
				}
				_, err := fmt.Fprintf(cmd.ErrOrStderr(), "wrote %s (%d bytes)\n", out, len(b))
				return err
			}
			_, err := cmd.OutOrStdout().Write(b)
			return err
		},
	}
	src.flags(cmd)
	cmd.Flags().StringVar(&id, "incident", "", "the incident's id (every kind but progress)")
	addFormatFlag(cmd.Flags(), &format, "md", report.Formats...)
	cmd.Flags().StringVarP(&out, "out", "o", "", "write to FILE instead of standard output")
	cmd.Flags().StringVar(&controller, "controller", "", "offline: the business operator's name, shown in the report")
	cmd.Flags().StringVar(&contact, "contact", "", "offline: the contact point (data protection officer), shown in the report")
	return cmd
}
