package incident

import (
	"context"

	"github.com/sekisho/sekisho"
)

// ComputeOneAtATime is Compute reading one slice of the window and one batch
// of records at a time, as it did before it read ahead.
func ComputeOneAtATime(ctx context.Context, st sekisho.Store, dir Directory, logs []sekisho.LogStore, in *Incident) (*Scope, error) {
	return compute(ctx, st, dir, logs, in, 1, 1)
}
