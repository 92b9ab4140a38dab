package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/sekisho/sekisho"
	"github.com/sekisho/sekisho/client"
	"github.com/sekisho/sekisho/importer"
	"github.com/sekisho/sekisho/regions"
	"github.com/sekisho/sekisho/vault"
)

type importFlags struct {
	config                     string
	regions                    map[string]string
	data, store, masterKeyFile string
	server, profile            string
	org, format                string
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

A row may carry an idempotency key ("key" in NDJSON, a key column in CSV): the
record's id is derived from it, and a row whose record is already stored is
not written again. --idempotent keys every other row by its bytes, so that an
import run again after an interruption duplicates nothing. When a batch spans
regions with a store each and one region's write fails after another's
committed, the error says which regions committed how many records; run the
same import again with --idempotent (or keyed rows) to finish it.`,
		Example: `  sekisho import --data ./sekisho-data users users.ndjson
  sekisho import --config sekisho.yaml --data ./sekisho-data --idempotent users users.ndjson
  sekisho import --server http://127.0.0.1:8700 --profile ./admin-profile partners partners.csv`,
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
	fl.StringVar(&f.format, "format", "", "ndjson or csv (default: from the file name)")
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
	// An import is a batch job that allocates much and briefly: trade memory
	// for less time in the garbage collector.
	debug.SetGCPercent(400)
	if f.batch < 1 || f.batch > sekisho.MaxBatch*10 {
		return fmt.Errorf("--batch must be between 1 and %d", sekisho.MaxBatch*10)
	}
	format := importer.Format(f.format)
	if format == "" {
		var err error
		if format, err = importer.FormatOf(file); err != nil {
			return err
		}
	} else if format != importer.NDJSON && format != importer.CSV {
		return fmt.Errorf("--format %q: want ndjson or csv", f.format)
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
	var schema *sekisho.Schema
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
		sink = &vaultSink{v: in.vault, collection: collection, caller: vault.Caller{Principal: "cli-import", Org: f.org,
			Device: "local:" + host, Source: "local", Purpose: "import", RequestID: "import-" + time.Now().UTC().Format("20060102T150405Z")}}
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
		hs := &httpSink{collection: collection, c: c}
		if schema, err = hs.schema(ctx); err != nil {
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
	opts := importer.Options{Format: format, Schema: schema, BatchSize: f.batch, MaxRejects: f.maxRejects, KeyLines: f.idempotent,
		OnReject: func(r importer.Rejection) {
			if bar != nil {
				bar.Clear()
			}
			fmt.Fprintln(stderr, r.String())
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
	sum, err := importer.Run(ctx, fh, sink, opts)
	if bar != nil {
		bar.Finish()
	}
	fmt.Fprintln(cmd.OutOrStdout(), sum.String())
	if ex, ok := sink.(interface{ existing() int }); ok && ex.existing() > 0 {
		fmt.Fprintf(cmd.OutOrStdout(), "%d of them were already stored (same key) and were not written again\n", ex.existing())
	}
	if err != nil {
		return err
	}
	if sum.Rejected > 0 {
		return &exitError{code: exitPartial, err: fmt.Errorf("%d rows were rejected (see above); the others were imported", sum.Rejected)}
	}
	return nil
}

// vaultSink writes batches straight into a vault, as a two-stage pipeline:
// batch k is validated and sealed on all cores while batch k-1 commits.
type vaultSink struct {
	v          *vault.Vault
	collection string
	caller     vault.Caller

	inflight chan error // result of the commit in flight, if any
	pending  int        // rows of the batch in flight
	batch    *vault.PreparedBatch
	skipped  int // rows whose keyed record was already stored
}

func (s *vaultSink) existing() int { return s.skipped }

func (s *vaultSink) Write(ctx context.Context, items []importer.Item) ([]error, error) {
	inputs := make([]*sekisho.RecordInput, len(items))
	for i, it := range items {
		inputs[i] = it.Input
	}
	p, err := s.v.PrepareBatch(ctx, s.caller, s.collection, inputs)
	if err != nil {
		return nil, err
	}
	if err := s.Flush(ctx); err != nil {
		return nil, err
	}
	errs := make([]error, len(p.Items))
	for i, r := range p.Items {
		errs[i] = r.Err
		if r.Err == nil {
			s.pending++
		}
	}
	s.inflight = make(chan error, 1)
	s.batch = p
	go func(done chan<- error) { done <- s.v.CommitBatch(ctx, p) }(s.inflight)
	return errs, nil
}

// Flush waits for the commit in flight.
func (s *vaultSink) Flush(ctx context.Context) error {
	if s.inflight == nil {
		return nil
	}
	err := <-s.inflight
	s.inflight = nil
	n := s.pending
	s.pending = 0
	for _, it := range s.batch.Items {
		if it.Existing {
			s.skipped++
		}
	}
	s.batch = nil
	var pe *regions.PartialWriteError
	if errors.As(err, &pe) {
		// Some regions committed: only the others' rows are lost.
		lost := 0
		for _, ids := range pe.Failed {
			lost += len(ids)
		}
		return &importer.LostError{Rows: lost, Err: err}
	}
	if err != nil {
		return &importer.LostError{Rows: n, Err: err}
	}
	return nil
}

// httpSink writes through a server's API with the profile's device-bound
// credential, several requests at a time.
type httpSink struct {
	collection string
	c          *client.Client
	skipped    int // keyed rows whose record was already stored (409)
}

func (s *httpSink) existing() int { return s.skipped }

func (s *httpSink) do(ctx context.Context, method, path string, body []byte) (*http.Response, []byte, error) {
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	h.Set("Sekisho-Purpose", "import")
	resp, err := s.c.Do(ctx, method, path, body, h)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp, b, err
}

func (s *httpSink) schema(ctx context.Context) (*sekisho.Schema, error) {
	resp, b, err := s.do(ctx, "GET", "/v1/collections/"+s.collection, nil)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("get schema of %s: %s", s.collection, problemText(resp, b))
	}
	var sc sekisho.Schema
	if err := json.Unmarshal(b, &sc); err != nil {
		return nil, fmt.Errorf("get schema: %w", err)
	}
	return &sc, nil
}

func problemText(resp *http.Response, b []byte) string {
	var p struct{ Detail, Type string }
	if json.Unmarshal(b, &p) == nil && p.Detail != "" {
		return fmt.Sprintf("%s: %s", resp.Status, p.Detail)
	}
	return resp.Status
}

func (s *httpSink) Write(ctx context.Context, items []importer.Item) ([]error, error) {
	errs := make([]error, len(items))
	var fatal error
	var mu sync.Mutex
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	for i, it := range items {
		body, err := json.Marshal(it.Input)
		if err != nil {
			errs[i] = err
			continue
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			resp, b, err := s.do(ctx, "POST", "/v1/collections/"+s.collection+"/records", body)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err != nil:
				fatal = err
			case resp.StatusCode == http.StatusCreated:
			case resp.StatusCode == http.StatusConflict && it.Input.Key != "":
				s.skipped++ // the keyed record is already stored
			case resp.StatusCode == http.StatusBadRequest || resp.StatusCode == http.StatusForbidden:
				errs[i] = errors.New(problemText(resp, b))
			default:
				fatal = errors.New(problemText(resp, b))
			}
		}()
	}
	wg.Wait()
	return errs, fatal
}
