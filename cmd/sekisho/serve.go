package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/spf13/cobra"
	"go.opentelemetry.io/otel/trace"

	"github.com/sekisho/sekisho"
	"github.com/sekisho/sekisho/access"
	"github.com/sekisho/sekisho/audit/export"
	"github.com/sekisho/sekisho/console"
	"github.com/sekisho/sekisho/edge"
	"github.com/sekisho/sekisho/guard"
	"github.com/sekisho/sekisho/httpapi"
	"github.com/sekisho/sekisho/internal/logbuf"
	"github.com/sekisho/sekisho/passkey"
	"github.com/sekisho/sekisho/postgres"
	"github.com/sekisho/sekisho/report"
	"github.com/sekisho/sekisho/sqlite"
	"github.com/sekisho/sekisho/vault"
)

type serveFlags struct {
	config        string
	regions       map[string]string
	addr          string
	data          string
	store         string
	masterKeyFile string
	org           string
	region        string
	checkpoint    time.Duration
	retention     time.Duration
	logFormat     string
	webhooks      []string
	witnessDir    string
	logOrigin     string
	webhookSecret string
	tlsCert       string
	tlsKey        string
	insecureHTTP  bool
	publicURL     string
	proxies       string
	dpopNonce     bool
	metricsAddr   string
	anonRate      int
	deviceDefault string
	tpmEKRoots    string
	oidc          oidcFlags
	regionList    []string
	controller    report.Controller
	clientCA      string
	otlpEndpoint  string
	keys          keyFlags
	auditExport   auditExportConfig
	rotationGrace time.Duration
	sqliteCache   int
	webauthn      webauthnFlags
}

// defaultAddr is where serve listens unless --addr says otherwise.
const defaultAddr = "127.0.0.1:8700"

func newServeCmd() *cobra.Command {
	var f serveFlags
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the vault server",
		Long: `Run the vault server on the embedded SQLite store (default) or PostgreSQL.

The first start creates the data directory (database, sealed keyring, audit
signing key) and writes the bootstrap admin token to DATA/bootstrap-admin-token
(mode 0600). Secrets are never written to the log.`,
		Example: `  sekisho serve
  sekisho serve --addr 127.0.0.1:8700 --data ./sekisho-data
  sekisho serve --addr :8443 --tls-cert /etc/sekisho/tls.crt --tls-key /etc/sekisho/tls.key
  SEKISHO_MASTER_KEY_FILE=/run/secrets/sekisho-master sekisho serve --store postgres://sekisho@db/sekisho`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var err error
			if f.regions, err = fromConfigFile(cmd, f.config); err != nil {
				return err
			}
			if f.controller, err = configController(f.config); err != nil {
				return err
			}
			if err := f.keys.fromConfig(f.config); err != nil {
				return err
			}
			if f.auditExport, err = configAuditExport(f.config); err != nil {
				return err
			}
			return runServe(cmd.Context(), cmd, f)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.addr, "addr", defaultAddr, "address to listen on")
	fl.StringVar(&f.data, "data", "./sekisho-data", "data directory (embedded database, keyring, audit keys)")
	fl.StringVar(&f.store, "store", "", "PostgreSQL URL (postgres://...); default: embedded SQLite in the data directory")
	fl.StringVar(&f.masterKeyFile, "master-key-file", "", "file holding the master key (default: $SEKISHO_MASTER_KEY, $SEKISHO_MASTER_KEY_FILE, or a generated key in the user config directory)")
	fl.StringVar(&f.org, "org", "operator", "organisation of the bootstrap admin (the root org)")
	fl.StringVar(&f.region, "region", "jp", "home region of the root org")
	fl.DurationVar(&f.checkpoint, "checkpoint-interval", 5*time.Second, "how often to sign an audit checkpoint")
	fl.DurationVar(&f.retention, "retention-interval", time.Hour, "how often the retention sweeper erases expired records (0: never)")
	fl.StringVar(&f.logFormat, "log-format", "text", "log format: text or json")
	fl.StringVar(&f.witnessDir, "witness-dir", "", "directory that receives a copy of every signed audit checkpoint (checkpoint-<size>; a region's log in <region>/checkpoint-<size>), for a witness outside the operator")
	fl.StringVar(&f.logOrigin, "log-origin", "", "origin line of the audit checkpoints (a region's log signs <origin>/<region>); default: this deployment's own, sekisho.local/<random id> made on first start and kept in the store")
	fl.StringSliceVar(&f.webhooks, "alert-webhook", nil, "URL that receives the guard's signed alerts (repeatable)")
	fl.StringVar(&f.webhookSecret, "alert-webhook-secret-file", "", "file holding the HMAC secret of alert webhooks (default: $SEKISHO_ALERT_WEBHOOK_SECRET)")
	fl.StringVar(&f.tlsCert, "tls-cert", "", "PEM file of the server's TLS certificate chain (reloaded when it changes)")
	fl.StringVar(&f.tlsKey, "tls-key", "", "PEM file of the TLS certificate's private key (reloaded with it)")
	fl.BoolVar(&f.insecureHTTP, "insecure-http", false, "serve plain HTTP on a non-loopback address (only behind a TLS-terminating proxy)")
	fl.StringVar(&f.publicURL, "public-url", "", "URL clients reach the server at behind a proxy (https://vault.example.jp): DPoP proofs' htu is checked against it")
	fl.StringVar(&f.proxies, "trusted-proxies", "", "CIDRs of proxies whose X-Forwarded-For/Forwarded header sets the audit event's source address (comma-separated)")
	fl.StringVar(&f.clientCA, "client-ca", "", "PEM file of the CAs of services' TLS client certificates: enables certificate-bound tokens (RFC 8705); needs --tls-cert")
	fl.StringVar(&f.otlpEndpoint, "otlp-endpoint", "", "OTLP/HTTP collector URL (http://127.0.0.1:4318): export a trace span of every request, W3C traceparent honoured")
	fl.BoolVar(&f.dpopNonce, "dpop-nonce", false, "require a server nonce in every DPoP proof (RFC 9449 §8-9; clients get it from the DPoP-Nonce header)")
	fl.StringSliceVar(&f.regionList, "regions", sekisho.DefaultRegions, "the closed list of residency regions records may be pinned to (comma-separated; regions with a store of their own in --config are added)")
	fl.StringVar(&f.deviceDefault, "device-requirement-default", "hardware-bound", "devices other orgs' principals and reads of sensitive fields need, for orgs that set none (sekisho org device-requirements): any, hardware-bound, attested")
	fl.StringVar(&f.tpmEKRoots, "tpm-ek-roots", "", "PEM file of the trusted roots of TPM endorsement key certificates (TPM manufacturers' CAs): enrolments with a TPM key attestation are verified against them (none: attestations are refused)")
	f.oidc.flags(fl)
	fl.IntVar(&f.anonRate, "anonymous-rate-limit", httpapi.DefaultAnonymousRate, "anonymous requests (bootstrap, device enrolment, token) a minute per source address, past which 429 with Retry-After (negative: no limit)")
	fl.StringVar(&f.metricsAddr, "metrics-addr", "127.0.0.1:9700", "address of the Prometheus /metrics listener, apart from the data listener (\"\": none)")
	f.keys.flags(cmd)
	f.webauthn.flags(cmd)
	fl.DurationVar(&f.rotationGrace, "key-rotation-grace", vault.DefaultRotationGrace, "an online key rotation retires the old KEK version only after a walk begun this long after the new one finds nothing under it (writes in flight when it began have committed by then)")
	fl.IntVar(&f.sqliteCache, "sqlite-cache-mib", sqlite.DefaultCacheMiB, "page cache of each SQLite connection, in MiB: a store's caches hold at most this x (1 writer + its readers, 2 x cores and at least 4) (README \"Memory budget\")")
	fl.StringVar(&f.config, "config", "", "configuration file (YAML: the flags' settings and a regions: map of region to store URL)")
	return cmd
}

// Log lines are written to stderr in batches (internal/logbuf): at most
// logBatch bytes or logDelay after the first line held, and at once with
// a warning or an error. One write a request line was ~1.5% of the hot
// read's CPU.
const (
	logBatch = 32 << 10
	logDelay = 100 * time.Millisecond
)

// newLogger returns serve's logger and the batching writer under it, which
// the caller closes last (it writes out what is held).
func newLogger(format string) (*slog.Logger, *logbuf.Writer, error) {
	w := logbuf.New(os.Stderr, logBatch, logDelay)
	var h slog.Handler
	switch format {
	case "text":
		h = slog.NewTextHandler(w, nil)
	case "json":
		h = slog.NewJSONHandler(w, nil)
	default:
		return nil, nil, fmt.Errorf("--log-format %q: want text or json", format)
	}
	return slog.New(logbuf.Handler{Handler: h, W: w, Level: slog.LevelWarn}), w, nil
}

func runServe(ctx context.Context, cmd *cobra.Command, f serveFlags) error {
	logger, logw, err := newLogger(f.logFormat)
	if err != nil {
		return err
	}
	defer logw.Close()
	// The listener's TLS is checked before anything is opened, so that a
	// refused configuration changes nothing on disk.
	tlsConf, err := serveTLS(f, logger)
	if err != nil {
		return err
	}
	proxies, err := edge.ParseProxies(f.proxies)
	if err != nil {
		return err
	}
	if !slices.Contains(regionList(f.regionList, f.regions), f.region) {
		return fmt.Errorf("--region %s is not one of --regions (%s)", f.region, strings.Join(f.regionList, ","))
	}
	var tracer trace.Tracer
	if f.otlpEndpoint != "" {
		var stop func(context.Context) error
		if tracer, stop, err = newTracer(ctx, f.otlpEndpoint); err != nil {
			return err
		}
		defer func() {
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := stop(sctx); err != nil {
				logger.Warn("trace export did not finish", "error", err.Error())
			}
		}()
	}
	if f.sqliteCache < 1 {
		return fmt.Errorf("--sqlite-cache-mib %d: want at least 1 (MiB a connection; default %d)", f.sqliteCache, sqlite.DefaultCacheMiB)
	}
	if f.rotationGrace <= 0 {
		return fmt.Errorf("--key-rotation-grace %s: want a positive duration (default %s)", f.rotationGrace, vault.DefaultRotationGrace)
	}
	if f.publicURL != "" {
		if _, err := access.ParsePublicURL(f.publicURL); err != nil {
			return fmt.Errorf("--public-url: %w", err)
		}
	}
	exportOpts := export.Options{Sinks: f.auditExport.Sinks, CursorDir: f.auditExport.CursorDir, Logger: logger}
	if exportOpts.CursorDir == "" {
		exportOpts.CursorDir = filepath.Join(f.data, "audit-export")
	}
	if err := export.Check(exportOpts); err != nil {
		return fmt.Errorf("config %s: %w", f.config, err)
	}
	in, err := openInstance(ctx, instanceOptions{DataDir: f.data, RootOrg: f.org, Store: f.store, MasterKeyFile: f.masterKeyFile, Regions: f.regions, RegionList: f.regionList, WitnessDir: f.witnessDir, LogOrigin: f.logOrigin,
		Stderr: cmd.ErrOrStderr(), Logger: logger, Keys: f.keys.keysConfig, RegionKeys: f.keys.regions,
		DEKCacheSize: f.keys.cacheSize, DEKCacheTTL: f.keys.cacheTTL, RotationGrace: f.rotationGrace, SQLite: sqlite.Options{CacheMiB: f.sqliteCache}})
	if err != nil {
		return err
	}
	defer in.Close()

	token, created, err := bootstrapToken(f.data)
	if err != nil {
		return err
	}
	tokenPath := filepath.Join(f.data, bootstrapTokenFile)
	if created {
		logger.Info("bootstrap admin token written (mode 0600); enrol the first admin with: sekisho login --server URL --bootstrap-token-file FILE", "file", tokenPath)
	} else {
		logger.Info("bootstrap admin token", "file", tokenPath)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "sekisho_sqlite_memory_bytes",
			Help: "Memory the SQLite library of this process holds (page caches, schemas, statements of every SQLite store)."},
			func() float64 { n, _ := sqlite.MemoryUsed(); return float64(n) }))
	// The audit log's group commit: events per commit is how many appends
	// one durable store write served.
	reg.MustRegister(
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "sekisho_audit_commits_total", Help: "Store commits of the audit log's writer (each one durable write)."},
			func() float64 { c, _ := in.log.Stats(); return float64(c) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "sekisho_audit_committed_events_total", Help: "Audit events written by those commits."},
			func() float64 { _, e := in.log.Stats(); return float64(e) }),
		newAuditCommitCollector(in.log, in.regionLogs))
	hooks, err := alertWebhooks(f.webhooks, f.webhookSecret)
	if err != nil {
		return err
	}
	tpmRoots, err := loadTPMRoots(f.tpmEKRoots)
	if err != nil {
		return err
	}
	idp, err := f.oidc.provider()
	if err != nil {
		return err
	}
	if idp != nil {
		logger.Info("people sign in through the identity provider (sekisho login --oidc)", "issuer", idp.Issuer(), "client_id", idp.ClientID())
	}
	passkeys, err := f.webauthn.resolve(f.publicURL, f.addr, tlsConf != nil)
	if err != nil {
		return err
	}
	nd, err := newNode(ctx, in, nodeConfig{Passkeys: passkeys, AnonymousRate: f.anonRate, Token: token, Org: f.org, Region: f.region, Logger: logger, Registry: reg, Webhooks: hooks,
		PublicURL: f.publicURL, Proxies: proxies, DPoPNonce: f.dpopNonce, Controller: f.controller, ClientCertificates: f.clientCA != "",
		Tracer: tracer, DeviceDefault: f.deviceDefault, TPMRoots: tpmRoots, IdentityProvider: idp})
	if err != nil {
		return err
	}
	defer nd.Close()
	srv := nd.srv

	ln, err := net.Listen("tcp", f.addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", f.addr, err)
	}
	scheme := "http"
	if tlsConf != nil {
		ln, scheme = tls.NewListener(ln, tlsConf), "https"
	}
	// net/http's own errors (a TLS handshake that failed, a panic it
	// recovered) go through the logger, in order with its lines.
	httpErrors := slog.NewLogLogger(logger.Handler(), slog.LevelWarn)
	hs := &http.Server{Handler: srv, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second,
		WriteTimeout: 60 * time.Second, IdleTimeout: 120 * time.Second, MaxHeaderBytes: 64 << 10, TLSConfig: tlsConf,
		ErrorLog: httpErrors}

	// /metrics has a listener of its own (loopback by default): the data
	// listener does not serve it, so that nobody who reaches the API learns
	// from it (request rates by route, guard rules fired, process state).
	var ms *http.Server
	if f.metricsAddr != "" {
		mln, err := net.Listen("tcp", f.metricsAddr)
		if err != nil {
			return fmt.Errorf("listen on --metrics-addr %s: %w", f.metricsAddr, err)
		}
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", srv.MetricsHandler())
		// SEKISHO_PPROF=1 adds Go's profiles (/debug/pprof/) to this
		// listener, never to the data listener: the soak takes heap
		// profiles from it, and a CPU profile or an execution trace of a
		// window of a run (/debug/pprof/profile, /debug/pprof/trace) shows
		// what a latency tail waits on (bench/README.md).
		if os.Getenv("SEKISHO_PPROF") == "1" {
			mux.HandleFunc("GET /debug/pprof/", pprof.Index)
			mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
			mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
		}
		ms = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second, WriteTimeout: 60 * time.Second,
			ErrorLog: httpErrors}
		logger.Info("metrics listening", "url", "http://"+mln.Addr().String()+"/metrics")
		go ms.Serve(mln)
		defer ms.Close()
	}

	cpCtx, cpStop := context.WithCancel(context.Background())
	defer cpStop()
	go in.logs.RunCheckpointer(cpCtx, f.checkpoint)
	go in.vault.RunRetention(cpCtx, f.retention, logger)
	// Audit export reads the stored logs on its own goroutines: a sink that
	// is down or slow never touches a request (audit/export).
	exportOpts.Logs, exportOpts.Registry = in.logs.Stores(), reg
	exportDone := make(chan struct{})
	go func() {
		defer close(exportDone)
		if err := export.Run(cpCtx, exportOpts); err != nil {
			logger.Error("audit export stopped", "error", err.Error())
		}
	}()
	defer func() { cpStop(); <-exportDone }()
	// The keys' health, every few seconds: while the HSM is out of reach the
	// cached data keys are dropped, so no record opens without its KEK.
	go func() {
		for t := time.NewTicker(5 * time.Second); ; {
			select {
			case <-cpCtx.Done():
				t.Stop()
				return
			case <-t.C:
				in.vault.Ready(cpCtx)
			}
		}
	}()
	// Rotations a crash or a stop left running go on where they stopped.
	go func() {
		if err := in.vault.ResumeRotations(cpCtx, in.vault.RotationOptions()); err != nil && cpCtx.Err() == nil {
			logger.Warn("resuming key rotations", "error", err.Error())
		}
	}()

	store := "sqlite " + filepath.Join(f.data, dbFile)
	if f.store != "" {
		store = "postgres " + redactDSN(f.store)
	}
	logger.Info("sekisho listening", "url", scheme+"://"+ln.Addr().String(), "data", f.data, "store", store, "version", version, "audit_logs", strings.Join(in.logs.Names(), ","))
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	logger.Info("shutting down: finishing in-flight requests")
	sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("shutdown: %w", err)
	}
	cpStop()
	if _, err := in.logs.Checkpoint(sctx); err != nil {
		logger.Warn("final checkpoint failed", "error", err.Error())
	}
	logger.Info("stopped")
	return nil
}

// serveTLS returns the listener's TLS configuration (nil for plain HTTP),
// or the refusal of plain HTTP on a non-loopback address.
func serveTLS(f serveFlags, logger *slog.Logger) (*tls.Config, error) {
	if (f.tlsCert == "") != (f.tlsKey == "") {
		return nil, errors.New("give both --tls-cert and --tls-key")
	}
	if f.tlsCert == "" {
		if f.clientCA != "" {
			return nil, errors.New("--client-ca needs TLS: give --tls-cert and --tls-key")
		}
		if !f.insecureHTTP {
			if err := edge.CheckPlainHTTP(f.addr); err != nil {
				return nil, err
			}
		}
		return nil, nil
	}
	rl, err := edge.NewCertReloader(f.tlsCert, f.tlsKey)
	if err != nil {
		return nil, err
	}
	rl.OnError = func(err error) {
		logger.Warn("TLS certificate not reloaded; serving the previous one", "error", err.Error())
	}
	var pool *x509.CertPool
	if f.clientCA != "" {
		if pool, err = edge.LoadCertPool(f.clientCA); err != nil {
			return nil, err
		}
	}
	return edge.ServerConfig(rl, pool), nil
}

// nodeConfig configures the request path of one node.
type nodeConfig struct {
	// AnonymousRate limits the anonymous routes per source address
	// (httpapi.Config.AnonymousRate).
	AnonymousRate int
	Token         string // the bootstrap admin token
	Org           string // the root org
	Region        string // its home region
	Logger        *slog.Logger
	Registry      *prometheus.Registry
	Webhooks      []guard.Webhook
	// NoGuard leaves the exfiltration guard out (the demo's "shared trust"
	// configuration only).
	NoGuard bool
	// Now is the clock of the request path (default time.Now).
	Now func() time.Time
	// Location is the guard's off-hours zone for orgs without a time zone
	// of their own (default the server's local zone).
	Location *time.Location
	// PublicURL is the URL proofs are checked against behind a proxy.
	PublicURL string
	// Proxies set the source address of audit events from their headers.
	Proxies edge.Proxies
	// DPoPNonce requires server nonces in proofs.
	DPoPNonce bool
	// DeviceDefault is the device requirement of orgs that set none
	// (access.Config.DeviceDefault; "" is hardware-bound).
	DeviceDefault string
	// TPMRoots are the trusted TPM EK certificate roots (--tpm-ek-roots).
	TPMRoots *x509.CertPool
	// IdentityProvider lets people sign in through the company's IdP
	// (--oidc-issuer; nil: none).
	IdentityProvider access.IdentityProvider
	// Controller is the configuration file's controller, named in reports.
	Controller report.Controller
	// ClientCertificates: the listener verifies TLS client certificates
	// (--client-ca), so services get certificate-bound tokens.
	ClientCertificates bool
	// Tracer makes a span of every request (nil: none).
	Tracer trace.Tracer
	// Passkeys is the WebAuthn relying party of the console's passkey
	// sign-in (no origins: off).
	Passkeys passkeyConfig
}

// node is the request path over an opened instance: access control, the
// guard and the HTTP API, wired as serve runs them.
type node struct {
	srv *httpapi.Server
	acc *access.Service
	grd *guard.Guard
}

func newNode(ctx context.Context, in *instance, c nodeConfig) (*node, error) {
	if c.Registry == nil {
		c.Registry = prometheus.NewRegistry()
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	n := &node{}
	// The guard first: access takes it as its Quarantine, the vault as its
	// guard.
	if !c.NoGuard {
		n.grd = guard.New(guard.Config{Store: in.store, Directory: access.NewDirectory(in.store), Logs: in.logs.Stores(), Audit: in.log, RootOrg: c.Org, Logger: c.Logger, Registry: c.Registry,
			Webhooks: c.Webhooks, Now: c.Now, Location: c.Location})
		if err := n.grd.Start(ctx); err != nil {
			return nil, err
		}
	}
	acfg := access.Config{BootstrapToken: c.Token, RootOrg: c.Org, RootRegion: c.Region, Now: c.Now,
		PublicURL: c.PublicURL, RequireNonce: c.DPoPNonce, ClientCertificates: c.ClientCertificates,
		DeviceDefault: c.DeviceDefault, TPMRoots: c.TPMRoots, IdentityProvider: c.IdentityProvider}
	if n.grd != nil {
		acfg.Quarantine = n.grd
		acfg.Alert = func(ctx context.Context, rule, org, detail string) {
			n.grd.Raise(ctx, sekisho.Caller{Principal: "sekisho", Org: org}, rule, detail)
		}
	}
	acc, err := newAccessWith(ctx, in, acfg)
	if err != nil {
		n.Close()
		return nil, err
	}
	n.acc = acc
	opts := in.vaultOpts
	opts.Authorizer = acc.Authorizer()
	hc := httpapi.Config{AuditLog: in.log, AuditLogs: in.logs, VerifierKey: in.verifier, Logger: c.Logger, Registry: c.Registry,
		Auth: acc, Access: acc, KnownPurpose: acc.KnownPurpose, Now: c.Now, Proxies: c.Proxies, Tracer: c.Tracer, Reports: report.Config{Controller: c.Controller},
		AnonymousRate: c.AnonymousRate, Console: console.Handler()}
	if n.grd != nil {
		opts.Guard = n.grd
		hc.Guard = n.grd
	}
	if len(c.Passkeys.Origins) > 0 {
		if hc.Passkeys, err = passkey.New(passkey.Config{Origins: c.Passkeys.Origins, RPID: c.Passkeys.RPID, Roots: c.Passkeys.Roots,
			Store: in.store, Audit: in.log, Access: acc, Now: c.Now, SessionTTL: c.Passkeys.SessionTTL}); err != nil {
			if !c.Passkeys.Derived {
				return nil, err
			}
			c.Logger.Warn("no passkeys for the console: the default origin makes no WebAuthn relying party; give --webauthn-origin", "origins", c.Passkeys.Origins, "error", err.Error())
			hc.Passkeys = nil
		}
	}
	// The node's vault, made with its authoriser and guard; it replaces the
	// instance's (OwnOrg, no guard) for everything served from here on.
	in.vault = vault.New(in.store, in.keys, in.logs, opts)
	hc.Vault = in.vault
	n.srv = httpapi.New(hc)
	return n, nil
}

// Close stops the guard's background work.
func (n *node) Close() {
	if n.grd != nil {
		n.grd.Close()
	}
}

func newMigrateCmd() *cobra.Command {
	var store, format string
	cmd := &cobra.Command{
		Use:     "migrate",
		Short:   "Run the PostgreSQL store's migrations (serve also runs them on start)",
		Example: "  sekisho migrate --store postgres://sekisho@db:5432/sekisho",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if store == "" {
				return usageErrorf("--store postgres://... is required")
			}
			if err := postgres.Migrate(cmd.Context(), store); err != nil {
				return err
			}
			if format == "json" {
				return writeJSON(cmd.OutOrStdout(), map[string]bool{"migrated": true})
			}
			_, err := fmt.Fprintln(cmd.OutOrStdout(), "migrations applied")
			return err
		},
	}
	cmd.Flags().StringVar(&store, "store", os.Getenv("SEKISHO_STORE"), "PostgreSQL URL")
	addFormatFlag(cmd.Flags(), &format, "table", "table", "json")
	return cmd
}
