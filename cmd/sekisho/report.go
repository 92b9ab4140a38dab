package main

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/sekisho/sekisho/report"
)

func newReportCmd() *cobra.Command {
	var src incidentSource
	var id, format, out, controller, contact, lang, org, since, until string
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
  progress  the periodic progress report: controls in place and their coverage;
            with --since T, the trend of [T, now) against the period before it
  provision the record of provision to third parties (APPI arts. 29/30) of
            --org from --since to --until, from the cross-org events of the
            log: date, recipient org, purpose, persons (count and ids), items;
            --format md, csv, json or pdf

The report fills in what the audit log and the store know and marks, as
"TO BE COMPLETED BY A PERSON", what they cannot (secondary damage, the
notification of persons, the public announcement, ...).

Through a running server with the profile's credential, or offline with
--data DIR (read-only).`,
		Example: `  sekisho report appi --incident inc-0123456789abcdef
  sekisho report appi --incident inc-0123456789abcdef --format pdf --out appi-ja.pdf     # in Japanese, the PPC form's items
  sekisho report appi --incident inc-0123456789abcdef --lang en
  sekisho report pdpa --incident inc-0123456789abcdef --format pdf --out pdpa-th.pdf     # in Thai
  sekisho report gdpr --incident inc-0123456789abcdef --format pdf --out gdpr.pdf
  sekisho report progress --data ./sekisho-data --format json
  sekisho report provision --org operator --since 2023-09-01T00:00:00Z --until 2023-10-01T00:00:00Z --format csv`,
		Args:      cobra.ExactArgs(1),
		ValidArgs: append(slices.Clone(report.Kinds), report.KindProvide),
		RunE: func(cmd *cobra.Command, args []string) error {
			kind := args[0]
			if kind == report.KindProvide {
				return provisionCmd(cmd, &src, org, since, until, format, lang, out)
			}
			if !slices.Contains(report.Kinds, kind) {
				return usageErrorf("report %q: want one of %s", kind, strings.Join(report.Kinds, ", "))
			}
			if format == "csv" {
				return usageErrorf("--format csv is for report provision; the others are md, json or pdf")
			}
			if kind != report.KindProgress && id == "" {
				return usageErrorf("report %s needs --incident ID (sekisho incident list shows them)", kind)
			}
			if _, err := report.Lang(kind, lang); err != nil {
				return fmt.Errorf("--lang: %w", err)
			}
			if format == "pdf" && out == "" {
				return usageErrorf("--format pdf writes a binary file: give --out FILE")
			}
			b, err := src.twin().report(cmd.Context(), kind, id, reportOpts{format: format, lang: lang, since: since, controller: controller, contact: contact})
			if err != nil {
				return err
			}
			if out != "" {
				if err := os.WriteFile(out, b, 0o600); err != nil {
					return err
				}
				_, err := fmt.Fprintf(cmd.ErrOrStderr(), "wrote %s (%d bytes)\n", out, len(b))
				return err
			}
			_, err = cmd.OutOrStdout().Write(b)
			return err
		},
	}
	src.flags(cmd)
	cmd.Flags().StringVar(&id, "incident", "", "the incident's id (every kind but progress)")
	addFormatFlag(cmd.Flags(), &format, "md", append(slices.Clone(report.Formats), "csv")...)
	cmd.Flags().StringVarP(&out, "out", "o", "", "write to FILE instead of standard output")
	cmd.Flags().StringVar(&org, "org", "", "provision: the providing org (default: the caller's)")
	cmd.Flags().StringVar(&since, "since", "", "provision: start of the period; progress: start of the period compared with the one before it (RFC 3339)")
	cmd.Flags().StringVar(&until, "until", "", "provision: end of the period, RFC 3339 (default: now)")
	cmd.Flags().StringVar(&lang, "lang", "", "language: appi ja (default) or en; pdpa th (default) or en; gdpr, pdp-id, pdpa-tw, progress en (default), ja or th; provision en (default) or ja")
	cmd.Flags().StringVar(&controller, "controller", "", "offline: the business operator's name in English (wins over --config's)")
	cmd.Flags().StringVar(&contact, "contact", "", "offline: the contact point (data protection officer) (wins over --config's)")
	return cmd
}

// provisionCmd is 'report provision': through the API, or offline (--data).
func provisionCmd(cmd *cobra.Command, src *incidentSource, org, since, until, format, lang, out string) error {
	if !slices.Contains([]string{"md", "csv", "json", "pdf"}, format) {
		return usageErrorf("--format %q: want md, csv, json or pdf", format)
	}
	if _, err := report.Lang(report.KindProvide, lang); err != nil {
		return fmt.Errorf("--lang: %w", err)
	}
	if format == "pdf" && out == "" {
		return fmt.Errorf("--format pdf writes a binary file: give --out FILE")
	}
	s, err := parseTimeFlag("since", since)
	if err != nil {
		return err
	}
	if s.IsZero() {
		return usageErrorf("report provision needs --since T (RFC 3339)")
	}
	u, err := parseTimeFlag("until", until)
	if err != nil {
		return err
	}
	if u.IsZero() {
		u = time.Now().UTC().Truncate(time.Second).Add(time.Second)
	}
	b, err := src.twin().provision(cmd.Context(), org, s, u, format, lang)
	if err != nil {
		return err
	}
	return writeOut(cmd, out, b)
}
