package vault

import (
	"context"
	"strings"

	"github.com/sekisho/sekisho"
)

// KindImportMark is the kind of the objects an import writes with each
// batch (see CommitBatchMarked).
const KindImportMark = "import-mark"

// Loader returns the store as a bulk loader, if it is one (a single store;
// a router over per-region stores is not).
func (v *Vault) Loader() (sekisho.BulkLoader, bool) {
	l, ok := v.store.(sekisho.BulkLoader)
	return l, ok
}

// CommitBatchMarked is CommitBatch on a bulk loader: the batch's records and
// mark (kind KindImportMark) are written in one transaction, after the
// batch's audit event, so that an interrupted import knows which batches
// are stored. A batch with no record to write still stores its mark.
func (v *Vault) CommitBatchMarked(ctx context.Context, p *PreparedBatch, mark *sekisho.Object) error {
	l, ok := v.Loader()
	if !ok {
		return sekisho.Errorf(sekisho.EInvalid, "the store does not load in bulk")
	}
	mark.Kind = KindImportMark
	if mark.Updated.IsZero() {
		mark.Updated = v.now().UTC()
	}
	return v.commit(ctx, p, func(ctx context.Context, recs []*sekisho.SealedRecord) error {
		return l.LoadRecords(ctx, recs, mark)
	})
}

// ImportMarks returns the marks of org whose id starts with prefix.
func (v *Vault) ImportMarks(ctx context.Context, org, prefix string) ([]*sekisho.Object, error) {
	all, err := v.store.ListObjects(ctx, KindImportMark, org)
	if err != nil {
		return nil, err
	}
	var out []*sekisho.Object
	for _, o := range all {
		if strings.HasPrefix(o.ID, prefix) {
			out = append(out, o)
		}
	}
	return out, nil
}

// DeleteImportMarks removes the marks of org whose id starts with prefix
// (an import that finished).
func (v *Vault) DeleteImportMarks(ctx context.Context, org, prefix string) error {
	marks, err := v.ImportMarks(ctx, org, prefix)
	if err != nil {
		return err
	}
	for _, m := range marks {
		if err := v.store.DeleteObject(ctx, KindImportMark, m.ID); err != nil && sekisho.Code(err) != sekisho.ENotFound {
			return err
		}
	}
	return nil
}
