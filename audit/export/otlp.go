package export

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	collogs "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	common "go.opentelemetry.io/proto/otlp/common/v1"
	logs "go.opentelemetry.io/proto/otlp/logs/v1"
	resource "go.opentelemetry.io/proto/otlp/resource/v1"
	"google.golang.org/protobuf/proto"

	"github.com/sekisho/sekisho"
)

// otlpSink posts OTLP logs (protobuf over HTTPS) to a collector; the 2xx
// answer is the acknowledgement.
type otlpSink struct {
	cfg      Config
	client   *http.Client
	onReject func(n int64, msg string)
}

func newOTLPSink(c Config) (*otlpSink, error) {
	u, err := url.Parse(c.Endpoint)
	if err != nil {
		return nil, fmt.Errorf("audit export sink %s: endpoint: %w", c.Name, err)
	}
	tc, err := c.tlsConfig(u.Hostname())
	if err != nil {
		return nil, err
	}
	tr := &http.Transport{TLSClientConfig: tc, TLSHandshakeTimeout: ioTimeout, ResponseHeaderTimeout: ioTimeout,
		MaxIdleConnsPerHost: 1, IdleConnTimeout: 90 * time.Second, ForceAttemptHTTP2: true}
	return &otlpSink{cfg: c, client: &http.Client{Transport: tr, Timeout: 2 * ioTimeout,
		// A collector that redirects is misconfigured: do not follow
		// audit events to another host.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}, nil
}

func str(k, v string) *common.KeyValue {
	return &common.KeyValue{Key: k, Value: &common.AnyValue{Value: &common.AnyValue_StringValue{StringValue: v}}}
}

// otlpRequest is the ExportLogsServiceRequest of one batch.
func otlpRequest(log string, entries []sekisho.AuditEntry, now time.Time) *collogs.ExportLogsServiceRequest {
	recs := make([]*logs.LogRecord, 0, len(entries))
	for _, e := range entries {
		sev, sevText := logs.SeverityNumber_SEVERITY_NUMBER_INFO, "INFO"
		if e.Decision != "allow" {
			sev, sevText = logs.SeverityNumber_SEVERITY_NUMBER_WARN, "WARN"
		}
		var t uint64
		if !e.Time.IsZero() {
			t = uint64(e.Time.UnixNano())
		}
		recs = append(recs, &logs.LogRecord{
			TimeUnixNano:         t,
			ObservedTimeUnixNano: uint64(now.UnixNano()),
			SeverityNumber:       sev,
			SeverityText:         sevText,
			EventName:            "sekisho.audit",
			Body:                 &common.AnyValue{Value: &common.AnyValue_StringValue{StringValue: string(e.Leaf)}},
			Attributes: []*common.KeyValue{
				str("sekisho.audit.log", log),
				{Key: "sekisho.audit.index", Value: &common.AnyValue{Value: &common.AnyValue_IntValue{IntValue: int64(e.Index)}}},
				str("sekisho.audit.request_id", e.RequestID),
				str("sekisho.audit.principal", e.Principal),
				str("sekisho.audit.decision", e.Decision),
			},
		})
	}
	return &collogs.ExportLogsServiceRequest{ResourceLogs: []*logs.ResourceLogs{{
		Resource:  &resource.Resource{Attributes: []*common.KeyValue{str("service.name", "sekisho")}},
		ScopeLogs: []*logs.ScopeLogs{{Scope: &common.InstrumentationScope{Name: "github.com/sekisho/sekisho/audit/export"}, LogRecords: recs}},
	}}}
}

func (s *otlpSink) send(ctx context.Context, log string, entries []sekisho.AuditEntry) error {
	body, err := proto.Marshal(otlpRequest(log, entries, time.Now()))
	if err != nil {
		return fmt.Errorf("encode OTLP logs: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.cfg.Endpoint, bytes.NewReader(body))
	if err != nil {
		return err
	}
	for k, v := range s.cfg.Headers {
		req.Header.Set(k, v)
	}
	req.Header.Set("Content-Type", "application/x-protobuf")
	resp, err := s.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	rb, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode/100 != 2 {
		// Every failure is retried, also those the OTLP spec calls
		// permanent (400): dropping audit events is not an option; the
		// failures counter and the log show a collector that refuses.
		return fmt.Errorf("OTLP collector %s answered %s", s.cfg.Endpoint, resp.Status)
	}
	if err != nil {
		return fmt.Errorf("OTLP collector %s: reading the answer: %w", s.cfg.Endpoint, err)
	}
	var out collogs.ExportLogsServiceResponse
	if len(rb) > 0 && resp.Header.Get("Content-Type") == "application/x-protobuf" {
		if err := proto.Unmarshal(rb, &out); err == nil && out.GetPartialSuccess().GetRejectedLogRecords() > 0 && s.onReject != nil {
			s.onReject(out.GetPartialSuccess().GetRejectedLogRecords(), out.GetPartialSuccess().GetErrorMessage())
		}
	}
	return nil
}

func (s *otlpSink) close() { s.client.CloseIdleConnections() }
