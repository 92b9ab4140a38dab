// Command bench measures sekisho end to end: it builds the binary, imports
// N generated records into a fresh data directory with `sekisho import`,
// starts `sekisho serve` on loopback and drives it from this process (a
// separate process from the server) with closed-loop and open-loop load.
// In the same run it measures a floor, a bare net/http handler in its own
// process serving a same-sized JSON body through the same client, and
// reports the hot path as a ratio of it: the machine is shared and noisy,
// so ratios are what compare across commits.
//
//	go run ./bench -records 1000000 -duration 10s -out /tmp/bench
//	go run ./bench -records 200000 -store postgres://sekisho@127.0.0.1:5432/sekisho -out /tmp/bench-pg
//
// See bench/README.md for the workloads, the targets and how to profile.
package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"math"
	mrand "math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/sekisho/sekisho"
	"github.com/sekisho/sekisho/gen"
	"github.com/sekisho/sekisho/postgres"
	"github.com/sekisho/sekisho/sqlite"
)

type options struct {
	records     int
	duration    time.Duration
	rounds      int
	out         string
	bin         string
	store       string
	conc        int
	only        string
	profile     bool
	keep        bool
	snapshot    string
	seed        uint64
	maxInflight int
	importBatch int
	principals  int
	soak        time.Duration
	soakRate    float64
	soakEvery   time.Duration
	tls         bool
	export      bool
	keyProvider string
	pkcs11Mod   string
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == floorCommand {
		floorMain(os.Args[2:])
		return
	}
	if len(os.Args) > 1 && os.Args[1] == databunkerCommand {
		if err := databunkerMain(os.Args[2:]); err != nil {
			log.Fatal(err)
		}
		return
	}
	if len(os.Args) > 1 && os.Args[1] == soakVerdictCommand {
		if err := soakVerdictMain(os.Args[2:]); err != nil {
			log.Fatal(err)
		}
		return
	}
	var o options
	flag.IntVar(&o.records, "records", 100_000, "records to load (70% users, 15% partners, 15% employees)")
	flag.DurationVar(&o.duration, "duration", 10*time.Second, "measured time of each workload (plus a warm-up of a fifth of it, at most 2s)")
	flag.IntVar(&o.rounds, "rounds", 1, "run the floor, hot_read and hot_read_mtls this many times in turn, each for -duration, and pool each workload's rounds: a background load that comes and goes then weighs on the floor and the reads alike (each round's ratios in results.json's rounds)")
	flag.StringVar(&o.out, "out", "bench-out", "directory for results.json, results.md, logs and profiles (its data/ and gen/ are replaced)")
	flag.StringVar(&o.bin, "bin", "", "sekisho binary to measure (default: build ./cmd/sekisho of this module)")
	flag.StringVar(&o.store, "store", "", "postgres://... to run against PostgreSQL (a fresh database is created in that cluster and dropped after); default: embedded SQLite")
	flag.IntVar(&o.conc, "concurrency", 16, "closed-loop workers (connections)")
	flag.StringVar(&o.only, "only", "", "comma-separated workloads to run (floor,hot_read,hot_read_half_peak,floor_half_peak,lookup_phone,batch_get_100,create,incident_scope); default all")
	flag.BoolVar(&o.profile, "profile", false, "write CPU profiles of the import and the server (SEKISHO_CPUPROFILE) into -out")
	flag.StringVar(&o.snapshot, "snapshot", "", "directory of a snapshot taken right after the import: the first run of these -records, -seed and store takes it, later runs start from it without importing (their import figures are the snapshot's)")
	flag.BoolVar(&o.keep, "keep", false, "keep the data directory (and the PostgreSQL database) after the run")
	flag.Uint64Var(&o.seed, "seed", 1, "seed of the generated records and of the request mix")
	flag.IntVar(&o.importBatch, "import-batch", 0, "records per batch of `sekisho import` (its --batch; 0: its default)")
	flag.IntVar(&o.principals, "principals", 64, "service principals (one device each) the load is spread over, round robin, to stay inside the guard's per-principal budgets")
	flag.IntVar(&o.maxInflight, "max-inflight", 4096, "open loop: arrivals beyond this many requests in flight are dropped and counted as errors")
	flag.DurationVar(&o.soak, "soak", 0, "soak mode: instead of the workloads, a mixed open-loop load for this long (e.g. 1h), the server sampled every -soak-every; writes soak.json and soak.csv")
	flag.Float64Var(&o.soakRate, "soak-rate", 40, "soak mode: requests a second (80% reads, 10% lookups, 8% creates, 2% admin actions)")
	flag.DurationVar(&o.soakEvery, "soak-every", 30*time.Second, "soak mode: how often RSS, heap, goroutines and open files are sampled")
	flag.BoolVar(&o.tls, "tls", false, "serve over TLS (--tls-cert, --client-ca): the floor is floor_tls, and hot_read_mtls runs services over mTLS with certificate-bound tokens")
	flag.BoolVar(&o.export, "export", false, "export mode: serve streams its audit log to a JSON-lines-over-TLS receiver in this process; hot_read runs with the sink up, down and up again (export.down_up_ratio), then the receiver must catch up with every event")
	flag.StringVar(&o.keyProvider, "key-provider", "local", "where the server's KEKs live: local (the keyring) or pkcs11 (a SoftHSM2 token the bench makes in -out; import and serve run with --key-provider pkcs11): run once with each and compare hot_read / floor")
	flag.StringVar(&o.pkcs11Mod, "pkcs11-module", "/usr/lib/softhsm/libsofthsm2.so", "PKCS#11 module, with -key-provider pkcs11")
	flag.Parse()
	if o.keyProvider != "local" && o.keyProvider != "pkcs11" {
		log.Fatalf("-key-provider %q: want local or pkcs11", o.keyProvider)
	}
	if flag.NArg() > 0 {
		log.Fatalf("unexpected arguments %q", flag.Args())
	}
	if o.records < 300 {
		log.Fatal("-records must be at least 300")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	res, err := runBench(ctx, o)
	if res != nil && o.soak == 0 { // a soak writes soak.json and soak.csv instead
		if werr := writeResults(o.out, res); werr != nil && err == nil {
			err = werr
		}
	}
	if err != nil {
		log.Fatal(err)
	}
}

// Fields read by the hot path, the lookup and the batch get.
var readFields = []string{"display_name", "phone", "email", "birth_date", "country"}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench: "+format+"\n", args...)
}

func runBench(ctx context.Context, o options) (*results, error) {
	if err := os.MkdirAll(o.out, 0o755); err != nil {
		return nil, err
	}
	out, err := filepath.Abs(o.out)
	if err != nil {
		return nil, err
	}
	res := &results{Records: o.records, DurationS: o.duration.Seconds(), Concurrency: o.conc, Machine: describeMachine(),
		Store: "sqlite", Started: time.Now().UTC(), Workloads: map[string]*workloadResult{}, Notes: []string{}}
	root := ""
	if r, err := moduleRoot(); err == nil {
		root = r
		res.Commit = gitCommit(root)
	}
	bin := o.bin
	if bin == "" {
		if root == "" {
			return nil, errors.New("not inside the sekisho module: run from the repository, or give -bin")
		}
		logf("building %s/cmd/sekisho", root)
		if bin, err = buildBinary(root, out); err != nil {
			return nil, err
		}
	} else if bin, err = filepath.Abs(bin); err != nil {
		return nil, err
	}
	if v, err := exec.Command(bin, "version").Output(); err == nil {
		res.Version = strings.TrimSpace(string(v))
	}

	data := filepath.Join(out, "data")
	genDir := filepath.Join(out, "gen")
	for _, d := range []string{data, genDir} {
		if err := os.RemoveAll(d); err != nil {
			return nil, err
		}
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, err
		}
	}
	if !o.keep {
		defer os.RemoveAll(data)
	}
	defer os.RemoveAll(genDir)

	// A random master key in the environment: nothing is written to the
	// user's config directory, and the key dies with the run.
	var mk [32]byte
	rand.Read(mk[:])
	masterKey := base64.StdEncoding.EncodeToString(mk[:])
	var snap *snapshot
	if o.snapshot != "" {
		if o.keyProvider != "local" {
			return nil, errors.New("-snapshot works with -key-provider local only")
		}
		if snap, err = loadSnapshot(o.snapshot, o); err != nil {
			return nil, err
		}
		if snap != nil {
			masterKey = snap.MasterKey
		}
	}
	env := []string{"SEKISHO_MASTER_KEY=" + masterKey}
	storeArgs := []string{}
	var keyArgs []string // import's and serve's
	res.KeyProvider = o.keyProvider
	if o.keyProvider == "pkcs11" {
		// The KEKs in a SoftHSM2 token of the run's own.
		var kenv []string
		var err error
		if keyArgs, kenv, err = softHSMToken(filepath.Join(out, "softhsm"), o.pkcs11Mod); err != nil {
			return nil, err
		}
		env = append(env, kenv...)
		res.KeyProvider = "pkcs11 (SoftHSM2)"
	}
	if o.store != "" {
		res.Store = "postgres"
		dsn, drop, err := freshDatabase(ctx, o.store)
		if err != nil {
			return nil, err
		}
		if !o.keep {
			defer drop()
		}
		storeArgs = []string{"--store", dsn}
		o.store = dsn
	}

	var phones []string
	var userBodies [][]byte
	if snap != nil {
		logf("starting from the snapshot in %s (%d records imported at commit %s)", o.snapshot, snap.Records, snap.Commit)
		if err := restoreSnapshot(ctx, o.snapshot, data, o.store, snap); err != nil {
			return nil, err
		}
		phones, userBodies = snap.Phones, snap.Bodies
		res.Import, res.ImportRPS = snap.Import, snap.Import.RecordsPerS
		res.Projection = project(storeName(o.store), snap.Import, snap.Import.StoreBytes)
		res.Notes = append(res.Notes, fmt.Sprintf("started from the snapshot in %s: the import figures are those of the run that took it (commit %s)", o.snapshot, snap.Commit))
	} else if err := func() error {
		// Generate and import.
		logf("generating %d records", o.records)
		counts := map[string]int{"users": o.records * 70 / 100, "partners": o.records * 15 / 100}
		counts["employees"] = o.records - counts["users"] - counts["partners"]
		var err error
		phones, userBodies, err = generate(genDir, counts, o.seed)
		if err != nil {
			return err
		}
		imp := &importResult{Records: o.records, Batch: o.importBatch}
		var serverCPU func() (float64, bool)
		if o.store != "" {
			serverCPU, _ = pgServerCPU(ctx, o.store)
		}
		for _, c := range []string{"users", "partners", "employees"} {
			logf("importing %d %s", counts[c], c)
			args := append(append([]string{"import", "--data", data}, storeArgs...), keyArgs...)
			if o.importBatch > 0 {
				args = append(args, "--batch", fmt.Sprint(o.importBatch))
			}
			args = append(args, c, filepath.Join(genDir, c+".ndjson"))
			ienv := env
			if o.profile {
				ienv = append(ienv, "SEKISHO_CPUPROFILE="+filepath.Join(out, "import-"+c+".cpu.pprof"))
			}
			server0, serverOK := 0.0, false
			if serverCPU != nil {
				server0, serverOK = serverCPU()
			}
			wall, cpu, rss, err := runTimed(ctx, bin, args, ienv, filepath.Join(out, "import-"+c+".log"))
			if err != nil {
				return err
			}
			server := 0.0
			if serverOK {
				if s1, ok := serverCPU(); ok {
					server = s1 - server0
				}
			}
			logf("imported %d %s in %.2f s (%.0f records/s), %.2f CPU s (server %.2f), peak RSS %.0f MiB", counts[c], c, wall.Seconds(), float64(counts[c])/wall.Seconds(), cpu, server, rss)
			imp.Collections = append(imp.Collections, collectionImport{Collection: c, Records: counts[c], Seconds: wall.Seconds(), CPUSeconds: cpu, PeakRSSMiB: rss, ServerCPUSeconds: server})
			imp.ServerCPUSeconds += server
			imp.Seconds += wall.Seconds()
			imp.CPUSeconds += cpu
			imp.PeakRSSMiB = max(imp.PeakRSSMiB, rss)
			os.Remove(filepath.Join(genDir, c+".ndjson"))
		}
		imp.RecordsPerS = float64(o.records) / imp.Seconds
		imp.CPUsPer1k = imp.CPUSeconds / float64(o.records) * 1000
		imp.ServerCPUsPer1k = imp.ServerCPUSeconds / float64(o.records) * 1000
		if n, err := storeSize(ctx, o.store, data); err == nil {
			imp.StoreBytes = n
		} else {
			res.Notes = append(res.Notes, "store size: "+err.Error())
		}
		res.Import = imp
		res.ImportRPS = imp.RecordsPerS
		res.Projection = project(storeName(o.store), imp, imp.StoreBytes)
		logf("import: %.0f records/s", imp.RecordsPerS)
		if o.snapshot != "" {
			logf("taking a snapshot in %s", o.snapshot)
			return saveSnapshot(ctx, o.snapshot, data, o.store, &snapshot{Records: o.records, Seed: o.seed, Store: snapshotStore(o.store),
				MasterKey: masterKey, Phones: phones, Bodies: userBodies, Import: imp, Commit: res.Commit})
		}
		return nil
	}(); err != nil {
		return res, err
	}

	ids, err := sampleIDs(ctx, o.store, filepath.Join(data, "sekisho.db"), "users", 20_000)
	if err != nil {
		return res, err
	}
	if len(ids) < 100 {
		return res, fmt.Errorf("only %d users in the store after the import", len(ids))
	}

	// Serve.
	addr, err := freeAddr()
	if err != nil {
		return res, err
	}
	base := "http://" + addr
	var pki *benchPKI
	var tlsConf *tls.Config
	if o.tls {
		if pki, err = newBenchPKI(filepath.Join(out, "pki")); err != nil {
			return res, err
		}
		base, tlsConf, res.TLS = "https://"+addr, &tls.Config{RootCAs: pki.ca.Pool()}, true
	}
	senv := env
	if o.profile {
		senv = append(senv, "SEKISHO_CPUPROFILE="+filepath.Join(out, "server.cpu.pprof"))
	}
	if o.soak > 0 {
		// The soak takes heap profiles from the metrics listener.
		senv = append(senv, "SEKISHO_PPROF=1")
	}
	org := "operator"
	serveArgs := append(append([]string{"serve", "--addr", addr, "--data", data, "--org", org, "--log-format", "json"}, storeArgs...), keyArgs...)
	if pki != nil {
		serveArgs = append(serveArgs, "--tls-cert", pki.certFile, "--tls-key", pki.keyFile, "--client-ca", pki.caPEM)
	}
	var recv *sinkReceiver
	if o.export {
		epki, err := newBenchPKI(filepath.Join(out, "export-pki"))
		if err != nil {
			return res, err
		}
		cert, err := tls.LoadX509KeyPair(epki.certFile, epki.keyFile)
		if err != nil {
			return res, err
		}
		recv = &sinkReceiver{cert: cert}
		if err := recv.start(); err != nil {
			return res, err
		}
		defer recv.stop()
		conf, err := exportConfig(out, recv.addr, epki.caPEM)
		if err != nil {
			return res, err
		}
		serveArgs = append(serveArgs, "--config", conf)
	}
	metricsURL := base + "/metrics"
	if help, _ := exec.Command(bin, "serve", "--help").Output(); strings.Contains(string(help), "--metrics-addr") {
		maddr, err := freeAddr()
		if err != nil {
			return res, err
		}
		serveArgs = append(serveArgs, "--metrics-addr", maddr)
		metricsURL = "http://" + maddr + "/metrics"
	}
	srv, err := start(bin, serveArgs, senv, filepath.Join(out, "serve.log"))
	if err != nil {
		return res, err
	}
	serverStopped := false
	defer func() {
		if !serverStopped {
			srv.stop(30 * time.Second)
		}
	}()
	if err := srv.waitReadyWith(newHTTPClient(1, tlsConf), base+"/readyz", 60*time.Second); err != nil {
		return res, err
	}
	tok, err := os.ReadFile(filepath.Join(data, "bootstrap-admin-token"))
	if err != nil {
		return res, err
	}
	conns := max(o.conc, 256)
	if o.soak > 0 {
		// A soak keeps a fixed pool of -concurrency connections: the server's
		// goroutines and descriptors then measure the server, not how many
		// connections the client opened during a slow spell.
		conns = o.conc
	}
	hc := newHTTPClient(conns, tlsConf)
	cred, admin, notes, err := enrol(ctx, hc, base, strings.TrimSpace(string(tok)), org, o.principals)
	if err != nil {
		return res, err
	}
	res.Notes = append(res.Notes, notes...)
	res.Credential = cred.String()
	logf("credential: %s", res.Credential)
	cl := &loader{hc: hc, cred: cred, purpose: benchPurpose}
	var mcl *loader // hot_read_mtls's
	if pki != nil && o.soak == 0 {
		mcred, mhc, err := enrolMTLS(ctx, base, pki, admin, org, min(o.principals, 16), conns)
		if err != nil {
			return res, err
		}
		mcl = &loader{hc: mhc, cred: mcred, purpose: benchPurpose}
		res.Credential += "; hot_read_mtls: " + mcred.String()
	}

	// The workloads.
	fieldsQ := "?fields=" + strings.Join(readFields, ",")
	hot := func(rng *mrand.Rand) request {
		return request{method: "GET", url: base + "/v1/collections/users/records/" + ids[rng.IntN(len(ids))] + fieldsQ, want: 200}
	}
	lookup := func(rng *mrand.Rand) request {
		b, _ := json.Marshal(map[string]any{"field": "phone", "value": phones[rng.IntN(len(phones))], "fields": readFields})
		return request{method: "POST", url: base + "/v1/collections/users/lookup", body: b, want: 200}
	}
	batch := func(rng *mrand.Rand) request {
		pick := make([]string, 100)
		for i := range pick {
			pick[i] = ids[rng.IntN(len(ids))]
		}
		b, _ := json.Marshal(map[string]any{"ids": pick, "fields": readFields})
		return request{method: "POST", url: base + "/v1/collections/users/records:batchGet", body: b, want: 200}
	}
	create := func(rng *mrand.Rand) request {
		return request{method: "POST", url: base + "/v1/collections/users/records", body: userBodies[rng.IntN(len(userBodies))], want: 201}
	}

	if o.soak > 0 {
		ops := soakOps(cl, admin, hot, lookup, create)
		if _, err := runSoak(ctx, o, srv.pid(), metricsURL, ops, out); err != nil {
			return res, err
		}
		res.Notes = append(res.Notes, "soak mode: the series are in soak.json and soak.csv")
		serverStopped = true
		if err := srv.stop(60 * time.Second); err != nil {
			res.Notes = append(res.Notes, "server stop: "+err.Error())
		}
		res.Finished = time.Now().UTC()
		return res, nil
	}

	// The floor serves the body of a real hot-path answer.
	body, err := fetchBody(ctx, cl, hot(mrand.New(mrand.NewPCG(o.seed, 7))))
	if err != nil {
		return res, fmt.Errorf("hot path read: %w", err)
	}
	res.HotBodyBytes = len(body)
	floorAddr, err := freeAddr()
	if err != nil {
		return res, err
	}
	bodyFile := filepath.Join(out, "floor-body.json")
	if err := os.WriteFile(bodyFile, body, 0o600); err != nil {
		return res, err
	}
	self, err := os.Executable()
	if err != nil {
		return res, err
	}
	floorArgs, floorScheme, floorName := []string{floorCommand, bodyFile, floorAddr}, "http://", "floor"
	if pki != nil {
		floorArgs, floorScheme, floorName = append(floorArgs, pki.certFile, pki.keyFile), "https://", "floor_tls"
	}
	floor, err := start(self, floorArgs, nil, filepath.Join(out, "floor.log"))
	if err != nil {
		return res, err
	}
	defer floor.stop(5 * time.Second)
	if err := floor.waitReadyWith(newHTTPClient(1, tlsConf), floorScheme+floorAddr+"/healthz", 30*time.Second); err != nil {
		return res, err
	}
	floorWL := func(rng *mrand.Rand) request {
		return request{method: "GET", url: floorScheme + floorAddr + "/v1/collections/users/records/" + ids[rng.IntN(len(ids))] + fieldsQ, want: 200}
	}

	metricsHC := newHTTPClient(1, tlsConf)
	want := func(name string) bool {
		return o.only == "" || strings.Contains(","+o.only+",", ","+name+",")
	}
	// pooled holds each workload's runs so far (more than one with -rounds).
	pooled := map[string]*runPool{}
	var measureWith func(cl *loader, name string, pid int, wl workload, closed bool, rate float64) error
	measure := func(name string, pid int, wl workload, closed bool, rate float64) error {
		return measureWith(cl, name, pid, wl, closed, rate)
	}
	measureWith = func(cl *loader, name string, pid int, wl workload, closed bool, rate float64) error {
		if !want(name) {
			return nil
		}
		warm := min(o.duration/5, 2*time.Second)
		closedLoop(ctx, cl, wl, o.conc, warm, o.seed+1000)
		cpu0, err := cpuSeconds(pid)
		if err != nil {
			return err
		}
		m0, _ := scrape(ctx, metricsHC, metricsURL)
		var r *run
		mode := fmt.Sprintf("closed, %d conns", o.conc)
		if closed {
			r = closedLoop(ctx, cl, wl, o.conc, o.duration, o.seed)
		} else {
			mode = fmt.Sprintf("open, %.0f req/s", rate)
			r = openLoop(ctx, cl, wl, rate, o.duration, o.maxInflight, o.seed)
		}
		cpu1, err := cpuSeconds(pid)
		if err != nil {
			return err
		}
		rss, _, _ := memMiB(pid)
		p := pooled[name]
		if p == nil {
			p = &runPool{r: &run{}}
			pooled[name] = p
		}
		p.add(r, cpu1-cpu0)
		if m1, err := scrape(ctx, metricsHC, metricsURL); err == nil && m0 != nil && pid == srv.pid() {
			p.addCommits(m0, m1)
		}
		wr := newWorkloadResult(p.r, p.cpu, rss, mode)
		if p.commits > 0 {
			wr.EventsPerCommit = p.events / p.commits
		}
		if q := histogramQuantile(0.99, p.commitBuckets); !math.IsNaN(q) {
			wr.CommitP99ms = q * 1000
		}
		res.Workloads[name] = wr
		logf("%-20s %s", name, newWorkloadResult(r, cpu1-cpu0, rss, mode).line())
		if r.FirstErr != nil {
			res.Notes = append(res.Notes, fmt.Sprintf("%s: %d of %d requests failed, first: %v", name, r.Errors, r.Requests, r.FirstErr))
		}
		return ctx.Err()
	}

	if o.export {
		// The same closed loop with the sink up, down, up again: requests
		// wait for the store, never for the sink.
		if err := measure("hot_read_sink_up", srv.pid(), hot, true, 0); err != nil {
			return res, err
		}
		recv.stop()
		if err := measure("hot_read_sink_down", srv.pid(), hot, true, 0); err != nil {
			return res, err
		}
		if err := recv.start(); err != nil {
			return res, err
		}
		if err := measure("hot_read_sink_up_again", srv.pid(), hot, true, 0); err != nil {
			return res, err
		}
		size := func() (uint64, error) { return logSize(ctx, bin, data, storeArgs, env) }
		er, err := waitCaughtUp(ctx, recv, size, 5*time.Minute)
		if err != nil {
			return res, err
		}
		up, down, up2 := res.Workloads["hot_read_sink_up"], res.Workloads["hot_read_sink_down"], res.Workloads["hot_read_sink_up_again"]
		if up != nil && down != nil && up2 != nil && up.ThroughputRPS+up2.ThroughputRPS > 0 {
			er.DownUpRatio = down.ThroughputRPS / ((up.ThroughputRPS + up2.ThroughputRPS) / 2)
		}
		res.Export = er
		logf("export: down/up throughput %.3f; log %d events, receiver %d distinct (%d lines), %d missing, caught up in %.1fs",
			er.DownUpRatio, er.LogSize, er.Received, er.Lines, er.Missing, er.CatchUpS)
		serverStopped = true
		if err := srv.stop(60 * time.Second); err != nil {
			res.Notes = append(res.Notes, "server stop: "+err.Error())
		}
		res.Finished = time.Now().UTC()
		return res, nil
	}

	steps := []struct {
		name   string
		pid    int
		wl     workload
		closed bool
	}{
		{floorName, floor.pid(), floorWL, true},
		{"hot_read", srv.pid(), hot, true},
	}
	for round := range max(o.rounds, 1) {
		for _, s := range steps {
			if err := measure(s.name, s.pid, s.wl, s.closed, 0); err != nil {
				return res, err
			}
		}
		if mcl != nil {
			if err := measureWith(mcl, "hot_read_mtls", srv.pid(), hot, true, 0); err != nil {
				return res, err
			}
		}
		if o.rounds > 1 {
			rr := roundResult{Round: round + 1}
			if p := pooled[floorName]; p != nil {
				rr.FloorRPS = p.last.rps()
			}
			if p := pooled["hot_read"]; p != nil && rr.FloorRPS > 0 {
				rr.HotReadRPS, rr.HotReadFloorRatio = p.last.rps(), p.last.rps()/rr.FloorRPS
			}
			if p := pooled["hot_read_mtls"]; p != nil && rr.FloorRPS > 0 {
				rr.HotReadMTLSRPS, rr.HotReadMTLSFloorRatio = p.last.rps(), p.last.rps()/rr.FloorRPS
			}
			res.Rounds = append(res.Rounds, rr)
			logf("round %d: hot_read/floor %.3f, hot_read_mtls/floor %.3f", rr.Round, rr.HotReadFloorRatio, rr.HotReadMTLSFloorRatio)
		}
	}
	if f, h := res.Workloads[floorName], res.Workloads["hot_read"]; f != nil && h != nil && f.ThroughputRPS > 0 {
		res.HotReadFloorRatio = h.ThroughputRPS / f.ThroughputRPS
	}
	if f, h := res.Workloads[floorName], res.Workloads["hot_read_mtls"]; f != nil && h != nil && f.ThroughputRPS > 0 {
		res.HotReadMTLSFloorRatio = h.ThroughputRPS / f.ThroughputRPS
	}
	if h := res.Workloads["hot_read"]; h != nil {
		if err := measure("hot_read_half_peak", srv.pid(), hot, false, h.ThroughputRPS/2); err != nil {
			return res, err
		}
		if hp := res.Workloads["hot_read_half_peak"]; hp != nil {
			res.HalfPeakP99ms = hp.P99ms
			// The same open loop against the floor: the tail latency that
			// the machine and the client alone give at that rate.
			if err := measure("floor_half_peak", floor.pid(), floorWL, false, h.ThroughputRPS/2); err != nil {
				return res, err
			}
		}
	}
	for _, s := range []struct {
		name string
		wl   workload
	}{{"lookup_phone", lookup}, {"batch_get_100", batch}, {"create", create}} {
		if err := measure(s.name, srv.pid(), s.wl, true, 0); err != nil {
			return res, err
		}
	}
	if b := res.Workloads["batch_get_100"]; b != nil {
		b.RecordsPerS = b.ThroughputRPS * 100
	}
	_, hwm, _ := memMiB(srv.pid())
	res.RSSPeakMiB = hwm
	for _, w := range res.Workloads {
		if w != res.Workloads["floor"] && w != res.Workloads["floor_tls"] && w != res.Workloads["floor_half_peak"] {
			res.RSSMiB = max(res.RSSMiB, w.RSSMiB)
		}
	}

	if want("incident_scope") {
		res.IncidentScope = incidentScope(ctx, bin, data, storeArgs, env, res.Started, out)
		if res.IncidentScope.Skipped != "" {
			res.Notes = append(res.Notes, "incident scope: "+res.IncidentScope.Skipped)
		}
	}
	serverStopped = true
	if err := srv.stop(60 * time.Second); err != nil {
		res.Notes = append(res.Notes, "server stop: "+err.Error())
	}
	res.Finished = time.Now().UTC()
	res.Targets = checkTargets(res)
	return res, nil
}

// fetchBody makes one request and returns its answer's body.
func fetchBody(ctx context.Context, c *loader, r request) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, r.method, r.url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Sekisho-Purpose", c.purpose)
	if err := c.cred.Apply(req); err != nil {
		return nil, err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != r.want {
		return nil, fmt.Errorf("%s: %s", resp.Status, b)
	}
	return b, nil
}

// generate writes NDJSON files of generated records (as `sekisho generate`
// does) and returns a sample of the users' phone numbers, for lookups, and
// a pool of further user records, for creates.
func generate(dir string, counts map[string]int, seed uint64) (phones []string, bodies [][]byte, err error) {
	g := gen.New(seed)
	for _, c := range []string{"users", "partners", "employees"} {
		f, err := os.Create(filepath.Join(dir, c+".ndjson"))
		if err != nil {
			return nil, nil, err
		}
		w := bufio.NewWriterSize(f, 1<<20)
		enc := json.NewEncoder(w)
		every := max(1, counts[c]/20_000)
		for i := range counts[c] {
			rec, err := g.Record(c)
			if err != nil {
				f.Close()
				return nil, nil, err
			}
			if c == "users" && i%every == 0 {
				var p string
				json.Unmarshal(rec.Fields["phone"], &p)
				phones = append(phones, p)
			}
			if err := enc.Encode(rec); err != nil {
				f.Close()
				return nil, nil, err
			}
		}
		if err := w.Flush(); err != nil {
			f.Close()
			return nil, nil, err
		}
		if err := f.Close(); err != nil {
			return nil, nil, err
		}
	}
	g = gen.New(seed + 1)
	for range 10_000 {
		b, _ := json.Marshal(g.User())
		bodies = append(bodies, b)
	}
	return phones, bodies, nil
}

// sampleIDs returns up to n ids of collection's records, read from the
// store before the server starts. Ids are random, so the first n in id
// order are a uniform sample.
func sampleIDs(ctx context.Context, dsn, sqlitePath, collection string, n int) ([]string, error) {
	var st sekisho.Store
	var err error
	if dsn != "" {
		st, err = postgres.Open(ctx, dsn)
	} else {
		st, err = sqlite.Open(ctx, sqlitePath)
	}
	if err != nil {
		return nil, fmt.Errorf("open store to sample ids: %w", err)
	}
	defer st.Close()
	var ids []string
	after := ""
	for len(ids) < n {
		page, err := st.ListRecordIDs(ctx, collection, "", after, min(1000, n-len(ids)))
		if err != nil {
			return nil, err
		}
		if len(page) == 0 {
			break
		}
		ids = append(ids, page...)
		after = page[len(page)-1]
	}
	return ids, nil
}

// incidentScope times `sekisho incident scope` over the loaded history, if
// the binary has it.
func incidentScope(ctx context.Context, bin, data string, storeArgs, env []string, since time.Time, out string) *scopeResult {
	help, _ := exec.Command(bin, "--help").Output()
	if !strings.Contains(string(help), "incident") {
		return &scopeResult{Skipped: "`sekisho incident scope` does not exist in this build (not in `sekisho --help`)"}
	}
	args := append([]string{"incident", "scope", "--data", data}, storeArgs...)
	args = append(args, "--principal", principalPrefix+"-0", "--since", since.Add(-time.Hour).Format(time.RFC3339),
		"--until", time.Now().Add(time.Hour).UTC().Format(time.RFC3339), "--format", "json")
	var best time.Duration
	for i := range 3 {
		wall, _, _, err := runTimed(ctx, bin, args, env, filepath.Join(out, "incident-scope.log"))
		if err != nil {
			return &scopeResult{Skipped: "incident scope failed: " + firstLine(err.Error())}
		}
		if i == 0 || wall < best {
			best = wall
		}
	}
	return &scopeResult{Seconds: best.Seconds()}
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return s
}

// softHSMToken makes a SoftHSM2 token (label bench) in dir and returns the
// flags of import and serve that keep the KEKs in it, and the environment
// that points SoftHSM2 at it.
func softHSMToken(dir, module string) (args, env []string, err error) {
	if err := os.RemoveAll(dir); err != nil {
		return nil, nil, err
	}
	tokens := filepath.Join(dir, "tokens")
	if err := os.MkdirAll(tokens, 0o700); err != nil {
		return nil, nil, err
	}
	conf := filepath.Join(dir, "softhsm2.conf")
	if err := os.WriteFile(conf, []byte("directories.tokendir = "+tokens+"\nobjectstore.backend = file\nlog.level = ERROR\n"), 0o600); err != nil {
		return nil, nil, err
	}
	env = []string{"SOFTHSM2_CONF=" + conf}
	init := exec.Command("softhsm2-util", "--init-token", "--free", "--label", "bench", "--pin", "1234", "--so-pin", "5678")
	init.Env = append(os.Environ(), env...)
	if out, err := init.CombinedOutput(); err != nil {
		return nil, nil, fmt.Errorf("softhsm2-util --init-token (Debian's softhsm2): %w: %s", err, out)
	}
	pin := filepath.Join(dir, "pin")
	if err := os.WriteFile(pin, []byte("1234\n"), 0o600); err != nil {
		return nil, nil, err
	}
	return []string{"--key-provider", "pkcs11", "--pkcs11-module", module, "--pkcs11-token", "bench", "--pkcs11-pin-file", pin}, env, nil
}
