package export

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"regexp"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sekisho/sekisho"
)

// Sink types.
const (
	TypeJSONLines = "json-lines" // JSON lines over TCP+TLS
	TypeSyslog    = "syslog"     // RFC 5424 over TLS (RFC 5425 framing)
	TypeOTLP      = "otlp"       // OTLP logs, protobuf over HTTPS
)

// DefaultLog is the name of the default store's log (the region of a
// sekisho.LogStore is "" for it).
const DefaultLog = "default"

// Config is one sink, as the audit_export: section of the configuration
// file gives it.
type Config struct {
	// Name identifies the sink in cursor files, logs and metrics: letters,
	// digits, '-' and '_'.
	Name string `yaml:"name"`
	// Type is json-lines, syslog or otlp.
	Type string `yaml:"type"`
	// Address is host:port of a json-lines or syslog receiver.
	Address string `yaml:"address"`
	// Endpoint is the https URL of an OTLP/HTTP logs receiver
	// (https://collector:4318/v1/logs).
	Endpoint string `yaml:"endpoint"`
	// CAFile is a PEM file of the CAs the receiver's certificate is checked
	// against (default: the system's roots).
	CAFile string `yaml:"ca_file"`
	// CertFile and KeyFile are the client certificate shown to the receiver
	// (optional).
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// ServerName is the name checked in the receiver's certificate (default:
	// the host of Address or Endpoint).
	ServerName string `yaml:"server_name"`
	// Headers are added to every OTLP request (an API key of the collector).
	Headers map[string]string `yaml:"headers"`
	// Facility is the syslog facility (default 13, log audit).
	Facility *int `yaml:"facility"`
	// Hostname is syslog's HOSTNAME (default: the machine's host name).
	Hostname string `yaml:"hostname"`
	// SDID is the syslog structured data ID (default sekisho@32473).
	SDID string `yaml:"sd_id"`
	// BatchSize is the most events sent at once (default 500).
	BatchSize int `yaml:"batch_size"`
	// PollInterval is how often a caught-up worker reads the log again
	// (default 1s).
	PollInterval time.Duration `yaml:"poll_interval"`
}

// Options configure Run.
type Options struct {
	Sinks []Config
	// Logs are the logs to export: every log of the deployment.
	Logs []sekisho.LogStore
	// CursorDir keeps the cursor files (created when missing).
	CursorDir string
	Logger    *slog.Logger
	// Registry, if set, receives the export's metrics.
	Registry prometheus.Registerer
	// Backoff bounds the wait between two attempts after a failure
	// (default 1 s doubling to 30 s).
	MinBackoff, MaxBackoff time.Duration
}

var nameRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// Validate checks a sink's configuration without connecting to it.
func (c Config) Validate() error {
	if !nameRE.MatchString(c.Name) {
		return fmt.Errorf("audit export sink name %q: want 1-64 letters, digits, '-' or '_'", c.Name)
	}
	where := "audit export sink " + c.Name
	switch c.Type {
	case TypeJSONLines, TypeSyslog:
		if _, _, err := net.SplitHostPort(c.Address); err != nil {
			return fmt.Errorf("%s: address %q: want host:port: %w", where, c.Address, err)
		}
		if c.Endpoint != "" || len(c.Headers) > 0 {
			return fmt.Errorf("%s: endpoint and headers are for otlp sinks", where)
		}
	case TypeOTLP:
		u, err := url.Parse(c.Endpoint)
		if err != nil || u.Scheme != "https" || u.Host == "" {
			return fmt.Errorf("%s: endpoint %q: want an https URL (https://collector:4318/v1/logs)", where, c.Endpoint)
		}
		if c.Address != "" {
			return fmt.Errorf("%s: address is for json-lines and syslog sinks; otlp takes endpoint", where)
		}
	default:
		return fmt.Errorf("%s: type %q: want %s, %s or %s", where, c.Type, TypeJSONLines, TypeSyslog, TypeOTLP)
	}
	if c.Type != TypeSyslog && (c.Facility != nil || c.Hostname != "" || c.SDID != "") {
		return fmt.Errorf("%s: facility, hostname and sd_id are for syslog sinks", where)
	}
	if c.Facility != nil && (*c.Facility < 0 || *c.Facility > 23) {
		return fmt.Errorf("%s: facility %d: want 0-23", where, *c.Facility)
	}
	if c.SDID != "" && !sdNameRE.MatchString(c.SDID) {
		return fmt.Errorf("%s: sd_id %q is not an RFC 5424 SD-ID", where, c.SDID)
	}
	if (c.CertFile == "") != (c.KeyFile == "") {
		return fmt.Errorf("%s: give both cert_file and key_file", where)
	}
	if c.BatchSize < 0 || c.PollInterval < 0 {
		return fmt.Errorf("%s: batch_size and poll_interval must not be negative", where)
	}
	return nil
}

// tlsConfig loads the sink's TLS settings for a receiver at host.
func (c Config) tlsConfig(host string) (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: host}
	if c.ServerName != "" {
		tc.ServerName = c.ServerName
	}
	if c.CAFile != "" {
		pem, err := os.ReadFile(c.CAFile)
		if err != nil {
			return nil, fmt.Errorf("audit export sink %s: ca_file: %w", c.Name, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("audit export sink %s: ca_file %s holds no PEM certificate", c.Name, c.CAFile)
		}
		tc.RootCAs = pool
	}
	if c.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("audit export sink %s: client certificate: %w", c.Name, err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}

// sink delivers batches of one log's events to one receiver. send returns
// only once the batch is acknowledged (as doc.go says per type); after an
// error the next send starts on a fresh connection.
type sink interface {
	send(ctx context.Context, log string, entries []sekisho.AuditEntry) error
	close()
}

func newSink(c Config) (sink, error) {
	switch c.Type {
	case TypeOTLP:
		return newOTLPSink(c)
	default:
		return newStreamSink(c)
	}
}

// LogName returns the name of a log in cursor files and exported events:
// its region, or DefaultLog.
func LogName(l sekisho.LogStore) string {
	if l.Region == "" {
		return DefaultLog
	}
	return l.Region
}

type metrics struct {
	next     *prometheus.GaugeVec
	sent     *prometheus.CounterVec
	failures *prometheus.CounterVec
	rejected *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		next: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "sekisho_audit_export_next_index",
			Help: "Index of the next audit event a sink will be sent (its cursor)."}, []string{"sink", "log"}),
		sent: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sekisho_audit_export_events_total",
			Help: "Audit events a sink acknowledged."}, []string{"sink", "log"}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sekisho_audit_export_failures_total",
			Help: "Failed attempts to read the log or deliver a batch to a sink."}, []string{"sink", "log"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sekisho_audit_export_rejected_total",
			Help: "Audit events an OTLP collector refused for good (partial success)."}, []string{"sink", "log"}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.next, m.sent, m.failures, m.rejected} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("audit export metrics: %w", err)
			}
		}
	}
	return m, nil
}

// Check validates the options and loads every sink's TLS files, without
// connecting: serve calls it before it starts, so that a bad configuration
// stops it while a sink that is down does not.
func Check(opts Options) error {
	seen := map[string]bool{}
	for _, c := range opts.Sinks {
		if err := c.Validate(); err != nil {
			return err
		}
		if seen[c.Name] {
			return fmt.Errorf("audit export sink name %q is used twice", c.Name)
		}
		seen[c.Name] = true
		s, err := newSink(c)
		if err != nil {
			return err
		}
		s.close()
	}
	if len(opts.Sinks) > 0 && opts.CursorDir == "" {
		return errors.New("audit export: no cursor directory")
	}
	return nil
}

// Run exports every log to every sink until ctx is done, then returns nil.
// It returns an error at once for a configuration Check refuses or a cursor
// directory it cannot use; failures of sinks and of the store are logged,
// counted and retried, never returned.
func Run(ctx context.Context, opts Options) error {
	if err := Check(opts); err != nil {
		return err
	}
	if len(opts.Sinks) == 0 {
		return nil
	}
	if err := os.MkdirAll(opts.CursorDir, 0o700); err != nil {
		return fmt.Errorf("audit export: cursor directory: %w", err)
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.MinBackoff <= 0 {
		opts.MinBackoff = time.Second
	}
	if opts.MaxBackoff < opts.MinBackoff {
		opts.MaxBackoff = max(30*time.Second, opts.MinBackoff)
	}
	m, err := newMetrics(opts.Registry)
	if err != nil {
		return err
	}
	var workers []*worker
	for _, c := range opts.Sinks {
		if c.BatchSize == 0 {
			c.BatchSize = 500
		}
		if c.PollInterval == 0 {
			c.PollInterval = time.Second
		}
		for _, l := range opts.Logs {
			w := &worker{cfg: c, log: LogName(l), store: l.Store, opts: opts, m: m}
			w.cursor = cursorPath(opts.CursorDir, c.Name, w.log)
			if w.next, err = readCursor(w.cursor); err != nil {
				return err
			}
			if w.sink, err = newSink(c); err != nil {
				return err
			}
			workers = append(workers, w)
		}
	}
	var wg sync.WaitGroup
	for _, w := range workers {
		wg.Go(func() {
			defer w.sink.close()
			w.run(ctx)
		})
	}
	wg.Wait()
	return nil
}

// worker exports one log to one sink.
type worker struct {
	cfg    Config
	log    string
	store  sekisho.AuditStore
	sink   sink
	cursor string
	next   uint64
	opts   Options
	m      *metrics
}

func (w *worker) run(ctx context.Context) {
	lg := w.opts.Logger.With("sink", w.cfg.Name, "log", w.log)
	labels := prometheus.Labels{"sink": w.cfg.Name, "log": w.log}
	w.m.next.With(labels).Set(float64(w.next))
	if o, ok := w.sink.(*otlpSink); ok {
		o.onReject = func(n int64, msg string) {
			w.m.rejected.With(labels).Add(float64(n))
			lg.Error("audit export: the OTLP collector rejected events for good", "rejected", n, "message", msg)
		}
	}
	backoff := time.Duration(0)
	failing := false
	fail := func(what string, err error) {
		w.m.failures.With(labels).Inc()
		backoff = min(max(2*backoff, w.opts.MinBackoff), w.opts.MaxBackoff)
		if !failing { // once per outage, not at every retry
			lg.Warn("audit export: "+what+" failed; retrying", "next_index", w.next, "error", err.Error())
			failing = true
		}
	}
	for ctx.Err() == nil {
		wait := w.cfg.PollInterval
		entries, err := w.store.AuditLeaves(ctx, w.next, w.cfg.BatchSize)
		switch {
		case err != nil:
			fail("reading the log", err)
			wait = backoff
		case len(entries) > 0:
			if err := w.sink.send(ctx, w.log, entries); err != nil {
				fail("delivery", err)
				wait = backoff
				break
			}
			next := entries[len(entries)-1].Index + 1
			if err := writeCursor(w.cursor, next); err != nil {
				// Delivered, but the cursor is not durable: the batch
				// will be sent again (at least once).
				fail("writing the cursor", err)
				wait = backoff
				break
			}
			w.next = next
			w.m.next.With(labels).Set(float64(next))
			w.m.sent.With(labels).Add(float64(len(entries)))
			if failing {
				lg.Info("audit export: delivering again", "next_index", next)
				failing = false
			}
			backoff = 0
			if len(entries) == w.cfg.BatchSize {
				wait = 0 // more to read now
			}
		}
		if wait > 0 {
			select {
			case <-ctx.Done():
			case <-time.After(wait):
			}
		}
	}
}
