package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/sekisho/sekisho"
	"github.com/sekisho/sekisho/guard"
)

// AlertFeed is what the alerts API reads: the guard's recent alerts
// (implemented by *guard.Guard). Alerts checks that c may read them and
// scopes them to c's org.
type AlertFeed interface {
	Alerts(ctx context.Context, c sekisho.Caller, after uint64, limit int) (*guard.AlertPage, error)
	// Quarantined refuses a reader quarantined since its stream opened:
	// the stream checks it before every write.
	Quarantined(ctx context.Context, principal, device string, iat time.Time) error
}

// Alert stream bounds: a stream ends after alertStreamMax (the client
// opens the next one with the last id it saw, and a new token if its own
// expired), and carries a comment line every alertKeepalive so that
// proxies keep it open.
const (
	alertStreamMax = 5 * time.Minute
	alertKeepalive = 15 * time.Second
	alertPageMax   = 100
)

// Each open alert stream holds a connection and a goroutine for up to
// alertStreamMax: a principal may hold AlertStreamsPerPrincipal of them
// (a console in a few tabs), the server AlertStreamsMax in all; one more
// is refused 429 too-many-streams before anything is streamed.
const (
	AlertStreamsPerPrincipal = 4
	AlertStreamsMax          = 256
)

// streamCount counts the open alert streams, per principal and in all.
type streamCount struct {
	mu    sync.Mutex
	total int
	per   map[string]int
}

func (c *streamCount) acquire(principal string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.per == nil {
		c.per = map[string]int{}
	}
	switch {
	case c.per[principal] >= AlertStreamsPerPrincipal:
		return sekisho.TypedErrorf(sekisho.ERateLimited, "too-many-streams",
			"%s has %d alert streams open already (at most %d): close one, or read GET /v1/guard/alerts", principal, c.per[principal], AlertStreamsPerPrincipal)
	case c.total >= AlertStreamsMax:
		return sekisho.TypedErrorf(sekisho.ERateLimited, "too-many-streams", "this server has %d alert streams open (at most %d); retry shortly", c.total, AlertStreamsMax)
	}
	c.per[principal]++
	c.total++
	return nil
}

func (c *streamCount) release(principal string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.total--
	if c.per[principal]--; c.per[principal] <= 0 {
		delete(c.per, principal)
	}
}

func (s *Server) needAlerts() error {
	if s.alerts == nil {
		return sekisho.Errorf(sekisho.EUnavailable, "the guard is not configured on this server")
	}
	return nil
}

// alertCursor reads where a reader is: the query's after, or the
// Last-Event-ID header of a reconnecting event stream.
func alertCursor(r *http.Request) (uint64, error) {
	v := r.URL.Query().Get("after")
	if v == "" {
		v = r.Header.Get("Last-Event-ID")
	}
	if v == "" {
		return 0, nil
	}
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		return 0, sekisho.FieldErrorf(sekisho.EInvalid, "after", "after is the seq of the last alert seen (a non-negative integer)")
	}
	return n, nil
}

// listAlerts is GET /v1/guard/alerts?after=SEQ&limit=N: the recent alerts
// of this node the caller may see, oldest first, and next (the seq to ask
// after next time).
func (s *Server) listAlerts(w http.ResponseWriter, r *http.Request, c sekisho.Caller) error {
	if err := s.needAlerts(); err != nil {
		return err
	}
	after, err := alertCursor(r)
	if err != nil {
		return err
	}
	limit := alertPageMax
	if v := r.URL.Query().Get("limit"); v != "" {
		if limit, err = strconv.Atoi(v); err != nil || limit < 1 || limit > guard.AlertFeedSize {
			return sekisho.FieldErrorf(sekisho.EInvalid, "limit", "limit is between 1 and %d", guard.AlertFeedSize)
		}
	}
	p, err := s.alerts.Alerts(r.Context(), c, after, limit)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, p)
}

// streamAlerts is GET /v1/guard/alerts/stream: Server-Sent Events, one
// event "alert" (id: its seq, data: the alert as JSON) per alert as it is
// raised, after the ones since ?after= or Last-Event-ID. The stream ends
// with an event "end" after alertStreamMax; the client reconnects with the
// last id (DPoP-signed like every request: browsers read it with fetch,
// not EventSource, which cannot send the headers).
func (s *Server) streamAlerts(w http.ResponseWriter, r *http.Request, c sekisho.Caller) error {
	if err := s.needAlerts(); err != nil {
		return err
	}
	after, err := alertCursor(r)
	if err != nil {
		return err
	}
	ctx := r.Context()
	p, err := s.alerts.Alerts(ctx, c, after, alertPageMax)
	if err != nil {
		return err // before anything is written: a problem
	}
	if err := s.alertStreams.acquire(c.Principal); err != nil {
		return err
	}
	defer s.alertStreams.release(c.Principal)
	rc := http.NewResponseController(w)
	end := time.Now().Add(alertStreamMax)
	// The server's write timeout would cut the stream: this one is longer.
	_ = rc.SetWriteDeadline(end.Add(30 * time.Second))
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	fmt.Fprint(w, "retry: 2000\n: sekisho guard alerts\n\n")
	keep := time.NewTicker(alertKeepalive)
	defer keep.Stop()
	stop := time.NewTimer(time.Until(end))
	defer stop.Stop()
	for {
		err := s.alerts.Quarantined(ctx, c.Principal, c.Device, c.TokenIssued)
		if err == nil && s.access != nil {
			// The reader's credential, checked again before every write:
			// a device or principal revoked, an admin no longer admin or a
			// token expired while it listened ends the stream.
			err = s.access.Standing(ctx, c, RoleAdmin)
		}
		if err != nil && problemType(err) == "token-expired" {
			// The token ran out: the stream ends as at alertStreamMax,
			// and the client opens the next one with a new token.
			fmt.Fprintf(w, "id: %d\nevent: end\ndata: {\"next\":%d}\n\n", after, after)
			_ = rc.Flush()
			return nil
		}
		if err != nil {
			// The reader was quarantined (or revoked) while it listened:
			// the stream ends.
			typ := "quarantined"
			var e *sekisho.Error
			if errors.As(err, &e) && e.Type != "" {
				typ = e.Type
			}
			b, _ := json.Marshal(map[string]string{"type": ProblemBase + typ, "detail": sekisho.Message(err)})
			fmt.Fprintf(w, "event: error\ndata: %s\n\n", b)
			_ = rc.Flush()
			return nil
		}
		for _, a := range p.Alerts {
			b, _ := json.Marshal(a)
			fmt.Fprintf(w, "id: %d\nevent: alert\ndata: %s\n\n", a.Seq, b)
		}
		after = p.Next
		if err := rc.Flush(); err != nil {
			return nil // the reader went away
		}
		if len(p.Alerts) < alertPageMax {
			select {
			case <-ctx.Done():
				return nil
			case <-stop.C:
				fmt.Fprintf(w, "id: %d\nevent: end\ndata: {\"next\":%d}\n\n", after, after)
				_ = rc.Flush()
				return nil
			case <-keep.C:
				fmt.Fprint(w, ": keepalive\n\n")
				p = &guard.AlertPage{Next: after, Wake: p.Wake}
				continue
			case <-p.Wake:
			}
		}
		if p, err = s.alerts.Alerts(ctx, c, after, alertPageMax); err != nil {
			b, _ := json.Marshal(map[string]string{"detail": sekisho.Message(err)})
			fmt.Fprintf(w, "event: error\ndata: %s\n\n", b)
			_ = rc.Flush()
			return nil
		}
	}
}
