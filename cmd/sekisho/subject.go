package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/sekisho/sekisho"
	"github.com/sekisho/sekisho/access"
	"github.com/sekisho/sekisho/httpapi"
	"github.com/sekisho/sekisho/report"
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
signed for the report.

Through a running server (the profile's credential), or offline with --data
DIR from a stopped instance (its lock is taken, its keys open the record):
then the record is opened through the instance's vault as the local
operator of the record's org, under purpose subject-access, and the read is
audited in the record's region's log like the server's; the checkpoint is
signed there too.`,
		Example: `  sekisho subject report users 3kq7... --format pdf --lang ja --out access-ja.pdf
  sekisho subject report users 3kq7... --format json
  sekisho subject report users 3kq7... --data ./sekisho-data --lang ja     # offline, a stopped instance`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if lang != "" && lang != "ja" && lang != "en" {
				return usageErrorf("--lang %q: want ja or en", lang)
			}
			if format == "pdf" && out == "" {
				return usageErrorf("--format pdf writes a binary file: give --out FILE")
			}
			b, err := src.twin().subjectReport(cmd.Context(), args[0], args[1], format, lang)
			if err != nil {
				return err
			}
			return writeOut(cmd, out, b)
		},
	}
	src.flags(cmd)
	fl := cmd.Flags()
	addFormatFlag(fl, &format, "md", "md", "json", "pdf")
	fl.StringVar(&lang, "lang", "", "language: en (default) or ja")
	fl.StringVarP(&out, "out", "o", "", "write to FILE instead of standard output")
	return cmd
}

// subjectReportOffline makes the subject access report from a stopped
// instance, as GET .../access-report does on a server: the record opened
// through the vault under purpose subject-access (authorised and audited),
// a checkpoint of the record's region's log, every event naming the record
// with its inclusion proof.
func subjectReportOffline(ctx context.Context, src *incidentSource, collection, id, format, lang string) ([]byte, error) {
	if src.data == "" {
		return nil, usageErrorf("offline, a subject report needs --data DIR (the instance's keys open the record)")
	}
	if err := existingDataDir(src.data); err != nil {
		return nil, err
	}
	inst, err := openInstance(ctx, instanceOptions{DataDir: src.data, Store: src.store, Stderr: src.cmd.ErrOrStderr()})
	if err != nil {
		return nil, err
	}
	defer inst.Close()
	// The record's org, from the sealed record (no value is opened here):
	// the local operator acts as an admin of that org.
	sealed, err := inst.store.GetRecords(ctx, collection, []string{id})
	if err != nil {
		return nil, err
	}
	org := ""
	if len(sealed) == 1 {
		org = sealed[0].Org
	}
	cfg := report.Config{Lang: lang, Now: time.Now()}
	if cfg.Controller, err = configController(src.config); err != nil {
		return nil, err
	}
	if cfg.Controller, err = report.ControllerOf(ctx, inst.store, org, cfg.Controller); err != nil {
		return nil, err
	}
	host, _ := os.Hostname()
	c := sekisho.Caller{Principal: "cli-subject-access", Org: org, Device: "local:" + host, Source: "local", Roles: []string{"admin"},
		Purpose: httpapi.PurposeSubjectAccess, RequestID: "subject-access-" + time.Now().UTC().Format("20060102T150405.000000Z")}
	rec, err := inst.vault.Get(ctx, c, collection, id, nil)
	if err != nil {
		return nil, err
	}
	l := inst.logs.For(rec.Region)
	cp, err := l.Checkpoint(ctx)
	if err != nil {
		return nil, err
	}
	acc, err := report.Accesses(ctx, access.NewDirectory(inst.store), l.Store(), collection, id, cp.Size, cp)
	if err != nil {
		return nil, err
	}
	rep, err := report.SubjectAccess(rec, acc, cp, cfg)
	if err != nil {
		return nil, err
	}
	b, _, err := report.Render(rep, format)
	return b, err
}

// existingDataDir refuses a data directory that does not exist: a verb
// that reads an instance must not create an empty one (openInstance would).
func existingDataDir(dir string) error {
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		return usageErrorf("data directory %s does not exist", dir)
	}
	return nil
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
