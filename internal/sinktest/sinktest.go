// Package sinktest has real receivers of the audit export's sinks for
// tests: a TLS listener reading JSON lines, a TLS syslog server parsing
// octet-counted RFC 5424 messages with leodido/go-syslog, and an OTLP/HTTP
// logs receiver decoding the protobuf. Each checks what it receives (the
// event decodes strictly, headers agree with it) and can be stopped and
// started again on the same address.
package sinktest

import (
	"bufio"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"sync"
	"testing"

	syslog "github.com/leodido/go-syslog/v4"
	"github.com/leodido/go-syslog/v4/octetcounting"
	"github.com/leodido/go-syslog/v4/rfc5424"
	collogs "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	common "go.opentelemetry.io/proto/otlp/common/v1"
	"google.golang.org/protobuf/proto"

	"github.com/sekisho/sekisho"
)

// DefaultSDID is the syslog structured data ID the receiver reads.
const DefaultSDID = "sekisho@32473"

// APIKey is the X-Api-Key header the OTLP receiver requires.
const APIKey = "k1"

// New returns a receiver of kind (json-lines, syslog or otlp) with the
// server certificate cert; Start starts it.
func New(t testing.TB, kind string, cert tls.Certificate) *Receiver {
	return &Receiver{t: t, kind: kind, server: cert}
}

// Addr is host:port of the receiver (after the first Start).
func (r *Receiver) Addr() string { return r.addr }

// Bad returns the messages that did not decode as they should.
func (r *Receiver) Bad() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.bad)
}

// Got is one event as a receiver decoded it.
type Got struct {
	Log   string
	Index uint64
	Event string // the event JSON, which must be the stored leaf
}

// Receiver is a real sink server (TLS listener or OTLP/HTTP server) that
// can be stopped and started again on the same address.
type Receiver struct {
	t      testing.TB
	kind   string
	addr   string
	server tls.Certificate

	mu      sync.Mutex
	got     []Got
	bad     []string // messages that did not decode as they should
	ln      net.Listener
	conns   []net.Conn
	hs      *httptest.Server
	serving sync.WaitGroup
}

func (r *Receiver) record(g Got) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, g)
}

func (r *Receiver) fail(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.bad = append(r.bad, fmt.Sprintf(format, args...))
}

// Snapshot returns what arrived so far, in order of arrival.
func (r *Receiver) Snapshot() []Got {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.got)
}

// Start listens (again) on the receiver's address (a free port the first
// time) and serves until Stop.
func (r *Receiver) Start() {
	r.t.Helper()
	addr := r.addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		r.t.Fatal(err)
	}
	r.addr = ln.Addr().String()
	tc := &tls.Config{Certificates: []tls.Certificate{r.server}, MinVersion: tls.VersionTLS12}
	if r.kind == "otlp" {
		r.hs = httptest.NewUnstartedServer(http.HandlerFunc(r.otlp))
		r.hs.Listener.Close()
		r.hs.Listener = ln
		r.hs.TLS = tc
		r.hs.StartTLS()
		return
	}
	r.ln = tls.NewListener(ln, tc)
	r.serving.Go(func() {
		for {
			c, err := r.ln.Accept()
			if err != nil {
				return
			}
			r.mu.Lock()
			r.conns = append(r.conns, c)
			r.mu.Unlock()
			r.serving.Go(func() {
				defer c.Close()
				if r.kind == "syslog" {
					r.syslog(c)
				} else {
					r.jsonLines(c)
				}
			})
		}
	})
}

// Stop closes the receiver: listener and connections.
func (r *Receiver) Stop() {
	if r.hs != nil {
		r.hs.Close()
		r.hs = nil
		return
	}
	r.ln.Close()
	r.mu.Lock()
	for _, c := range r.conns {
		c.Close()
	}
	r.conns = nil
	r.mu.Unlock()
	r.serving.Wait()
}

func (r *Receiver) jsonLines(c net.Conn) {
	sc := bufio.NewScanner(c)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var l struct {
			Log   string          `json:"log"`
			Index *uint64         `json:"index"`
			Event json.RawMessage `json:"event"`
		}
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil || l.Index == nil {
			r.fail("json line %q: %v", sc.Text(), err)
			continue
		}
		r.record(Got{Log: l.Log, Index: *l.Index, Event: string(l.Event)})
	}
}

// syslog parses the stream with leodido/go-syslog's octet-counting and
// RFC 5424 parsers (strict: no best effort).
func (r *Receiver) syslog(c net.Conn) {
	p := octetcounting.NewParser(syslog.WithListener(func(res *syslog.Result) {
		if res.Error != nil {
			r.fail("syslog: %v", res.Error)
			return
		}
		m, ok := res.Message.(*rfc5424.SyslogMessage)
		if !ok || m.StructuredData == nil || m.Message == nil || m.Appname == nil || m.MsgID == nil || m.Timestamp == nil {
			r.fail("syslog: incomplete message %+v", res.Message)
			return
		}
		sd := (*m.StructuredData)[DefaultSDID]
		idx, err := strconv.ParseUint(sd["index"], 10, 64)
		if err != nil || *m.Appname != "sekisho" || *m.MsgID != "audit" || m.Version != 1 || *m.Facility != 13 {
			r.fail("syslog: header %+v sd %v", m.Base, sd)
			return
		}
		ev, err := sekisho.UnmarshalEvent([]byte(*m.Message))
		if err != nil {
			r.fail("syslog: event %q: %v", *m.Message, err)
			return
		}
		wantSev := uint8(6)
		if ev.Decision == sekisho.Deny {
			wantSev = 5
		}
		if !m.Timestamp.Equal(ev.Time) || *m.Severity != wantSev {
			r.fail("syslog: timestamp %s severity %d for event at %s, %s", m.Timestamp, *m.Severity, ev.Time, ev.Decision)
		}
		r.record(Got{Log: sd["log"], Index: idx, Event: *m.Message})
	}), syslog.WithMaxMessageLength(1<<20))
	p.Parse(c)
}

// otlp decodes an ExportLogsServiceRequest (protobuf over HTTP).
func (r *Receiver) otlp(w http.ResponseWriter, req *http.Request) {
	b, err := io.ReadAll(req.Body)
	if err != nil || req.URL.Path != "/v1/logs" || req.Header.Get("Content-Type") != "application/x-protobuf" || req.Header.Get("X-Api-Key") != APIKey {
		r.fail("otlp request %s %q: %v", req.URL.Path, req.Header.Get("Content-Type"), err)
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	var msg collogs.ExportLogsServiceRequest
	if err := proto.Unmarshal(b, &msg); err != nil {
		r.fail("otlp: %v", err)
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	for _, rl := range msg.GetResourceLogs() {
		for _, sl := range rl.GetScopeLogs() {
			for _, lr := range sl.GetLogRecords() {
				attrs := map[string]any{}
				for _, kv := range lr.GetAttributes() {
					switch v := kv.GetValue().GetValue().(type) {
					case *common.AnyValue_IntValue:
						attrs[kv.GetKey()] = v.IntValue
					case *common.AnyValue_StringValue:
						attrs[kv.GetKey()] = v.StringValue
					}
				}
				ev, err := sekisho.UnmarshalEvent([]byte(lr.GetBody().GetStringValue()))
				idx, ok := attrs["sekisho.audit.index"].(int64)
				if err != nil || !ok || lr.GetEventName() != "sekisho.audit" || lr.GetTimeUnixNano() != uint64(ev.Time.UnixNano()) || attrs["sekisho.audit.decision"] != ev.Decision {
					r.fail("otlp record %v: %v", lr, err)
					continue
				}
				log, _ := attrs["sekisho.audit.log"].(string)
				r.record(Got{Log: log, Index: uint64(idx), Event: lr.GetBody().GetStringValue()})
			}
		}
	}
	w.Header().Set("Content-Type", "application/x-protobuf")
	out, _ := proto.Marshal(&collogs.ExportLogsServiceResponse{})
	w.Write(out)
}
