package export

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/sekisho/sekisho"
)

// ioTimeout bounds a dial, a handshake, a write and the wait for the
// receiver's acknowledgement.
const ioTimeout = 30 * time.Second

// streamSink sends to a receiver over one TLS connection: JSON lines or
// RFC 5424 syslog messages with octet-counting framing (RFC 5425).
type streamSink struct {
	cfg    Config
	tls    *tls.Config
	frame  func(buf *bytes.Buffer, log string, e sekisho.AuditEntry)
	raw    *net.TCPConn
	conn   *tls.Conn
	header string // syslog: "HOSTNAME sekisho - audit [SD-ID"
}

func newStreamSink(c Config) (*streamSink, error) {
	host, _, err := net.SplitHostPort(c.Address)
	if err != nil {
		return nil, fmt.Errorf("audit export sink %s: address: %w", c.Name, err)
	}
	tc, err := c.tlsConfig(host)
	if err != nil {
		return nil, err
	}
	s := &streamSink{cfg: c, tls: tc}
	if c.Type == TypeJSONLines {
		s.frame = jsonLine
		return s, nil
	}
	hostname := c.Hostname
	if hostname == "" {
		if hostname, err = os.Hostname(); err != nil {
			hostname = "-"
		}
	}
	sdid := c.SDID
	if sdid == "" {
		sdid = DefaultSDID
	}
	facility := 13
	if c.Facility != nil {
		facility = *c.Facility
	}
	s.header = syslogField(hostname, 255) + " sekisho - audit [" + sdid
	s.frame = func(buf *bytes.Buffer, log string, e sekisho.AuditEntry) {
		syslogFrame(buf, facility, s.header, log, e)
	}
	return s, nil
}

// line is one JSON line: the event is the stored leaf, byte for byte.
type line struct {
	Log   string          `json:"log"`
	Index uint64          `json:"index"`
	Event json.RawMessage `json:"event"`
}

func jsonLine(buf *bytes.Buffer, log string, e sekisho.AuditEntry) {
	b, err := json.Marshal(line{Log: log, Index: e.Index, Event: e.Leaf})
	if err != nil {
		// A leaf is valid JSON (sekisho.MarshalEvent wrote it); should one not
		// be, it still leaves as a JSON string rather than stopping the
		// export.
		b, _ = json.Marshal(struct {
			Log   string `json:"log"`
			Index uint64 `json:"index"`
			Raw   string `json:"raw"`
		}{log, e.Index, string(e.Leaf)})
	}
	buf.Write(b)
	buf.WriteByte('\n')
}

// DefaultSDID is the structured data ID of syslog messages unless sd_id
// says otherwise: 32473 is the enterprise number RFC 5612 reserves for
// documentation.
const DefaultSDID = "sekisho@32473"

// sdNameRE is RFC 5424's SD-NAME (printable US-ASCII but '=', ' ', ']',
// '"', at most 32) with an optional @enterprise part.
var sdNameRE = regexp.MustCompile(`^[!#-<>-\\^-~]{1,32}$`)

// Syslog severities (RFC 5424 6.2.1).
const (
	severityNotice        = 5
	severityInformational = 6
)

// syslogFrame writes one RFC 5424 message framed by octet counting:
//
//	LEN SP <PRI>1 TIMESTAMP HOSTNAME sekisho - audit [SD-ID log="L" index="N"] EVENT-JSON
func syslogFrame(buf *bytes.Buffer, facility int, header, log string, e sekisho.AuditEntry) {
	sev := severityInformational
	if e.Decision != "allow" {
		sev = severityNotice
	}
	ts := "-"
	if !e.Time.IsZero() {
		ts = e.Time.UTC().Format("2006-01-02T15:04:05.000000Z07:00")
	}
	msg := "<" + strconv.Itoa(facility*8+sev) + ">1 " + ts + " " + header +
		` log="` + sdValue(log) + `" index="` + strconv.FormatUint(e.Index, 10) + `"] `
	buf.WriteString(strconv.Itoa(len(msg) + len(e.Leaf)))
	buf.WriteByte(' ')
	buf.WriteString(msg)
	buf.Write(e.Leaf)
}

// syslogField makes s a header field: printable US-ASCII without spaces, at
// most n characters, "-" when empty.
func syslogField(s string, n int) string {
	s = strings.Map(func(r rune) rune {
		if r < 33 || r > 126 {
			return -1
		}
		return r
	}, s)
	if len(s) > n {
		s = s[:n]
	}
	if s == "" {
		return "-"
	}
	return s
}

// sdValue escapes a PARAM-VALUE ('"', '\' and ']' get a backslash).
func sdValue(s string) string {
	return strings.NewReplacer(`\`, `\\`, `"`, `\"`, `]`, `\]`).Replace(s)
}

func (s *streamSink) dial(ctx context.Context) error {
	d := net.Dialer{Timeout: ioTimeout, KeepAlive: 30 * time.Second}
	c, err := d.DialContext(ctx, "tcp", s.cfg.Address)
	if err != nil {
		return err
	}
	raw := c.(*net.TCPConn)
	tc := tls.Client(raw, s.tls)
	hctx, cancel := context.WithTimeout(ctx, ioTimeout)
	defer cancel()
	if err := tc.HandshakeContext(hctx); err != nil {
		raw.Close()
		return fmt.Errorf("TLS handshake with %s: %w", s.cfg.Address, err)
	}
	s.raw, s.conn = raw, tc
	return nil
}

func (s *streamSink) send(ctx context.Context, log string, entries []sekisho.AuditEntry) error {
	if s.conn == nil {
		if err := s.dial(ctx); err != nil {
			return err
		}
	}
	var buf bytes.Buffer
	for _, e := range entries {
		s.frame(&buf, log, e)
	}
	s.conn.SetWriteDeadline(time.Now().Add(ioTimeout))
	if _, err := s.conn.Write(buf.Bytes()); err != nil {
		s.close()
		return fmt.Errorf("write to %s: %w", s.cfg.Address, err)
	}
	if err := waitAcked(ctx, s.raw, ioTimeout); err != nil {
		s.close()
		return fmt.Errorf("%s: %w", s.cfg.Address, err)
	}
	return nil
}

func (s *streamSink) close() {
	if s.conn != nil {
		s.conn.SetWriteDeadline(time.Now().Add(time.Second))
		s.conn.Close()
		s.conn, s.raw = nil, nil
	}
}
