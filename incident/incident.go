package incident

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/sekisho/sekisho"
)

// Causes of an incident. The regulators' rules depend on whether the cause
// was unauthorized access (an attack, malware, stolen credentials, an insider
// acting beyond their rights).
const (
	CauseUnauthorizedAccess = "unauthorized-access"
	CauseMalware            = "malware"
	CauseInsider            = "insider"
	CauseMisdelivery        = "misdelivery"
	CauseLoss               = "loss"
	CauseOther              = "other"
	CauseUnknown            = "unknown"
)

// Causes lists the known causes.
var Causes = []string{CauseUnauthorizedAccess, CauseMalware, CauseInsider, CauseMisdelivery, CauseLoss, CauseOther, CauseUnknown}

// Incident is a set of suspected principals, devices and orgs and a time
// window; its scope is computed from the audit log.
type Incident struct {
	ID         string   `json:"id"`
	Principals []string `json:"principals"`
	Devices    []string `json:"devices"`
	Orgs       []string `json:"orgs"`
	// Since and Until bound the window [Since, Until).
	Since time.Time `json:"since"`
	Until time.Time `json:"until"`
	// DiscoveredAt is when the operator became aware of the incident; the
	// regulators' deadlines run from it.
	DiscoveredAt time.Time `json:"discovered_at"`
	Cause        string    `json:"cause"`
	// Description is free text about the incident (never a data value).
	Description string `json:"description,omitempty"`
	// Controller, when set, is the org on whose behalf the incident is
	// open (a grantor looking into a grantee's misuse): the scope counts
	// only the events about the controller's records.
	Controller string `json:"controller,omitempty"`
	// CiphertextCopy, when set, says that the records of these collections
	// were reached as ciphertext only (a copy of the database without the
	// keys): they are counted apart from the values returned in plaintext.
	CiphertextCopy *CiphertextCopy `json:"ciphertext_copy,omitempty"`
	CreatedAt      time.Time       `json:"created_at"`
	CreatedBy      string          `json:"created_by,omitempty"`
}

// CiphertextCopy describes records reached as ciphertext only.
type CiphertextCopy struct {
	// Collections whose stored records were copied (every org's and
	// region's, or Orgs' only).
	Collections []string `json:"collections"`
	Orgs        []string `json:"orgs,omitempty"`
	// Note says how (e.g. "backup tape of the database lost; keys held in
	// the HSM, not on it").
	Note string `json:"note,omitempty"`
}

// UnauthorizedAccess reports whether the cause is unauthorized access in the
// regulators' sense (an attack, malware or an insider beyond their rights).
func (in *Incident) UnauthorizedAccess() bool {
	switch in.Cause {
	case CauseUnauthorizedAccess, CauseMalware, CauseInsider:
		return true
	}
	return false
}

// Validate checks an incident's suspects, window and cause, and sorts and
// de-duplicates its lists.
func (in *Incident) Validate() error {
	in.Principals = sortedSet(in.Principals)
	in.Devices = sortedSet(in.Devices)
	in.Orgs = sortedSet(in.Orgs)
	if len(in.Principals)+len(in.Devices)+len(in.Orgs) == 0 {
		return sekisho.FieldErrorf(sekisho.EInvalid, "principals", "name at least one suspected principal, device or org")
	}
	if in.Since.IsZero() {
		return sekisho.FieldErrorf(sekisho.EInvalid, "since", "the window needs a start (since, RFC 3339)")
	}
	if in.Until.IsZero() {
		return sekisho.FieldErrorf(sekisho.EInvalid, "until", "the window needs an end (until, RFC 3339)")
	}
	if !in.Until.After(in.Since) {
		return sekisho.FieldErrorf(sekisho.EInvalid, "until", "until (%s) must be after since (%s)", in.Until.Format(time.RFC3339), in.Since.Format(time.RFC3339))
	}
	if in.Cause == "" {
		in.Cause = CauseUnknown
	}
	if !slices.Contains(Causes, in.Cause) {
		return sekisho.FieldErrorf(sekisho.EInvalid, "cause", "cause %q is not one of %v", in.Cause, Causes)
	}
	in.Since, in.Until = in.Since.UTC(), in.Until.UTC()
	if in.DiscoveredAt.IsZero() {
		in.DiscoveredAt = in.Until
	}
	in.DiscoveredAt = in.DiscoveredAt.UTC()
	return nil
}

func sortedSet(s []string) []string {
	out := make([]string, 0, len(s))
	for _, v := range s {
		if v != "" {
			out = append(out, v)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// NewID returns a new random incident id.
func NewID() string {
	var b [8]byte
	rand.Read(b[:])
	return "inc-" + hex.EncodeToString(b[:])
}

// Create validates in, gives it an id (when it has none) and a creation time,
// and stores it.
func Create(ctx context.Context, st sekisho.ObjectStore, in *Incident, now time.Time) error {
	if err := in.Validate(); err != nil {
		return err
	}
	if in.ID == "" {
		in.ID = NewID()
	}
	if in.CreatedAt.IsZero() {
		in.CreatedAt = now.UTC()
	}
	body, err := json.Marshal(in)
	if err != nil {
		return fmt.Errorf("encode incident: %w", err)
	}
	return st.PutObject(ctx, &sekisho.Object{Kind: sekisho.KindIncident, ID: in.ID, Version: 1, Body: body, Updated: now.UTC()})
}

// Get reads a stored incident.
func Get(ctx context.Context, st sekisho.ObjectStore, id string) (*Incident, error) {
	o, err := st.GetObject(ctx, sekisho.KindIncident, id)
	if err != nil {
		if sekisho.Code(err) == sekisho.ENotFound {
			return nil, sekisho.Errorf(sekisho.ENotFound, "incident %s not found", id)
		}
		return nil, err
	}
	var in Incident
	if err := json.Unmarshal(o.Body, &in); err != nil {
		return nil, &sekisho.Error{Code: sekisho.EInternal, Message: "stored incident " + id + " does not decode", Err: err}
	}
	return &in, nil
}

// List returns the stored incidents, by id.
func List(ctx context.Context, st sekisho.ObjectStore) ([]*Incident, error) {
	os, err := st.ListObjects(ctx, sekisho.KindIncident, "")
	if err != nil {
		return nil, err
	}
	out := make([]*Incident, 0, len(os))
	for _, o := range os {
		var in Incident
		if err := json.Unmarshal(o.Body, &in); err != nil {
			return nil, &sekisho.Error{Code: sekisho.EInternal, Message: "stored incident " + o.ID + " does not decode", Err: err}
		}
		out = append(out, &in)
	}
	return out, nil
}
