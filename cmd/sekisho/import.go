package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime/debug"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/sekisho/sekisho"
	"github.com/sekisho/sekisho/client"
	"github.com/sekisho/sekisho/importer"
)

type importFlags struct {
	config                     string
	regions                    map[string]string
	data, store, masterKeyFile string
	server, profile            string
	org, inputFormat, format   string
	batch, maxRejects          int
	idempotent                 bool
	keys                       keyFlags
}

func newImportCmd() *cobra.Command {
	var f importFlags
	cmd := &cobra.Command{
		Use:   "import COLLECTION FILE",
		Short: "Import records from NDJSON or CSV",
		Long: `Import records from an NDJSON file (each line shaped like the create request body,
{"region":"jp","fields":{...}}) or a CSV file (a header row of field names plus region).

With --data, writes into a data directory directly (refused while a server holds it);
with --server, goes through a running server's API. Every import is recorded in the
audit log. A bad row is reported with its line number and the rest are imported.
The summary (imported, rejected, already stored, time, rate) is a line of text, or
with --format json one JSON document on stdout that also lists every rejected row;
the input's own format is --input-format (default: from the file name).

A row may carry an idempotency key ("key" in NDJSON, a key column in CSV): the
record's id is derived from it, and a row whose record is already stored is
not written again. --idempotent keys every other row by its bytes, so that an
import run again after an interruption duplicates nothing. When a batch spans
regions with a store each and one region's write fails after another's
committed, the error says which regions committed how many records; run the
same import again with --idempotent (or keyed rows) to finish it.`,
		Example: `  sekisho import --data ./sekisho-data users users.ndjson
  sekisho import --config sekisho.yaml --data ./sekisho-data --idempotent users users.ndjson
  sekisho import --server http://127.0.0.1:8700 --profile ./admin-profile partners partners.csv
  sekisho import --data ./sekisho-data --input-format csv --format json users export.txt`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			var err error
			if f.regions, err = fromConfigFile(cmd, f.config); err != nil {
				return err
			}
			if err := f.keys.fromConfig(f.config); err != nil {
				return err
			}
			return runImport(cmd.Context(), cmd, f, args[0], args[1])
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.data, "data", "", "data directory to write into directly")
	fl.StringVar(&f.config, "config", "", "the server's configuration file (data directory, store and regions), with --data")
	fl.StringVar(&f.store, "store", "", "PostgreSQL URL, with --data (the keyring stays in the data directory)")
	fl.StringVar(&f.masterKeyFile, "master-key-file", "", "file holding the master key, with --data")
	fl.StringVar(&f.server, "server", "", "URL of a running server to import through")
	fl.StringVar(&f.profile, "profile", "", "profile directory of sekisho login (device key and credentials), with --server")
	fl.StringVar(&f.org, "org", "operator", "owning organisation of the imported records, with --data")
	fl.StringVar(&f.inputFormat, "input-format", "", "format of FILE: ndjson or csv (default: from the file name)")
	// --format is the output's, as on every verb; the input's is
	// --input-format, and a --format csv or ndjson says so.
	f.format = "table"
	fl.Var(importFormatFlag{formatFlag{value: &f.format, allowed: []string{"table", "json"}}}, "format", "output: table, json")
	fl.IntVar(&f.batch, "batch", 5000, "records per batch (one transaction and one audit event each)")
	fl.IntVar(&f.maxRejects, "max-rejects", 0, "stop after this many bad rows (0: never)")
	fl.BoolVar(&f.idempotent, "idempotent", false, "give every row without a key of its own the key of its bytes, so that running the same file again (after an interruption) writes no record twice")
	f.keys.flags(cmd)
	return cmd
}

func runImport(ctx context.Context, cmd *cobra.Command, f importFlags, collection, file string) error {
	if (f.data == "") == (f.server == "") {
		return errors.New("give exactly one of --data DIR or --server URL")
	}
	// An import is a batch job that allocates much and briefly: trade some
	// memory for less time in the garbage collector, not more (a heap five
	// times the live data, GOGC 400, cost more in first touches of fresh
	// pages than it saved in collections). GOGC, when set, decides.
	setGCPercent(150)
	if f.batch < 1 || f.batch > sekisho.MaxBatch*10 {
		return fmt.Errorf("--batch must be between 1 and %d", sekisho.MaxBatch*10)
	}
	format, err := importer.ResolveFormat(f.inputFormat, file)
	if err != nil {
		return usageErrorf("%v", err)
	}
	fh, err := os.Open(file)
	if err != nil {
		return fmt.Errorf("open %s: %w", file, err)
	}
	defer fh.Close()
	st, err := fh.Stat()
	if err != nil {
		return err
	}

	var sink importer.Sink
	var resume importer.Resumer // the bulk path's sink: it marks its batches
	var finish func(context.Context) error
	var schema *sekisho.Schema
	job := ""
	if f.data != "" {
		in, err := openInstance(ctx, instanceOptions{DataDir: f.data, Store: f.store, MasterKeyFile: f.masterKeyFile, Regions: f.regions, Stderr: cmd.ErrOrStderr(),
			Keys: f.keys.keysConfig, RegionKeys: f.keys.regions})
		if err != nil {
			return err
		}
		defer in.Close()
		if schema, err = in.vault.Schema(ctx, collection); err != nil {
			return err
		}
		host, _ := os.Hostname()
		vs := importer.NewVaultSink(in.vault, sekisho.Caller{Principal: "cli-import", Org: f.org,
			Device: "local:" + host, Source: "local", Purpose: "import", RequestID: "import-" + time.Now().UTC().Format("20060102T150405Z")}, collection)
		// The bulk path: this process holds the data directory. Batches are
		// marked as they are stored, so running the same import again after
		// an interruption continues where it stopped.
		if vs.Bulk() {
			// After the rows, the store builds what the load deferred (its
			// sorted index entries): part of the import, timed with it, and
			// its failure is the import's. On an early return the deferred
			// Close does it (a no-op once finish ran).
			finish = vs.Close
			defer func() {
				if cerr := vs.Close(context.WithoutCancel(ctx)); cerr != nil {
					fmt.Fprintf(cmd.ErrOrStderr(), "finishing the bulk load: %v\n", cerr)
				}
			}()
			head := make([]byte, 1<<20)
			n, err := io.ReadFull(fh, head)
			if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
				return fmt.Errorf("read %s: %w", file, err)
			}
			if _, err := fh.Seek(0, io.SeekStart); err != nil {
				return fmt.Errorf("read %s: %w", file, err)
			}
			job = importer.JobID(head[:n], st.Size(), f.batch, collection, f.org, string(format), fmt.Sprint(f.idempotent))
			resume = vs
		}
		sink = vs
	} else {
		dir, err := profileDir(f.profile)
		if err != nil {
			return err
		}
		_, c, err := client.LoadProfile(dir)
		if err != nil {
			return err
		}
		c.Server = strings.TrimRight(f.server, "/")
		c.HTTP = &http.Client{Timeout: 60 * time.Second}
		defer client.SaveToken(dir, c)
		hs := importer.NewHTTPSink(c, collection)
		if schema, err = hs.Schema(ctx); err != nil {
			return err
		}
		sink = hs
	}

	stderr := cmd.ErrOrStderr()
	var bar *progressbar.ProgressBar
	isTTY := false
	if fd, ok := stderr.(*os.File); ok && term.IsTerminal(int(fd.Fd())) {
		isTTY = true
		bar = progressbar.NewOptions64(st.Size(), progressbar.OptionSetWriter(stderr), progressbar.OptionShowBytes(true),
			progressbar.OptionSetDescription("importing "+collection), progressbar.OptionThrottle(100*time.Millisecond),
			progressbar.OptionShowCount(), progressbar.OptionClearOnFinish())
	}
	lastLine := time.Now()
	out := importSummary{Collection: collection, File: file, InputFormat: string(format), Rejections: []importRejection{}}
	opts := importer.Options{Format: format, Schema: schema, BatchSize: f.batch, MaxRejects: f.maxRejects, KeyLines: f.idempotent, Job: job,
		OnReject: func(r importer.Rejection) {
			if bar != nil {
				bar.Clear()
			}
			fmt.Fprintln(stderr, r.String())
			if f.format == "json" {
				msg := strings.TrimPrefix(r.String(), fmt.Sprintf("line %d: ", r.Line))
				out.Rejections = append(out.Rejections, importRejection{Line: r.Line, Error: msg})
			}
		},
		OnProgress: func(n int64, s importer.Summary) {
			if isTTY {
				bar.Set64(n)
				return
			}
			if time.Since(lastLine) >= 2*time.Second {
				lastLine = time.Now()
				fmt.Fprintf(stderr, "progress: %d%% of %s, %s\n", n*100/max(1, st.Size()), file, s)
			}
		}}
	var sum importer.Summary
	if resume != nil {
		sum, err = importer.Resume(ctx, fh, resume, opts)
	} else {
		sum, err = importer.Run(ctx, fh, sink, opts)
	}
	if finish != nil {
		at := time.Now()
		if ferr := finish(context.WithoutCancel(ctx)); ferr != nil {
			err = errors.Join(err, fmt.Errorf("finishing the bulk load: %w", ferr))
		}
		sum.Elapsed += time.Since(at)
	}
	if bar != nil {
		bar.Finish()
	}
	out.Existing = sink.Existing()
	if f.format == "json" {
		out.Imported, out.Rejected, out.Resumed = sum.Imported, sum.Rejected, sum.Resumed
		out.ElapsedSeconds, out.RecordsPerSecond = sum.Elapsed.Seconds(), sum.Rate()
		out.Complete = err == nil
		if werr := writeJSON(cmd.OutOrStdout(), out); werr != nil && err == nil {
			err = werr
		}
	} else {
		fmt.Fprintln(cmd.OutOrStdout(), sum.String())
		if out.Existing > 0 {
			fmt.Fprintf(cmd.OutOrStdout(), "%d of them were already stored (same key) and were not written again\n", out.Existing)
		}
	}
	if err != nil {
		return err
	}
	if sum.Rejected > 0 {
		return &exitError{code: exitPartial, err: fmt.Errorf("%d rows were rejected (see above); the others were imported", sum.Rejected)}
	}
	return nil
}

// importFormatFlag is import's --format (table or json), which points a
// --format ndjson or csv at --input-format.
type importFormatFlag struct{ formatFlag }

func (f importFormatFlag) Set(s string) error {
	if s == string(importer.NDJSON) || s == string(importer.CSV) {
		return fmt.Errorf("--format is the output's (table or json); the input's is --input-format %s", s)
	}
	return f.formatFlag.Set(s)
}

// importSummary is what import --format json prints on stdout when it is
// done (the rejected rows are on stderr as well, one a line, as in table
// format). Complete is false when the import stopped early (--max-rejects
// reached, or the store or server failed): then the exit status says why.
type importSummary struct {
	Collection       string            `json:"collection"`
	File             string            `json:"file"`
	InputFormat      string            `json:"input_format"`
	Imported         int               `json:"imported"`
	Rejected         int               `json:"rejected"`
	Existing         int               `json:"existing"`
	Resumed          int               `json:"resumed"`
	ElapsedSeconds   float64           `json:"elapsed_seconds"`
	RecordsPerSecond float64           `json:"records_per_second"`
	Complete         bool              `json:"complete"`
	Rejections       []importRejection `json:"rejections"`
}

// importRejection is one bad row: its line number in FILE and why.
type importRejection struct {
	Line  int    `json:"line"`
	Error string `json:"error"`
}

// setGCPercent sets the garbage collector's target percentage to percent
// unless the GOGC environment variable is set, which then decides; it
// returns the percentage it set, or -1 when it left GOGC's.
func setGCPercent(percent int) int {
	if os.Getenv("GOGC") != "" {
		return -1
	}
	debug.SetGCPercent(percent)
	return percent
}
