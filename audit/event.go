package audit

import (
	"fmt"
	"slices"

	"github.com/sekisho/sekisho"
)

// Entry returns the stored form of an event: leaf (which must be sekisho.MarshalEvent(e))
// and the columns that event queries filter on. The index is set by the Log.
func Entry(e sekisho.Event, leaf []byte) sekisho.AuditEntry {
	e = e.Canonical()
	return sekisho.AuditEntry{
		Leaf:       leaf,
		Time:       e.Time,
		RequestID:  e.RequestID,
		Org:        e.Org,
		Principal:  e.Principal,
		Device:     e.Device,
		Decision:   e.Decision,
		RecordOrgs: e.RecordOrgs,
		Records:    e.Records,
	}
}

// checkEntry reports how the query columns of a stored entry differ from the
// event in its leaf, or "" if they agree.
func checkEntry(stored sekisho.AuditEntry) string {
	e, err := sekisho.UnmarshalEvent(stored.Leaf)
	if err != nil {
		return fmt.Sprintf("leaf is not a valid event: %v", err)
	}
	want := Entry(e, stored.Leaf)
	switch {
	case !stored.Time.Equal(want.Time):
		return "time column differs from the leaf"
	case stored.RequestID != want.RequestID:
		return "request_id column differs from the leaf"
	case stored.Org != want.Org:
		return "org column differs from the leaf"
	case stored.Principal != want.Principal:
		return "principal column differs from the leaf"
	case stored.Device != want.Device:
		return "device column differs from the leaf"
	case stored.Decision != want.Decision:
		return "decision column differs from the leaf"
	case !sameStrings(stored.RecordOrgs, want.RecordOrgs):
		return "record_orgs column differs from the leaf"
	case !sameStrings(stored.Records, want.Records):
		return "records column differs from the leaf"
	}
	return ""
}

// sameStrings compares two lists as sets: a store may keep a list column in
// its own order or without repeats.
func sameStrings(a, b []string) bool {
	return slices.Equal(setOf(a), setOf(b))
}

func setOf(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return slices.Compact(s)
}
