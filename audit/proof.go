package audit

import (
	"context"
	"fmt"

	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"

	"github.com/sekisho/sekisho"
)

// InclusionProof returns the RFC 6962 inclusion proof of the leaf at index in
// the tree of the given size, which must not exceed the stored size. It is
// verified with proof.VerifyInclusion of transparency-dev/merkle.
func (l *Log) InclusionProof(ctx context.Context, index, size uint64) ([][]byte, error) {
	return InclusionProof(ctx, l.store, index, size)
}

// ConsistencyProof returns the RFC 6962 consistency proof between the trees
// of sizes from and to (from <= to <= stored size). It is verified with
// proof.VerifyConsistency of transparency-dev/merkle.
func (l *Log) ConsistencyProof(ctx context.Context, from, to uint64) ([][]byte, error) {
	return ConsistencyProof(ctx, l.store, from, to)
}

// RootAt returns the root hash of the tree of the given size (not above the
// stored size); the empty tree's root is SHA-256 of nothing.
func (l *Log) RootAt(ctx context.Context, size uint64) ([]byte, error) {
	return RootAt(ctx, l.store, size)
}

// InclusionProof is Log.InclusionProof for a store without a Log (a reader
// such as the CLI).
func InclusionProof(ctx context.Context, store sekisho.AuditStore, index, size uint64) ([][]byte, error) {
	if index >= size {
		return nil, sekisho.Errorf(sekisho.EInvalid, "index %d is not below tree size %d", index, size)
	}
	if err := checkSize(ctx, store, size); err != nil {
		return nil, err
	}
	nodes, err := proof.Inclusion(index, size)
	if err != nil {
		return nil, sekisho.Errorf(sekisho.EInvalid, "inclusion proof of %d in %d: %v", index, size, err)
	}
	return rehash(ctx, store, nodes)
}

// ConsistencyProof is Log.ConsistencyProof for a store without a Log.
func ConsistencyProof(ctx context.Context, store sekisho.AuditStore, from, to uint64) ([][]byte, error) {
	if from > to {
		return nil, sekisho.Errorf(sekisho.EInvalid, "consistency proof from %d to %d: from is above to", from, to)
	}
	if err := checkSize(ctx, store, to); err != nil {
		return nil, err
	}
	nodes, err := proof.Consistency(from, to)
	if err != nil {
		return nil, sekisho.Errorf(sekisho.EInvalid, "consistency proof from %d to %d: %v", from, to, err)
	}
	return rehash(ctx, store, nodes)
}

// RootAt is Log.RootAt for a store without a Log.
func RootAt(ctx context.Context, store sekisho.AuditStore, size uint64) ([]byte, error) {
	if err := checkSize(ctx, store, size); err != nil {
		return nil, err
	}
	return rootAt(ctx, store, size)
}

func rootAt(ctx context.Context, store sekisho.AuditStore, size uint64) ([]byte, error) {
	if size == 0 {
		return rfc6962.DefaultHasher.EmptyRoot(), nil
	}
	rng, err := loadRange(ctx, store, size)
	if err != nil {
		return nil, err
	}
	return rng.GetRootHash(nil)
}

func checkSize(ctx context.Context, store sekisho.AuditStore, size uint64) error {
	cur, err := store.AuditSize(ctx)
	if err != nil {
		return fmt.Errorf("audit: read log size: %w", err)
	}
	if size > cur {
		return sekisho.Errorf(sekisho.EInvalid, "tree size %d is above the log size %d", size, cur)
	}
	return nil
}

// rehash fetches the stored nodes of a proof and computes its ephemeral node.
func rehash(ctx context.Context, store sekisho.AuditStore, nodes proof.Nodes) ([][]byte, error) {
	hashes, err := fetchNodes(ctx, store, nodes.IDs)
	if err != nil {
		return nil, fmt.Errorf("audit: read proof nodes: %w", err)
	}
	p, err := nodes.Rehash(hashes, rfc6962.DefaultHasher.HashChildren)
	if err != nil {
		return nil, fmt.Errorf("audit: build proof: %w", err)
	}
	if p == nil {
		p = [][]byte{}
	}
	return p, nil
}
