package httpapi

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/sekisho/sekisho"
)

// The answer waits for the request's pending durable writes (the embedded
// store's DPoP replay records) before its first byte; when they cannot be
// made durable, the client gets a 503 problem and none of the handler's
// answer. Control: the same handler's answer goes out when the wait
// succeeds, and the wait ran before it.
func TestAnswerWaitsForDurableWrites(t *testing.T) {
	s := &Server{log: slog.New(slog.DiscardHandler)}
	run := func(wait error) (*httptest.ResponseRecorder, *bool) {
		w := httptest.NewRecorder()
		r := httptest.NewRequest("GET", "/v1/whoami", nil)
		ctx, d := sekisho.WithDurable(r.Context())
		r = r.WithContext(ctx)
		waited := new(bool)
		d.Add(func(context.Context) error { *waited = true; return wait })
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		rec.before = func() error { return d.Wait(ctx) }
		rec.fail = func(err error) int {
			err = &sekisho.Error{Code: sekisho.EUnavailable, Type: "replay-state-unavailable", Message: "not durable", Err: err}
			raw := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
			s.writeError(raw, r, err)
			return raw.status
		}
		if err := writeJSON(rec, http.StatusOK, map[string]string{"secret": "the record"}); err != nil {
			t.Fatal(err)
		}
		if rec.status != w.Code {
			t.Errorf("recorded status %d, sent %d", rec.status, w.Code)
		}
		return w, waited
	}
	w, waited := run(nil)
	if !*waited || w.Code != http.StatusOK || !strings.Contains(w.Body.String(), "the record") {
		t.Fatalf("control: waited %v, %d %s", *waited, w.Code, w.Body)
	}
	w, waited = run(errors.New("disk gone"))
	if !*waited || w.Code != http.StatusServiceUnavailable || strings.Contains(w.Body.String(), "the record") ||
		!strings.Contains(w.Body.String(), "replay-state-unavailable") {
		t.Fatalf("failed wait: waited %v, %d %s", *waited, w.Code, w.Body)
	}
}
