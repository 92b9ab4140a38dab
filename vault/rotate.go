package vault

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/sekisho/sekisho"
	"github.com/sekisho/sekisho/keys"
)

// States of a rotation.
const (
	RotationRunning  = "running"
	RotationFinished = "finished"
	RotationFailed   = "failed"
)

// Rotation is a KEK rotation of (org, region): a new KEK version, then every
// data key of that org and region re-wrapped under it in batches while the
// vault goes on serving, then the old versions retired once nothing uses
// them. Its progress is persisted after every batch, so that a rotation
// interrupted by a crash resumes where it stopped.
type Rotation struct {
	ID     string `json:"id"`
	Org    string `json:"org"`
	Region string `json:"region"`
	// Version is the new KEK version (0 until it is made).
	Version int    `json:"version"`
	State   string `json:"state"`
	// Pass counts the walks over the org's records: a walk re-wraps what
	// it finds under an older version; the rotation ends after a walk that
	// found nothing left (writes that raced the first walk are caught by
	// the next).
	Pass int `json:"pass"`
	// Collection and After are the cursor of the current walk.
	Collection string `json:"collection,omitempty"`
	After      string `json:"after,omitempty"`
	// Checked counts the records examined by the current walk, of Total
	// (the org's live records when the walk began, all regions).
	Checked int64 `json:"checked"`
	Total   int64 `json:"total"`
	// Rewrapped counts the data keys re-wrapped, over all walks.
	Rewrapped int64 `json:"rewrapped"`
	// Retired lists the old versions destroyed at the end.
	Retired    []int     `json:"retired,omitempty"`
	Error      string    `json:"error,omitempty"`
	StartedBy  string    `json:"started_by"`
	StartedAt  time.Time `json:"started_at"`
	UpdatedAt  time.Time `json:"updated_at"`
	FinishedAt time.Time `json:"finished_at,omitzero"`

	// Who started it, for the events of the background work.
	Caller sekisho.Caller `json:"caller"`
	// version of the stored object
	objVersion int64
}

// rotationBatch is the number of records read and re-wrapped per batch.
const rotationBatch = 500

// DefaultRotationGrace is the grace of an online rotation unless
// RotationOptions.Grace (serve --key-rotation-grace) says otherwise.
const DefaultRotationGrace = time.Minute

// RotationOptions tune rotations (tests make them quick).
type RotationOptions struct {
	// Grace is the least time between making the new version and the walk
	// that decides the old ones are unused: a write that wrapped its key
	// under the old version just before the rotation has committed by then
	// (default one minute).
	Grace time.Duration
	// ProgressEvery is how often a progress event is written to the audit
	// log (default 10 s).
	ProgressEvery time.Duration
}

func newRotationID() (string, error) {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("rotation id: %w", err)
	}
	return "rot-" + hex.EncodeToString(b[:]), nil
}

// StartRotation validates a rotation of (org, region), writes its start to
// the audit log (before anything changes), persists it and makes the new
// KEK version. RunRotation does the re-wrapping. One rotation of an (org,
// region) runs at a time.
func (v *Vault) StartRotation(ctx context.Context, c sekisho.Caller, org, region string) (*Rotation, error) {
	if !sekisho.ValidRegion(region) {
		return nil, sekisho.FieldErrorf(sekisho.EInvalid, "region", "region %q is not a region code", region)
	}
	if org == "" {
		return nil, sekisho.FieldErrorf(sekisho.EInvalid, "org", "name the org whose key rotates")
	}
	if err := v.orgExists(ctx, org, region); err != nil {
		return nil, err
	}
	all, err := v.Rotations(ctx, org)
	if err != nil {
		return nil, err
	}
	for _, r := range all {
		if r.Region == region && r.State == RotationRunning {
			return nil, sekisho.TypedErrorf(sekisho.EConflict, "rotation-running", "rotation %s of %s/%s is still running", r.ID, org, region)
		}
	}
	id, err := newRotationID()
	if err != nil {
		return nil, err
	}
	now := v.now().UTC()
	rot := &Rotation{ID: id, Org: org, Region: region, State: RotationRunning, StartedBy: c.Principal, StartedAt: now, UpdatedAt: now, Caller: c}
	// Write-ahead: the rotation is in the log before any key changes, so an
	// interrupted rotation is in it too.
	if err := v.rotationEvent(ctx, rot, "keys.rotate", fmt.Sprintf("rotation %s of the KEK of %s/%s started", id, org, region)); err != nil {
		return nil, err
	}
	if err := v.saveRotation(ctx, rot); err != nil {
		return nil, err
	}
	if err := v.newRotationVersion(ctx, rot); err != nil {
		return nil, err
	}
	return rot, nil
}

func (v *Vault) newRotationVersion(ctx context.Context, rot *Rotation) error {
	version, err := v.keys.RotateKEK(ctx, rot.Org, rot.Region)
	if err != nil {
		return keyError(fmt.Errorf("rotate KEK of %s/%s: %w", rot.Org, rot.Region, err), fmt.Sprintf("the key of %s/%s", rot.Org, rot.Region))
	}
	rot.Version = version
	rot.StartedAt = v.now().UTC() // the grace runs from the new version
	return v.saveRotation(ctx, rot)
}

func (v *Vault) rotationEvent(ctx context.Context, rot *Rotation, action, reason string) error {
	c := rot.Caller
	ev := sekisho.Event{Time: v.now(), RequestID: c.RequestID, Org: c.Org, Principal: c.Principal, Device: c.Device,
		Source: c.Source, Purpose: c.Purpose, Action: action, Decision: sekisho.Allow, Policy: "key-admin",
		Reason: reason, Detail: "rotation " + rot.ID, RecordOrgs: []string{rot.Org}}
	return v.record(ctx, decisionEvent{Event: ev})
}

func (v *Vault) saveRotation(ctx context.Context, rot *Rotation) error {
	rot.UpdatedAt = v.now().UTC()
	body, err := json.Marshal(rot)
	if err != nil {
		return err
	}
	o := &sekisho.Object{Kind: sekisho.KindRotation, ID: rot.ID, Org: rot.Org, Version: rot.objVersion + 1, Body: body, Updated: rot.UpdatedAt}
	if err := v.store.PutObject(ctx, o); err != nil {
		return fmt.Errorf("save rotation %s: %w", rot.ID, err)
	}
	rot.objVersion = o.Version
	return nil
}

func decodeRotation(o *sekisho.Object) (*Rotation, error) {
	var r Rotation
	if err := json.Unmarshal(o.Body, &r); err != nil {
		return nil, &sekisho.Error{Code: sekisho.EInternal, Message: "stored rotation " + o.ID + " does not decode", Err: err}
	}
	r.objVersion = o.Version
	return &r, nil
}

// Rotation returns a rotation's persisted state.
func (v *Vault) Rotation(ctx context.Context, id string) (*Rotation, error) {
	o, err := v.store.GetObject(ctx, sekisho.KindRotation, id)
	if sekisho.Code(err) == sekisho.ENotFound {
		return nil, sekisho.Errorf(sekisho.ENotFound, "rotation %s not found", id)
	}
	if err != nil {
		return nil, err
	}
	return decodeRotation(o)
}

// Rotations lists the rotations of org ("" for every org).
func (v *Vault) Rotations(ctx context.Context, org string) ([]*Rotation, error) {
	os, err := v.store.ListObjects(ctx, sekisho.KindRotation, org)
	if err != nil {
		return nil, err
	}
	out := make([]*Rotation, 0, len(os))
	for _, o := range os {
		r, err := decodeRotation(o)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}

// RunRotation re-wraps the data keys of a started rotation from where its
// persisted cursor stands, until a walk finds none left under an older
// version; then it retires the older versions. progress, if not nil, sees
// the state after every batch. It returns when the rotation finished or
// failed, or when ctx ends (the rotation then stays running, to be resumed).
func (v *Vault) RunRotation(ctx context.Context, id string, opts RotationOptions, progress func(*Rotation)) (*Rotation, error) {
	rot, err := v.Rotation(ctx, id)
	if err != nil {
		return nil, err
	}
	if rot.State != RotationRunning {
		return rot, nil
	}
	if opts.Grace <= 0 {
		opts.Grace = DefaultRotationGrace
	}
	if opts.ProgressEvery <= 0 {
		opts.ProgressEvery = 10 * time.Second
	}
	err = v.runRotation(ctx, rot, opts, progress)
	if err == nil {
		return rot, nil
	}
	if ctx.Err() != nil || sekisho.Code(err) == sekisho.EUnavailable {
		// Interrupted, or the keys or the store are out of reach: the
		// rotation stays running and resumes later from its cursor.
		return rot, err
	}
	if sekisho.Code(err) == sekisho.EConflict {
		return rot, err // another runner took it over
	}
	rot.State, rot.Error, rot.FinishedAt = RotationFailed, sekisho.Message(err), v.now().UTC()
	if serr := v.saveRotation(ctx, rot); serr != nil {
		return rot, errors.Join(err, serr)
	}
	v.rotationEvent(ctx, rot, "keys.rotate.failed", fmt.Sprintf("rotation %s of %s/%s failed: %s", rot.ID, rot.Org, rot.Region, sekisho.Message(err)))
	return rot, err
}

func (v *Vault) runRotation(ctx context.Context, rot *Rotation, opts RotationOptions, progress func(*Rotation)) error {
	if rot.Version == 0 {
		// Crashed between the start and the new version.
		if err := v.newRotationVersion(ctx, rot); err != nil {
			return err
		}
	}
	schemas, err := v.store.ListSchemas(ctx)
	if err != nil {
		return err
	}
	var cols []string
	for _, s := range schemas {
		cols = append(cols, s.Collection)
	}
	slices.Sort(cols)
	lastEvent := v.now()
	for {
		if rot.Pass == 0 || (rot.Collection == "" && rot.After == "") {
			if rot.Pass == 0 {
				rot.Pass = 1
			}
			rot.Total = 0
			for _, col := range cols {
				n, err := v.store.CountRecords(ctx, col, rot.Org)
				if err != nil {
					return err
				}
				rot.Total += n
			}
			if len(cols) > 0 {
				rot.Collection = cols[0]
			}
			rot.Checked = 0
			if err := v.saveRotation(ctx, rot); err != nil {
				return err
			}
		}
		passStart := v.now()
		var found int64
		for ci := slices.Index(cols, rot.Collection); ci >= 0 && ci < len(cols); {
			ids, err := v.store.ListRecordIDs(ctx, rot.Collection, rot.Org, rot.After, rotationBatch)
			if err != nil {
				return err
			}
			if len(ids) == 0 {
				ci++
				rot.After = ""
				if ci < len(cols) {
					rot.Collection = cols[ci]
				}
				continue
			}
			n, err := v.rewrapBatch(ctx, rot, ids)
			if err != nil {
				return err
			}
			found += n
			rot.Rewrapped += n
			rot.Checked += int64(len(ids))
			rot.After = ids[len(ids)-1]
			if err := v.saveRotation(ctx, rot); err != nil {
				return err
			}
			if progress != nil {
				progress(rot)
			}
			if v.now().Sub(lastEvent) >= opts.ProgressEvery {
				lastEvent = v.now()
				if err := v.rotationEvent(ctx, rot, "keys.rotate.progress", fmt.Sprintf("rotation %s of %s/%s: pass %d, %d of %d records checked, %d data keys re-wrapped",
					rot.ID, rot.Org, rot.Region, rot.Pass, rot.Checked, rot.Total, rot.Rewrapped)); err != nil {
					return err
				}
			}
		}
		// A walk with nothing left, begun after the grace, ends it.
		done := found == 0 && passStart.Sub(rot.StartedAt) >= opts.Grace
		if done {
			break
		}
		if found == 0 {
			// Nothing found, but writes that began before the new version
			// may still commit: wait out the grace and walk once more.
			wait := opts.Grace - v.now().Sub(rot.StartedAt)
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(max(wait, 0)):
			}
		}
		rot.Pass++
		rot.Collection, rot.After = "", ""
	}
	versions, err := v.keys.KEKVersions(ctx, rot.Org, rot.Region)
	if err != nil {
		return keyError(err, fmt.Sprintf("the key of %s/%s", rot.Org, rot.Region))
	}
	for _, old := range versions {
		if old < rot.Version {
			if err := v.keys.RetireKEK(ctx, rot.Org, rot.Region, old); err != nil {
				return keyError(err, fmt.Sprintf("the key of %s/%s", rot.Org, rot.Region))
			}
			rot.Retired = append(rot.Retired, old)
		}
	}
	rot.State, rot.FinishedAt, rot.Collection, rot.After = RotationFinished, v.now().UTC(), "", ""
	if err := v.saveRotation(ctx, rot); err != nil {
		return err
	}
	if progress != nil {
		progress(rot)
	}
	return v.rotationEvent(ctx, rot, "keys.rotate.finished", fmt.Sprintf("KEK of %s/%s rotated to version %d; %d data keys re-wrapped in %d passes; versions %v retired",
		rot.Org, rot.Region, rot.Version, rot.Rewrapped, rot.Pass, rot.Retired))
}

// rewrapBatch re-wraps the data keys of the records of ids that belong to
// the rotation's region and are not under its version. A record changed
// by a concurrent write is read again; an erased one is left alone.
func (v *Vault) rewrapBatch(ctx context.Context, rot *Rotation, ids []string) (int64, error) {
	var n int64
	for attempt := 0; len(ids) > 0; attempt++ {
		recs, err := v.store.GetRecords(ctx, rot.Collection, ids)
		if err != nil {
			return n, err
		}
		var todo []sekisho.Rewrap
		for _, r := range recs {
			if r.Region != rot.Region || r.Erased() || r.KEKVersion == rot.Version {
				continue
			}
			dek, err := v.dek(ctx, r)
			if err != nil {
				if sekisho.Code(err) == sekisho.EGone {
					continue
				}
				return n, err
			}
			a := keys.DEKAD{Org: r.Org, Region: r.Region, Collection: r.Collection, RecordID: r.ID, KEKVersion: rot.Version}
			w, _, err := v.keys.WrapDEK(ctx, a, dek)
			clear(dek)
			if err != nil {
				return n, keyError(err, fmt.Sprintf("the key of %s/%s", rot.Org, rot.Region))
			}
			todo = append(todo, sekisho.Rewrap{Collection: r.Collection, ID: r.ID, Region: r.Region, Version: r.Version, KEKVersion: rot.Version,
				WrappedDEK: w, UpdatedAt: v.now().UTC()})
		}
		done, err := v.store.RewrapRecords(ctx, todo)
		if err != nil {
			return n, err
		}
		ids = ids[:0:0]
		for i, ok := range done {
			if ok {
				n++
			} else {
				ids = append(ids, todo[i].ID) // changed meanwhile: read it again
			}
		}
		if attempt >= 10 && len(ids) > 0 {
			// Left for the next walk, which finds them under the old version.
			break
		}
	}
	return n, nil
}

// ResumeRotations runs every rotation left running (by a crash or a stop)
// to its end, one after the other; serve calls it in the background.
func (v *Vault) ResumeRotations(ctx context.Context, opts RotationOptions) error {
	all, err := v.Rotations(ctx, "")
	if err != nil {
		return err
	}
	var errs []error
	for _, r := range all {
		if r.State == RotationRunning {
			if _, err := v.RunRotation(ctx, r.ID, opts, nil); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// RotateKEK rotates the KEK of (org, region) and re-wraps every data key of
// that org and region, in the foreground (the offline `keys rotate`).
// progress is called after each batch with the data keys re-wrapped so far.
func (v *Vault) RotateKEK(ctx context.Context, c sekisho.Caller, org, region string, progress func(done int)) (version, done int, err error) {
	rot, err := v.StartRotation(ctx, c, org, region)
	if err != nil {
		return 0, 0, err
	}
	// Offline nothing else writes: no grace is needed.
	rot, err = v.RunRotation(ctx, rot.ID, RotationOptions{Grace: time.Nanosecond}, func(r *Rotation) {
		if progress != nil {
			progress(int(r.Rewrapped))
		}
	})
	if rot == nil {
		return 0, 0, err
	}
	return rot.Version, int(rot.Rewrapped), err
}

// kindOrg is the object kind of an org (sekisho.KindOrg; the vault does not
// import access).
const kindOrg = "org"

// orgExists refuses an org that was never created: a key operation on a
// misspelt org would otherwise make keys for an org that does not exist. An
// org exists when it was created (an org object) or already has a KEK in
// region (records imported before the first admin enrolled).
func (v *Vault) orgExists(ctx context.Context, org, region string) error {
	_, err := v.store.GetObject(ctx, kindOrg, org)
	if sekisho.Code(err) != sekisho.ENotFound {
		return err
	}
	vs, kerr := v.keys.KEKVersions(ctx, org, region)
	if kerr != nil {
		return keyError(kerr, fmt.Sprintf("the key of %s/%s", org, region))
	}
	if len(vs) > 0 {
		return nil
	}
	return sekisho.FieldErrorf(sekisho.ENotFound, "org", "org %q does not exist", org)
}
