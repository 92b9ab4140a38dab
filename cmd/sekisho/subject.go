package main

import (
	"fmt"
	"net/url"
	"os"

	"github.com/spf13/cobra"
)

func newSubjectCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "subject",
		Short: "Answer a data subject's requests (access: what is held, who accessed it)",
	}
	cmd.AddCommand(newSubjectReportCmd())
	return cmd
}

func newSubjectReportCmd() *cobra.Command {
	var src incidentSource
	var format, lang, out string
	cmd := &cobra.Command{
		Use:   "report COLLECTION ID [--format md|json|pdf] [--lang ja|en]",
		Short: "The subject access report of a record (APPI art. 33, GDPR art. 15)",
		Long: `The subject access report of one record: its data (opened for the officer
who asks, an admin of the record's org or an auditor, and audited under
purpose subject-access) and every access to it from the audit log (when,
which org, which kind of principal, purpose, fields, allowed or refused),
each with its event index and an RFC 6962 inclusion proof at a checkpoint
signed for the report. Through a running server (the profile's credential).`,
		Example: `  sekisho subject report users 3kq7... --format pdf --lang ja --out access-ja.pdf
  sekisho subject report users 3kq7... --format json`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if lang != "" && lang != "ja" && lang != "en" {
				return usageErrorf("--lang %q: want ja or en", lang)
			}
			if format == "pdf" && out == "" {
				return usageErrorf("--format pdf writes a binary file: give --out FILE")
			}
			q := url.Values{"format": {format}}
			if lang != "" {
				q.Set("lang", lang)
			}
			b, err := src.get(cmd.Context(), "/v1/collections/"+url.PathEscape(args[0])+"/records/"+url.PathEscape(args[1])+"/access-report?"+q.Encode())
			if err != nil {
				return err
			}
			return writeOut(cmd, out, b)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&src.profile, "profile", "", "profile directory, for the API (default: $SEKISHO_PROFILE or sekisho under the user config directory)")
	addFormatFlag(fl, &format, "md", "md", "json", "pdf")
	fl.StringVar(&lang, "lang", "", "language: en (default) or ja")
	fl.StringVarP(&out, "out", "o", "", "write to FILE instead of standard output")
	return cmd
}

// writeOut writes b to the file out (0600), or to standard output.
func writeOut(cmd *cobra.Command, out string, b []byte) error {
	if out != "" {
		if err := os.WriteFile(out, b, 0o600); err != nil {
			return err
		}
		_, err := fmt.Fprintf(cmd.ErrOrStderr(), "wrote %s (%d bytes)\n", out, len(b))
		return err
	}
	_, err := cmd.OutOrStdout().Write(b)
	return err
}
