package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/sekisho/sekisho"
	"github.com/sekisho/sekisho/access"
)

// ProblemBase is the prefix of every problem type URI. The full URI of each
// kind of error is stable: clients and tests switch on it.
const ProblemBase = "https://sekisho.dev/problems/"

// Problem is an RFC 9457 problem details object.
type Problem struct {
	Type      string `json:"type"`
	Title     string `json:"title"`
	Status    int    `json:"status"`
	Detail    string `json:"detail,omitempty"`
	Instance  string `json:"instance,omitempty"`
	Field     string `json:"field,omitempty"`
	RequestID string `json:"request_id,omitempty"`
	// Purposes lists the known purposes (problem type purpose-unknown).
	Purposes []string `json:"purposes,omitempty"`
}

// Problem types that are not error codes of the domain.
const (
	ProblemPurposeRequired = "purpose-required"
	ProblemRouteNotFound   = "route-not-found"
	ProblemMethod          = "method-not-allowed"
)

var codeStatus = map[sekisho.ErrorCode]int{
	sekisho.EInvalid:      http.StatusBadRequest,
	sekisho.ENotFound:     http.StatusNotFound,
	sekisho.EConflict:     http.StatusConflict,
	sekisho.EUnauthorized: http.StatusUnauthorized,
	sekisho.EForbidden:    http.StatusForbidden,
	sekisho.EGone:         http.StatusGone,
	sekisho.ETooLarge:     http.StatusRequestEntityTooLarge,
	sekisho.EUnavailable:  http.StatusServiceUnavailable,
	sekisho.EUnsupported:  http.StatusUnsupportedMediaType,
	sekisho.EInternal:     http.StatusInternalServerError,
	sekisho.ERateLimited:  http.StatusTooManyRequests,
}

// writeError writes err as a problem. The detail is the error's client-safe
// message; internal causes go to the log only.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	code := sekisho.Code(err)
	if (code == sekisho.EInternal || (code == sekisho.EUnavailable && !sekisho.IsStorageFull(err))) && s.vault != nil {
		// A failure while the store cannot be reached is the store's
		// absence (a database down or failing over), not a bug, whatever
		// part met it first (the DPoP replay state, the audit log, a read):
		// store-unavailable, 503 with Retry-After.
		pctx, cancel := context.WithTimeout(r.Context(), time.Second)
		if perr := s.vault.Store().Ping(pctx); perr != nil {
			err = &sekisho.Error{Code: sekisho.EUnavailable, Type: sekisho.ProblemStoreUnavailable,
				Message: "the store cannot be reached; retry shortly", Err: err}
			code = sekisho.EUnavailable
		}
		cancel()
	}
	status, ok := codeStatus[code]
	if !ok {
		status = http.StatusInternalServerError
	}
	p := Problem{Type: ProblemBase + string(code), Title: http.StatusText(status), Status: status,
		Detail: sekisho.Message(err), Instance: r.URL.Path, RequestID: requestID(r.Context())}
	var e *sekisho.Error
	if errors.As(err, &e) {
		p.Field = e.Field
		if e.Type != "" {
			p.Type = ProblemBase + e.Type
		}
	}
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", challenge(err))
		if problemType(err) == access.ProblemCertMismatch {
			// A certificate-bound token is a Bearer token (RFC 8705, RFC 6750 §3).
			w.Header().Add("WWW-Authenticate", `Bearer error="invalid_token"`)
		}
	}
	if status == http.StatusServiceUnavailable && w.Header().Get("Retry-After") == "" {
		// The store or the disk is away for now: a client should come back.
		w.Header().Set("Retry-After", "5")
	}
	if status >= 500 {
		s.log.LogAttrs(r.Context(), slog.LevelError, "request failed", slog.String("request_id", p.RequestID),
			slog.String("path", r.URL.Path), slog.String("error", err.Error()))
	}
	writeProblem(w, p)
}

func writeProblem(w http.ResponseWriter, p Problem) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(p.Status)
	json.NewEncoder(w).Encode(p)
}

func problemf(r *http.Request, status int, typ, detail string) Problem {
	return Problem{Type: ProblemBase + typ, Title: http.StatusText(status), Status: status, Detail: detail,
		Instance: r.URL.Path, RequestID: requestID(r.Context())}
}
