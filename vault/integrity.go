package vault

import (
	"context"
	"errors"
	"fmt"

	"github.com/sekisho/sekisho"
)

// ProblemRecordIntegrity is the problem type of a record whose wrapped
// data key or a ciphertext does not authenticate: the stored row was
// edited, or swapped with another record's.
const ProblemRecordIntegrity = "record-integrity"

// RuleTamper names the guard alert raised for a record that does not
// authenticate.
const RuleTamper = "tamper"

// integrityErr is the error of what (the data key, a field) of r failing
// to authenticate. The AEAD's associated data binds every ciphertext to
// its org, region, collection, record id and field, so a row edited or
// copied from another record fails here, never decrypts to another value.
func integrityErr(r *sekisho.SealedRecord, what string, err error) error {
	return &sekisho.Error{Code: sekisho.EInternal, Type: ProblemRecordIntegrity,
		Message: fmt.Sprintf("%s of record %s/%s does not authenticate (the stored row was edited or swapped); nothing of the record is returned", what, r.Collection, r.ID),
		Err:     err}
}

// integrity records a read or change of r that failed to authenticate: an
// audit event (decision deny, the reason naming the record and what
// failed), a tamper alert through the guard's channels, and the
// record-integrity problem with nothing of the record. Other errors are
// returned as they are.
func (v *Vault) integrity(ctx context.Context, c sekisho.Caller, action sekisho.Action, collection string, r *sekisho.SealedRecord, err error) error {
	var e *sekisho.Error
	if !errors.As(err, &e) || e.Type != ProblemRecordIntegrity {
		return err
	}
	d := sekisho.Decision{Policy: "integrity", Reason: e.Message, Code: e.Code, Type: e.Type}
	if v.guard != nil {
		v.guard.Raise(ctx, c, RuleTamper, e.Message)
	}
	if rerr := v.record(ctx, v.event(c, action, collection, []*sekisho.SealedRecord{r}, nil, nil, d, false)); rerr != nil {
		return rerr
	}
	return &sekisho.Error{Code: e.Code, Type: e.Type, Message: e.Message}
}
