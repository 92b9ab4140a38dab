package sekisho

import (
	"context"
	"slices"
	"time"
)

// Caller is who asks, from where and why. The HTTP layer fills it from the
// authenticated credential; the CLI fills it for its own direct writes.
type Caller struct {
	Principal string
	Org       string
	Device    string
	Roles     []string
	Source    string
	Purpose   string
	RequestID string
	// ClientRequestID is the client's own X-Request-Id, kept in audit
	// events as client_request_id.
	ClientRequestID string
	// TokenIssued is when the access token the caller authenticated with
	// was issued (zero when none or unknown): a token older than a
	// quarantine of its principal or device is refused.
	TokenIssued time.Time `json:"-"`
}

// HasRole reports whether c holds role.
func (c Caller) HasRole(role string) bool { return slices.Contains(c.Roles, role) }

// Action is what a request does to records, as it appears in audit events,
// policies and grants.
type Action string

// Actions on records. The constants are untyped, so that they compare
// with an AccessRequest's Action and an audit Event's Action alike.
const (
	ActionCreate     = "create"
	ActionRead       = "read"
	ActionUpdate     = "update"
	ActionErase      = "erase"
	ActionLookup     = "lookup"
	ActionBatchGet   = "batch-get"
	ActionImport     = "import"
	ActionTokenize   = "tokenize"
	ActionDetokenize = "detokenize"
)

// AccessRequest is what the authoriser decides on.
type AccessRequest struct {
	Caller     Caller
	Action     Action
	Collection string
	Schema     *Schema
	Fields     []string
	// Region and Owner describe the records concerned (Owner is "" for a create
	// into the caller's own org).
	Region string
	Owner  string
	// Lookup is the field a lookup searched and the value it searched for,
	// after normalisation (action lookup only; nil otherwise): the guard
	// sees it whether the lookup matched or not.
	Lookup *LookupValue
}

// LookupValue is a lookup's field and normalised value.
type LookupValue struct {
	Field string
	Value string
}

// Decision is the authoriser's answer.
type Decision struct {
	Allow bool
	// Policy names the policy or grant that decided, as audit events record
	// it ("grant:<id>" for a grant).
	Policy string
	// Grant is the id of the grant that decided, "" when no grant did.
	Grant  string
	Reason string
	// Code is the error code of a denial (EForbidden by default).
	Code ErrorCode
	// Type refines Code into a specific problem type (for example
	// "grant-expired"); "" means the code's own type.
	Type string
	// MaskedFields must be returned masked only.
	MaskedFields map[string]bool
}

// Authorizer decides every request on records. It has no side effects: the
// same request in the same state gets the same decision.
type Authorizer interface {
	Authorize(ctx context.Context, req AccessRequest) Decision
}

// Auditor records audit events durably; *audit.Log and *audit.Logs
// implement it.
type Auditor interface {
	Append(ctx context.Context, ev Event) (uint64, error)
}
