// Package export streams the audit log to outside sinks (a SIEM): JSON lines
// over TCP+TLS, syslog (RFC 5424 over TLS, RFC 5425 octet-counting framing)
// and OTLP logs (protobuf over HTTPS), each with a durable cursor.
//
// # Never in the request path
//
// A request waits for its event to be durable in the store (audit.Log.Append)
// and for nothing else. Export reads the stored log afterwards, on its own
// goroutines: one worker per sink and per log (the default store's log and
// each region's log), each reading pages of leaves with AuditLeaves from its
// cursor and sending them. A sink that is down, slow or refusing costs the
// vault a reconnection attempt with backoff (1 s doubling to 30 s) and
// nothing else; no request is slowed or failed by it.
//
// # Cursors and delivery
//
// Each worker keeps the index of the next event to send in a cursor file,
// CursorDir/<sink>.<log>.cursor, written atomically (temporary file, fsync,
// rename, fsync of the directory) after each batch the sink acknowledged. A
// sink that was down catches up from its cursor when it is back, and a
// restarted server goes on from the cursor, so nothing is missed. Delivery
// is at least once: a batch that was delivered but whose cursor was not yet
// written (a crash, a connection broken before the acknowledgement came) is
// sent again. Every exported event carries its log name and index, which
// identify it: a receiver that must not count an event twice drops an
// (log, index) it has seen. The event itself is the leaf exactly as hashed
// into the Merkle tree, so a receiver can check it against an inclusion
// proof.
//
// What counts as acknowledged:
//   - otlp: the collector's 2xx answer to the POST (end to end). An answer
//     with partial_success.rejected_log_records > 0 is logged and counted
//     (sekisho_audit_export_rejected_total): the collector refused those
//     records for good, retrying would not change that.
//   - json-lines and syslog: on Linux, the receiving host's TCP stack having
//     acknowledged every byte written (the socket's send queue, SIOCOUTQ,
//     empty while the connection is still established). A receiver that
//     crashes with acknowledged bytes unread in its own socket buffer loses
//     them; a receiver that must not lose any should take otlp. On other
//     systems a written batch counts as delivered.
//
// # Sinks
//
// json-lines writes one JSON object a line:
//
//	{"log":"default","index":12,"event":{"v":1,"time":"...",...}}
//
// syslog writes RFC 5424 messages framed by octet counting (RFC 5425):
//
//	<PRI>1 TIMESTAMP HOSTNAME sekisho - audit [sekisho@32473 log="default" index="12"] {"v":1,...}
//
// with the event's time as TIMESTAMP, the configured facility (default 13,
// log audit) and severity informational for allow, notice for deny. The
// structured data ID defaults to sekisho@32473 (32473 is the enterprise
// number RFC 5612 reserves for documentation); set sd_id to one under your
// own enterprise number.
//
// otlp posts ExportLogsServiceRequest messages (application/x-protobuf) to
// an OTLP/HTTP logs endpoint (https://collector:4318/v1/logs): one LogRecord
// an event, with the event's time, severity INFO (allow) or WARN (deny),
// event_name sekisho.audit, the canonical event JSON as the body, and the
// attributes sekisho.audit.log, sekisho.audit.index,
// sekisho.audit.request_id, sekisho.audit.principal and
// sekisho.audit.decision.
//
// Every sink talks TLS (at least 1.2), checked against ca_file or the
// system's roots, with an optional client certificate (cert_file, key_file).
//
// # Several nodes
//
// Cursors are files of the node that runs the export: in a deployment of
// several nodes over one PostgreSQL, configure the export on one node (or
// give every node's sinks distinct names and let the receivers drop
// duplicates).
package export
