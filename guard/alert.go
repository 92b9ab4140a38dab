package guard

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/sekisho/sekisho"
)

// Webhook is a receiver of alerts. Every delivery is a POST of an Alert as
// JSON with the headers
//
//	Sekisho-Alert-Id: <id>            (the same on every retry: de-duplicate on it)
//	Sekisho-Timestamp: <unix seconds>
//	Sekisho-Signature: v1=<hex HMAC-SHA256(secret, timestamp + "." + body)>
//
// A receiver checks the signature and refuses a timestamp more than a few
// minutes old. Delivery is at least once: retried with exponential back-off
// until a 2xx answer or MaxAttempts.
type Webhook struct {
	URL    string `json:"url"`
	Secret string `json:"-"`
}

// Alert is what a rule that fires sends.
type Alert struct {
	ID        string    `json:"id"`
	Time      time.Time `json:"time"`
	Rule      string    `json:"rule"`
	Action    string    `json:"action"`
	Org       string    `json:"org"`
	Principal string    `json:"principal"`
	Device    string    `json:"device"`
	Source    string    `json:"source,omitempty"`
	Purpose   string    `json:"purpose,omitempty"`
	RequestID string    `json:"request_id,omitempty"`
	Detail    string    `json:"detail"`
	// OrgAdmins are the admins of the principal's org, who are to act on it.
	OrgAdmins []string `json:"org_admins,omitempty"`
	// DataOrgs are the other orgs whose records the request touched (a
	// grantee's principal on a grantor's data): their admins see the
	// alert too, and must lift a quarantine it made.
	DataOrgs []string `json:"data_orgs,omitempty"`
}

// Signature header names.
const (
	HeaderAlertID   = "Sekisho-Alert-Id"
	HeaderTimestamp = "Sekisho-Timestamp"
	HeaderSignature = "Sekisho-Signature"
)

// Sign returns the signature header value of body at timestamp ts.
func Sign(secret []byte, ts int64, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(strconv.FormatInt(ts, 10)))
	m.Write([]byte("."))
	m.Write(body)
	return "v1=" + hex.EncodeToString(m.Sum(nil))
}

// VerifySignature checks a delivery's signature and that its timestamp is
// within maxAge of now.
func VerifySignature(secret []byte, h http.Header, body []byte, now time.Time, maxAge time.Duration) error {
	ts, err := strconv.ParseInt(h.Get(HeaderTimestamp), 10, 64)
	if err != nil {
		return fmt.Errorf("no timestamp")
	}
	if d := now.Sub(time.Unix(ts, 0)); d > maxAge || d < -maxAge {
		return fmt.Errorf("timestamp out of window")
	}
	if !hmac.Equal([]byte(h.Get(HeaderSignature)), []byte(Sign(secret, ts, body))) {
		return fmt.Errorf("bad signature")
	}
	return nil
}

// alerter delivers alerts off the request path: the request only queues.
type alerter struct {
	hooks       []Webhook
	log         *slog.Logger
	q           chan Alert
	client      *http.Client
	maxAttempts int
	backoff     time.Duration
	now         func() time.Time
	done        chan struct{}
	feed        alertFeed // the recent alerts, for the alerts API
}

func newAlertID() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// send queues an alert for every webhook; a full queue drops the webhook
// delivery (the log line and the metric are already written) rather than
// block a request.
func (a *alerter) send(al Alert) {
	a.feed.publish(al)
	if len(a.hooks) == 0 {
		return
	}
	select {
	case a.q <- al:
	default:
		a.log.Error("guard alert queue full; webhook delivery dropped", "alert_id", al.ID, "rule", al.Rule)
	}
}

func (a *alerter) run(ctx context.Context) {
	defer close(a.done)
	for {
		select {
		case <-ctx.Done():
			return
		case al := <-a.q:
			for _, h := range a.hooks {
				go a.deliver(ctx, h, al)
			}
		}
	}
}

// deliver posts al to h until it is accepted or MaxAttempts pass.
func (a *alerter) deliver(ctx context.Context, h Webhook, al Alert) {
	body, _ := json.Marshal(al)
	wait := a.backoff
	for attempt := 1; attempt <= a.maxAttempts; attempt++ {
		ts := a.now().Unix()
		req, err := http.NewRequestWithContext(ctx, "POST", h.URL, bytes.NewReader(body))
		if err != nil {
			a.log.Error("guard webhook", "url", h.URL, "error", err.Error())
			return
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set(HeaderAlertID, al.ID)
		req.Header.Set(HeaderTimestamp, strconv.FormatInt(ts, 10))
		req.Header.Set(HeaderSignature, Sign([]byte(h.Secret), ts, body))
		resp, err := a.client.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode/100 == 2 {
				return
			}
			err = fmt.Errorf("status %d", resp.StatusCode)
		}
		a.log.Warn("guard webhook delivery failed; will retry", "url", h.URL, "alert_id", al.ID, "attempt", attempt, "error", err.Error())
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = min(wait*2, time.Minute)
	}
	a.log.Error("guard webhook delivery gave up", "url", h.URL, "alert_id", al.ID, "attempts", a.maxAttempts)
}

// Raise sends an alert that no rule raised on a request's way through the
// guard (a stored policy that no longer compiles, a record that does not
// decrypt): a log line, the metric sekisho_guard_rule_fired_total with the
// given rule name, and the webhooks. c names who the alert is about.
func (g *Guard) Raise(ctx context.Context, c sekisho.Caller, rule, detail string) {
	g.fire(ctx, c, &Rule{ID: rule}, ActionAlert, detail)
}
