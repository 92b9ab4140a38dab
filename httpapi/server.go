// Package httpapi is sekisho's HTTP API: JSON in and out, RFC 9457 problem
// details for every error, one middleware each for request ids, metrics,
// authentication and the purpose header. Authorisation and auditing happen
// in the vault, on every record, so no route can skip them.
package httpapi

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/sekisho/sekisho"
	"github.com/sekisho/sekisho/access"
	"github.com/sekisho/sekisho/audit"
	"github.com/sekisho/sekisho/edge"
	"github.com/sekisho/sekisho/guard"
	"github.com/sekisho/sekisho/incident"
	"github.com/sekisho/sekisho/passkey"
	"github.com/sekisho/sekisho/report"
	"github.com/sekisho/sekisho/vault"
)

// Authenticator turns a request's credential into a Caller. It returns an
// *sekisho.Error with code EUnauthorized (and a specific Type) when the
// credential is missing or refused.
type Authenticator interface {
	Authenticate(r *http.Request) (sekisho.Caller, error)
}

// Limits of request bodies.
const (
	MaxBodyBytes = sekisho.MaxRecordBytes
)

// Header names.
const (
	HeaderRequestID = "X-Request-Id"
	HeaderPurpose   = "Sekisho-Purpose"
)

// Roles the API knows about at this layer.
const (
	RoleAdmin   = "admin"
	RoleAuditor = "auditor"
)

// Server serves the API.
type Server struct {
	limiter       *rateLimiter // anonymous routes, per source; nil: none
	vault         *vault.Vault
	log           *slog.Logger
	auditLog      *audit.Log // the default log (events about no record)
	incidents     *incident.Service
	dir           *access.Directory // the vault's store's: principals, devices, grants
	auditLogs     *audit.Logs       // every log: the default and each region's
	verifierKey   string
	auth          Authenticator
	access        *access.Service
	guard         *guard.Guard
	alerts        AlertFeed     // the guard's recent alerts; nil without a guard
	grantCounters GrantCounters // the guard's counters of grants; nil without a guard
	grantTally    grantTally    // grants' use counted from the audit logs (GET /v1/grants/usage)
	alertStreams  streamCount   // the alert streams open, bounded
	passkeys      *passkey.Service
	reports       report.Config
	purposes      func(string) bool
	reg           *prometheus.Registry
	now           func() time.Time
	anon          anonLimiter
	proxies       edge.Proxies
	tracer        trace.Tracer

	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	mux      *http.ServeMux
}

// Config wires a Server.
type Config struct {
	Vault    *vault.Vault
	AuditLog *audit.Log
	// AuditLogs is the set of every audit log (the default and each
	// region's); nil means AuditLog alone, for a deployment without
	// regional stores. /v1/audit/* and incident scopes read every member.
	AuditLogs *audit.Logs
	// VerifierKey is the audit checkpoint verifier key (note format).
	VerifierKey string
	Auth        Authenticator
	Logger      *slog.Logger
	// Registry receives the server's metrics; MetricsHandler serves it.
	Registry *prometheus.Registry
	// Now is the clock of the events the server records itself (default
	// time.Now; the demo replays 2023 on a clock of its own).
	Now func() time.Time
	// KnownPurpose reports whether a Sekisho-Purpose value is known; nil
	// accepts any well-formed purpose.
	KnownPurpose func(string) bool
	// Access serves the control plane (orgs, principals, devices, grants,
	// policies, tokens); nil answers those routes with 503.
	Access *access.Service
	// Guard serves rules, quarantines and honeytokens; nil answers its
	// routes with 503. (The vault shows it every request; access refuses
	// quarantined callers and device keys through it.)
	Guard *guard.Guard
	// Reports names the controller (the configuration file's controller
	// section) in generated reports, for orgs without a profile.
	Reports report.Config
	// Tracer, when set, makes a span of every request (continuing a W3C
	// traceparent); serve sets one that exports over OTLP.
	Tracer trace.Tracer
	// AnonymousRate limits the anonymous routes (bootstrap, device
	// enrolment, token) to this many requests a minute per source address
	// (0: DefaultAnonymousRate; negative: no limit).
	AnonymousRate int
	// Proxies are the trusted proxies whose X-Forwarded-For or Forwarded
	// header names the source address of audit events; the zero value
	// trusts none (the source is the connection's peer).
	Proxies edge.Proxies
	// Console, when set, serves the web console at GET /console and
	// /console/ (package console); it is not an API route.
	Console http.Handler
	// Passkeys runs the WebAuthn ceremonies of the console's passkey
	// sign-in (/v1/webauthn/..., /v1/passkeys); nil answers them with 503
	// webauthn-not-configured.
	Passkeys *passkey.Service
}

// New returns a Server.
func New(c Config) *Server {
	s := &Server{vault: c.Vault, auditLog: c.AuditLog, verifierKey: c.VerifierKey, auth: c.Auth, log: c.Logger,
		reg: c.Registry, purposes: c.KnownPurpose, access: c.Access, guard: c.Guard, reports: c.Reports, now: c.Now, proxies: c.Proxies, tracer: c.Tracer, passkeys: c.Passkeys}
	if c.Guard != nil {
		s.alerts, s.grantCounters = c.Guard, c.Guard
	}
	switch {
	case c.AuditLogs != nil:
		s.auditLogs = c.AuditLogs
		s.auditLog = c.AuditLogs.Default()
	case c.AuditLog != nil:
		s.auditLogs = audit.Single(c.AuditLog)
	}
	if s.now == nil {
		s.now = time.Now
	}
	if c.Vault != nil {
		s.dir = access.NewDirectory(c.Vault.Store())
		s.incidents = &incident.Service{Store: c.Vault.Store(), Directory: s.dir, Now: s.now}
	}
	if s.incidents != nil && s.auditLog != nil {
		s.incidents.Audit = s.auditLog
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.reg == nil {
		s.reg = prometheus.NewRegistry()
	}
	s.requests = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sekisho_http_requests_total",
		Help: "HTTP requests by route and status code."}, []string{"route", "code"})
	s.latency = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "sekisho_http_request_duration_seconds",
		Help: "HTTP request latency by route.", Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, 1}}, []string{"route"})
	s.reg.MustRegister(s.requests, s.latency)
	switch {
	case c.AnonymousRate == 0:
		s.limiter = newRateLimiter(DefaultAnonymousRate)
	case c.AnonymousRate > 0:
		s.limiter = newRateLimiter(c.AnonymousRate)
	}
	s.mux = http.NewServeMux()
	for _, rt := range s.routes() {
		if rt.Method == "POST" && rt.Pattern == "/v1/token" {
			rt.Handler = s.oauthErrors(rt.Handler)
		}
		if rt.Method == "POST" && (rt.Pattern == "/v1/token" || rt.Pattern == "/v1/devices" || rt.Pattern == "/v1/bootstrap") {
			rt.Handler = s.anonLimit(rt.Handler)
		}
		if rt.Method == "POST" && (rt.Pattern == "/v1/devices/attestation-challenge" || isPasskeyCeremony(rt)) {
			rt.Handler = s.anonLimit(rt.Handler)
		}
		s.mux.Handle(rt.Method+" "+rt.Pattern, s.wrap(rt))
	}
	if c.Console != nil {
		s.mux.Handle("GET /console", c.Console)
		s.mux.Handle("GET /console/", c.Console)
	}
	return s
}

// route is one entry of the API; openapi.json documents exactly these.
type route struct {
	Method  string
	Pattern string
	// Auth is false for the probes, metrics and the OpenAPI document.
	Auth bool
	// Purpose requires the Sekisho-Purpose header (data requests).
	Purpose bool
	Handler func(w http.ResponseWriter, r *http.Request, c sekisho.Caller) error
}

func (s *Server) routes() []route {
	return append([]route{
		{"GET", "/healthz", false, false, s.healthz},
		{"GET", "/readyz", false, false, s.readyz},
		{"GET", "/openapi.json", false, false, s.openapi},

		{"GET", "/v1/collections", true, false, s.listCollections},
		{"POST", "/v1/collections", true, false, s.createCollection},
		{"GET", "/v1/collections/{c}", true, false, s.getCollection},
		{"PUT", "/v1/collections/{c}", true, false, s.putCollection},

		{"POST", "/v1/collections/{c}/records", true, true, s.createRecord},
		{"GET", "/v1/collections/{c}/records/{id}", true, true, s.getRecord},
		{"PATCH", "/v1/collections/{c}/records/{id}", true, true, s.updateRecord},
		{"DELETE", "/v1/collections/{c}/records/{id}", true, true, s.eraseRecord},
		{"POST", "/v1/collections/{c}/lookup", true, true, s.lookup},
		{"POST", "/v1/collections/{c}/records:batchGet", true, true, s.batchGet},

		{"GET", "/v1/audit/checkpoint", true, false, s.auditCheckpoint},
		{"GET", "/v1/audit/verifier-key", true, false, s.auditVerifierKey},
		{"GET", "/v1/audit/proof/inclusion", true, false, s.auditInclusion},
		{"GET", "/v1/audit/proof/consistency", true, false, s.auditConsistency},
		{"GET", "/v1/audit/events", true, false, s.auditEvents},
	}, slices.Concat(s.accessRoutes(), s.guardRoutes(), s.incidentRoutes(), s.lifecycleRoutes(), s.keyRoutes(), s.passkeyRoutes())...)
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// Unknown routes get a problem too, with a request id.
	h, pattern := s.mux.Handler(r)
	if pattern == "" {
		ctx := withRequestID(r.Context(), newRequestID())
		r = r.WithContext(ctx)
		w.Header().Set(HeaderRequestID, requestID(ctx))
		status, typ := http.StatusNotFound, ProblemRouteNotFound
		probe := &probeWriter{h: http.Header{}}
		h.ServeHTTP(probe, r)
		if probe.status == http.StatusMethodNotAllowed {
			status, typ = http.StatusMethodNotAllowed, ProblemMethod
			w.Header().Set("Allow", probe.h.Get("Allow"))
		}
		writeProblem(w, problemf(r, status, typ, fmt.Sprintf("no route for %s %s", r.Method, r.URL.Path)))
		return
	}
	s.mux.ServeHTTP(w, r)
}

type ctxKey int

const (
	keyRequestID ctxKey = iota
	keySource
)

func withRequestID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, keyRequestID, id)
}

func requestID(ctx context.Context) string {
	id, _ := ctx.Value(keyRequestID).(string)
	return id
}

// newRequestID returns 128 bits in hex: the milliseconds since 1970 in the
// first 48 and 80 random bits. Ids made later sort after, so the audit
// log's request-id index (SQLite audit_request, PostgreSQL
// audit_by_request) takes each new event at its end instead of on a random
// page: one page less written per event on the hot read, and an index that
// stays cached at any log size.
func newRequestID() string {
	return requestIDAt(time.Now())
}

func requestIDAt(t time.Time) string {
	var b [16]byte
	ms := uint64(t.UnixMilli())
	for i := range 6 {
		b[i] = byte(ms >> (40 - 8*i))
	}
	rand.Read(b[6:])
	return hex.EncodeToString(b[:])
}

// wrap is the middleware chain of a route: request id, recovery, metrics,
// body limit, authentication, purpose.
func (s *Server) wrap(rt route) http.Handler {
	name := rt.Method + " " + rt.Pattern
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		id := newRequestID()
		ctx := withRequestID(r.Context(), id)
		ctx = context.WithValue(ctx, keySource, s.proxies.ClientAddr(r))
		clientID := clientRequestID(r)
		var span trace.Span
		if s.tracer != nil {
			// W3C traceparent: the span continues the caller's trace.
			ctx = propagation.TraceContext{}.Extract(ctx, propagation.HeaderCarrier(r.Header))
			ctx, span = s.tracer.Start(ctx, name, trace.WithSpanKind(trace.SpanKindServer),
				trace.WithAttributes(attribute.String("http.request.method", r.Method), attribute.String("http.route", rt.Pattern),
					attribute.String("sekisho.request_id", id)))
		}
		// Writes a store accepted for this request and has not made durable
		// yet (the embedded store's DPoP replay records) are durable before
		// the first byte of the answer (statusRecorder.gate).
		ctx, durable := sekisho.WithDurable(ctx)
		r = r.WithContext(ctx)
		w.Header().Set(HeaderRequestID, id)
		if s.access != nil {
			if n := s.access.Nonce(); n != "" {
				w.Header().Set(access.HeaderDPoPNonce, n)
			}
		}
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		rec.before = func() error { return durable.Wait(ctx) }
		rec.fail = func(err error) int {
			if !sekisho.IsStorageFull(err) {
				err = &sekisho.Error{Code: sekisho.EUnavailable, Type: "replay-state-unavailable",
					Message: "the replay state cannot be recorded; nothing was returned; retry shortly", Err: err}
			}
			raw := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
			s.writeError(raw, r, err)
			return raw.status
		}
		var c sekisho.Caller
		defer func() {
			if p := recover(); p != nil {
				s.log.Error("panic", "request_id", id, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
				if !rec.wrote {
					s.writeError(rec, r, sekisho.Errorf(sekisho.EInternal, "internal error"))
				}
			}
			d := time.Since(start)
			s.requests.WithLabelValues(name, strconv.Itoa(rec.status)).Inc()
			s.latency.WithLabelValues(name).Observe(d.Seconds())
			s.logRequest(r, rt, rec.status, d, id, clientID, c, span)
		}()
		if r.Body != nil {
			r.Body = http.MaxBytesReader(rec, r.Body, MaxBodyBytes)
		}
		if rt.Auth {
			var err error
			c, err = s.auth.Authenticate(r)
			if err != nil {
				s.recordAuthFailure(r, rt, c, err)
				s.writeError(rec, r, err)
				return
			}
			c.RequestID, c.ClientRequestID = id, clientID
			c.Source = sourceAddr(r)
		}
		if rt.Purpose {
			p := r.Header.Get(HeaderPurpose)
			if p == "" {
				writeProblem(rec, problemf(r, http.StatusBadRequest, ProblemPurposeRequired,
					"every data request must state its purpose in the "+HeaderPurpose+" header (for example: support)"))
				return
			}
			if !sekisho.ValidPurpose(p) || (s.purposes != nil && !s.purposes(p)) {
				pr := problemf(r, http.StatusBadRequest, "purpose-unknown", fmt.Sprintf("purpose %q is not a known purpose", p))
				if s.access != nil {
					pr.Purposes = s.access.PurposeNames()
					pr.Detail += fmt.Sprintf("; the known purposes are %s (sekisho purposes says which roles and grants allow each)",
						strings.Join(pr.Purposes, ", "))
				}
				writeProblem(rec, pr)
				return
			}
			c.Purpose = p
		}
		if err := rt.Handler(rec, r, c); err != nil {
			s.writeError(rec, r, err)
		}
	})
}

// clientRequestID is the client's own X-Request-Id, when it is a short
// printable token (anything else is dropped: it goes into the signed log).
func clientRequestID(r *http.Request) string {
	v := r.Header.Get(HeaderRequestID)
	if len(v) == 0 || len(v) > 128 {
		return ""
	}
	for i := 0; i < len(v); i++ {
		if v[i] < 0x21 || v[i] > 0x7e {
			return ""
		}
	}
	return v
}

// logRequest writes the request's one log line (and ends its span): what
// was asked and by whom, never a field value, token or proof.
func (s *Server) logRequest(r *http.Request, rt route, status int, d time.Duration, id, clientID string, c sekisho.Caller, span trace.Span) {
	attrs := []slog.Attr{
		slog.String("method", r.Method), slog.String("route", rt.Pattern), slog.Int("status", status),
		slog.Float64("duration_ms", float64(d.Microseconds())/1000), slog.String("request_id", id),
	}
	if clientID != "" {
		attrs = append(attrs, slog.String("client_request_id", clientID))
	}
	if c.Principal != "" {
		attrs = append(attrs, slog.String("principal", c.Principal), slog.String("org", c.Org))
	}
	if c.Purpose != "" {
		attrs = append(attrs, slog.String("purpose", c.Purpose))
	}
	if span != nil {
		sc := span.SpanContext()
		attrs = append(attrs, slog.String("trace_id", sc.TraceID().String()))
		span.SetAttributes(attribute.Int("http.response.status_code", status))
		if c.Principal != "" {
			span.SetAttributes(attribute.String("sekisho.principal", c.Principal), attribute.String("sekisho.org", c.Org))
		}
		if status >= 500 {
			span.SetStatus(codes.Error, http.StatusText(status))
		}
		span.End()
	}
	s.log.LogAttrs(r.Context(), slog.LevelInfo, "request", attrs...)
}

// recordAuthFailure audits a refused credential: an authentication failure
// is a decision too, and bursts of them are what the guard looks for.
//
// An Authenticator may return the caller along with the error when the
// credential itself was valid but its holder is refused (a quarantine): the
// event then names the principal, org and device, so that an incident's
// scope counts the attempt.
func (s *Server) recordAuthFailure(r *http.Request, rt route, c sekisho.Caller, err error) {
	if s.auditLog == nil {
		return
	}
	src := sourceAddr(r)
	ev := sekisho.Event{Time: s.now(), RequestID: requestID(r.Context()), ClientRequestID: clientRequestID(r), Source: src,
		Purpose: r.Header.Get(HeaderPurpose), Action: "authenticate", Decision: sekisho.Deny, Policy: "authentication",
		Reason: sekisho.Message(err), Detail: rt.Method + " " + rt.Pattern,
		Principal: c.Principal, Org: c.Org, Device: c.Device}
	if c.Principal != "" {
		// An identified caller: what it asked for is part of the attempt.
		ev.Collection = r.PathValue("c")
		if id := r.PathValue("id"); id != "" {
			ev.Records = []string{id}
		}
	} else {
		// Anyone can send unauthenticated requests: record them, but at
		// most anonPerMinute per source address a minute, so that the
		// signed log cannot be flooded; the next recorded one says how
		// many were folded into it. Path values are not copied: they are
		// the sender's choice.
		ok, folded := s.anon.allow(src, ev.Time)
		if !ok {
			return
		}
		if folded > 0 {
			ev.Detail += fmt.Sprintf("; %d more failures from this source in the last minute folded in", folded)
		}
	}
	if _, aerr := s.auditLog.Append(r.Context(), ev); aerr != nil {
		s.log.Error("audit append failed", "request_id", ev.RequestID, "error", aerr.Error())
	}
}

// Limits of the audit of unauthenticated failures.
const (
	anonPerMinute = 20
	anonSources   = 10000
)

// anonLimiter counts unauthenticated failures per source and minute.
type anonLimiter struct {
	mu      sync.Mutex
	minute  int64
	seen    map[string]int // failures this minute
	dropped map[string]int // not recorded since the last recorded one
}

// allow reports whether a failure from src is recorded now, and how many
// earlier ones were not.
func (l *anonLimiter) allow(src string, now time.Time) (bool, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	m := now.Unix() / 60
	if m != l.minute || l.seen == nil || len(l.seen) > anonSources {
		l.minute, l.seen = m, map[string]int{}
		if l.dropped == nil || len(l.dropped) > anonSources {
			l.dropped = map[string]int{}
		}
	}
	l.seen[src]++
	if l.seen[src] > anonPerMinute {
		l.dropped[src]++
		return false, 0
	}
	folded := l.dropped[src]
	delete(l.dropped, src)
	return true, folded
}

// sourceAddr is the client's address: the one the trusted proxies name,
// as the middleware found it, or else the connection's peer.
func sourceAddr(r *http.Request) string {
	if src, ok := r.Context().Value(keySource).(string); ok {
		return src
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

type statusRecorder struct {
	http.ResponseWriter
	status int
	wrote  bool
	// before, if set, runs once before the first byte of the answer; when
	// it fails, fail answers instead (returning its status) and what the
	// handler writes is dropped.
	before func() error
	fail   func(error) int
	failed bool
}

// gate runs before; it reports whether the handler's answer may go out.
func (s *statusRecorder) gate() bool {
	if s.before != nil {
		f := s.before
		s.before = nil
		if err := f(); err != nil {
			s.failed, s.wrote = true, true
			s.status = s.fail(err)
		}
	}
	return !s.failed
}

func (s *statusRecorder) WriteHeader(code int) {
	if !s.gate() {
		return
	}
	if !s.wrote {
		s.status, s.wrote = code, true
	}
	s.ResponseWriter.WriteHeader(code)
}

// Unwrap lets http.ResponseController reach the connection (flushes and
// deadlines of the alert stream).
func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

func (s *statusRecorder) Write(b []byte) (int, error) {
	if !s.gate() {
		return len(b), nil
	}
	s.wrote = true
	return s.ResponseWriter.Write(b)
}

// probeWriter records what the mux's own not-found or method-not-allowed
// handler would answer, so that we answer it as a problem instead.
type probeWriter struct {
	h      http.Header
	status int
}

func (p *probeWriter) Header() http.Header         { return p.h }
func (p *probeWriter) Write(b []byte) (int, error) { return len(b), nil }
func (p *probeWriter) WriteHeader(code int)        { p.status = code }

func (s *Server) healthz(w http.ResponseWriter, _ *http.Request, _ sekisho.Caller) error {
	w.Header().Set("Content-Type", "text/plain")
	_, err := w.Write([]byte("ok\n"))
	return err
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request, _ sekisho.Caller) error {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := s.vault.Ready(ctx); err != nil {
		return err
	}
	w.Header().Set("Content-Type", "text/plain")
	_, err := w.Write([]byte("ready\n"))
	return err
}

// MetricsHandler serves the server's Prometheus metrics. It is not a route
// of the API: serve puts it on a listener of its own (--metrics-addr), so
// that the data listener does not inform an attacker.
func (s *Server) MetricsHandler() http.Handler {
	return promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{})
}

func splitList(s string) []string {
	if s == "" {
		return nil
	}
	parts := strings.Split(s, ",")
	out := parts[:0]
	for _, p := range parts {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// Routes lists the served routes as "METHOD /path/{param}", in the form the
// OpenAPI document uses; a test compares the two.
func Routes() []string {
	var s Server
	var out []string
	for _, rt := range s.routes() {
		out = append(out, rt.Method+" "+rt.Pattern)
	}
	return out
}
