package importer

import (
	"context"
	"errors"

	"github.com/sekisho/sekisho"
	"github.com/sekisho/sekisho/regions"
	"github.com/sekisho/sekisho/vault"
)

// VaultSink writes batches straight into a vault, as a two-stage pipeline:
// batch k is validated and sealed on all cores while batch k-1 commits. Each
// batch is one transaction and one audit event naming every record id.
type VaultSink struct {
	v          *vault.Vault
	collection string
	caller     vault.Caller

	inflight chan error // result of the commit in flight, if any
	pending  int        // rows of the batch in flight
	batch    *vault.PreparedBatch
	skipped  int // rows whose keyed record was already stored
}

// NewVaultSink returns a sink that imports into collection of v as caller
// (whose org owns the records).
func NewVaultSink(v *vault.Vault, caller vault.Caller, collection string) *VaultSink {
	return &VaultSink{v: v, collection: collection, caller: caller}
}

// Existing is the number of keyed rows whose record was already stored and
// was not written again.
func (s *VaultSink) Existing() int { return s.skipped }

// Write prepares items (validation, authorisation, sealing) and starts their
// commit once the previous batch's commit is done.
func (s *VaultSink) Write(ctx context.Context, items []Item) ([]error, error) {
	inputs := make([]*sekisho.RecordInput, len(items))
	for i, it := range items {
		inputs[i] = it.Input
	}
	p, err := s.v.PrepareBatch(ctx, s.caller, s.collection, inputs)
	if err != nil {
		return nil, err
	}
	if err := s.Flush(ctx); err != nil {
		return nil, err
	}
	errs := make([]error, len(p.Items))
	for i, r := range p.Items {
		errs[i] = r.Err
		if r.Err == nil {
			s.pending++
		}
	}
	s.inflight = make(chan error, 1)
	s.batch = p
	go func(done chan<- error) { done <- s.v.CommitBatch(ctx, p) }(s.inflight)
	return errs, nil
}

// Flush waits for the commit in flight.
func (s *VaultSink) Flush(ctx context.Context) error {
	if s.inflight == nil {
		return nil
	}
	err := <-s.inflight
	s.inflight = nil
	n := s.pending
	s.pending = 0
	for _, it := range s.batch.Items {
		if it.Existing {
			s.skipped++
		}
	}
	s.batch = nil
	var pe *regions.PartialWriteError
	if errors.As(err, &pe) {
		// Some regions committed: only the others' rows are lost.
		lost := 0
		for _, ids := range pe.Failed {
			lost += len(ids)
		}
		return &LostError{Rows: lost, Err: err}
	}
	if err != nil {
		return &LostError{Rows: n, Err: err}
	}
	return nil
}
