package e2e

import (
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	coltrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"
)

// otlpReceiver is an OTLP/HTTP trace receiver: it keeps the spans posted
// to /v1/traces.
type otlpReceiver struct {
	mu    sync.Mutex
	spans []*tracepb.Span
}

func (o *otlpReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	var req coltrace.ExportTraceServiceRequest
	if r.URL.Path != "/v1/traces" || proto.Unmarshal(b, &req) != nil {
		http.Error(w, "bad export", http.StatusBadRequest)
		return
	}
	o.mu.Lock()
	for _, rs := range req.ResourceSpans {
		for _, ss := range rs.ScopeSpans {
			o.spans = append(o.spans, ss.Spans...)
		}
	}
	o.mu.Unlock()
	w.Header().Set("Content-Type", "application/x-protobuf")
	out, _ := proto.Marshal(&coltrace.ExportTraceServiceResponse{})
	w.Write(out)
}

func (o *otlpReceiver) find(name string) *tracepb.Span {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, s := range o.spans {
		if s.Name == name {
			return s
		}
	}
	return nil
}

// TestRequestLogsTracesAndClientRequestID: with --otlp-endpoint, a request
// that carries a W3C traceparent is exported as a span of that trace, child
// of the caller's span; every request has one structured log line with its
// route, status, principal and purpose and never a field value or a
// credential; a client's X-Request-Id is kept in the audit event as
// client_request_id while the server's id stays request_id.
func TestRequestLogsTracesAndClientRequestID(t *testing.T) {
	recv := &otlpReceiver{}
	collector := httptest.NewServer(recv)
	defer collector.Close()
	dir := filepath.Join(t.TempDir(), "data")
	srv := startServer(t, dir, masterKey(), "--otlp-endpoint", collector.URL, "--log-format", "json")
	admin := enrol(t, srv)
	auth := admin.authorize(t, srv)

	const traceID, parentID = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
	withTrace := func(r *http.Request) {
		auth(r)
		r.Header.Set("traceparent", "00-"+traceID+"-"+parentID+"-01")
		r.Header.Set("X-Request-Id", "client-req-42")
	}
	resp, b, err := do(srv.http, withTrace, "POST", srv.base+"/v1/collections/users/records", "support",
		[]byte(`{"region":"jp","fields":{"display_name":"Sakura","phone":"+81 90-1234-5678","email":"sakura@example.jp"}}`))
	if err != nil || resp.StatusCode != http.StatusCreated {
		t.Fatalf("create: %v %v %s", err, resp, b)
	}
	serverID := resp.Header.Get("X-Request-Id")
	if serverID == "" || serverID == "client-req-42" {
		t.Fatalf("server request id %q", serverID)
	}

	// The audit event: keyed by the server's id, the client's id beside it.
	ev := auditEvents(t, srv, auth)[serverID]
	if ev == nil || ev["client_request_id"] != "client-req-42" || ev["action"] != "create" {
		t.Fatalf("audit event %v: want client_request_id client-req-42", ev)
	}

	// The span, in the caller's trace, child of its span.
	name := "POST /v1/collections/{c}/records"
	deadline := time.Now().Add(15 * time.Second)
	var span *tracepb.Span
	for span = recv.find(name); span == nil && time.Now().Before(deadline); span = recv.find(name) {
		time.Sleep(100 * time.Millisecond)
	}
	if span == nil {
		t.Fatalf("no span %q exported", name)
	}
	if hex.EncodeToString(span.TraceId) != traceID || hex.EncodeToString(span.ParentSpanId) != parentID || span.Kind != tracepb.Span_SPAN_KIND_SERVER {
		t.Fatalf("span trace %x parent %x kind %v: want trace %s parent %s, server", span.TraceId, span.ParentSpanId, span.Kind, traceID, parentID)
	}

	// The log line of that request: what and who, never values or
	// credentials. A graceful stop writes out the lines held for a batch.
	srv.stop()
	log := readLog(dir)
	var line map[string]any
	for _, l := range strings.Split(log, "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(l), &m) == nil && m["msg"] == "request" && m["request_id"] == serverID {
			line = m
		}
	}
	if line == nil || line["method"] != "POST" || line["route"] != "/v1/collections/{c}/records" || line["status"] != float64(201) ||
		line["principal"] != "e2e-admin" || line["org"] != "operator" || line["purpose"] != "support" || line["trace_id"] != traceID ||
		line["client_request_id"] != "client-req-42" || line["duration_ms"] == nil {
		t.Fatalf("request log line %v", line)
	}
	for _, secret := range []string{"+819012345678", "sakura@example.jp", "Sakura", accessTokenIn(t, auth)} {
		if strings.Contains(log, secret) {
			t.Fatalf("the log holds %q", secret)
		}
	}
}

// accessTokenIn returns the access token auth puts on requests.
func accessTokenIn(t *testing.T, auth func(*http.Request)) string {
	req, _ := http.NewRequest("GET", "http://x/", nil)
	auth(req)
	tok := strings.TrimPrefix(req.Header.Get("Authorization"), "DPoP ")
	if len(tok) < 20 {
		t.Fatal("no token")
	}
	return tok
}
