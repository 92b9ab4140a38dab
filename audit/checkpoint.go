package audit

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"

	"github.com/sekisho/sekisho"
)

// CheckpointBody is the signed text of a C2SP tlog-checkpoint: the origin
// line, the tree size and the base64 root hash.
type CheckpointBody struct {
	Origin string
	Size   uint64
	Root   []byte
}

// String returns the note text of c: three lines, each ending in a newline.
func (c CheckpointBody) String() string {
	return fmt.Sprintf("%s\n%d\n%s\n", c.Origin, c.Size, base64.StdEncoding.EncodeToString(c.Root))
}

// ParseCheckpointBody parses the text of a checkpoint note. Extension lines
// after the root hash are allowed by the format and ignored.
func ParseCheckpointBody(text string) (CheckpointBody, error) {
	lines := strings.SplitN(text, "\n", 4)
	if len(lines) < 4 {
		return CheckpointBody{}, errors.New("checkpoint has fewer than three lines")
	}
	origin := lines[0]
	if origin == "" {
		return CheckpointBody{}, errors.New("checkpoint has an empty origin line")
	}
	size, err := strconv.ParseUint(lines[1], 10, 64)
	if err != nil || (lines[1] != "0" && strings.HasPrefix(lines[1], "0")) {
		return CheckpointBody{}, fmt.Errorf("checkpoint size %q is not a decimal number", lines[1])
	}
	root, err := base64.StdEncoding.Strict().DecodeString(lines[2])
	if err != nil || len(root) != rfc6962.DefaultHasher.Size() {
		return CheckpointBody{}, fmt.Errorf("checkpoint root hash %q is not 32 bytes of base64", lines[2])
	}
	return CheckpointBody{Origin: origin, Size: size, Root: root}, nil
}

// OpenCheckpoint verifies the signature of a checkpoint note with verifier
// and parses its text.
func OpenCheckpoint(b []byte, verifier note.Verifier) (CheckpointBody, error) {
	n, err := note.Open(b, note.VerifierList(verifier))
	if err != nil {
		return CheckpointBody{}, fmt.Errorf("checkpoint signature: %w", err)
	}
	return ParseCheckpointBody(n.Text)
}

// Checkpoint signs a checkpoint of the log at its current stored size, if the
// log grew since the latest stored checkpoint (or none is stored), stores it,
// and writes it to the witness directory. It returns the latest checkpoint,
// new or not. Before signing, it checks with a consistency proof over the
// stored nodes that the tree extends the latest checkpoint, so that a log
// rewritten in the store is never signed.
func (l *Log) Checkpoint(ctx context.Context) (sekisho.Checkpoint, error) {
	if l.signer == nil {
		return sekisho.Checkpoint{}, errors.New("audit: checkpoint: the log has no signing key")
	}
	latest, have, err := latestCheckpoint(ctx, l.store)
	if err != nil {
		return sekisho.Checkpoint{}, err
	}
	size, err := l.store.AuditSize(ctx)
	if err != nil {
		return sekisho.Checkpoint{}, fmt.Errorf("audit: checkpoint: read log size: %w", err)
	}
	if have && latest.Size >= size {
		return latest, nil
	}
	root, err := rootAt(ctx, l.store, size)
	if err != nil {
		return sekisho.Checkpoint{}, fmt.Errorf("audit: checkpoint: %w", err)
	}
	if have {
		if err := l.checkExtends(ctx, latest, size, root); err != nil {
			return sekisho.Checkpoint{}, err
		}
	}
	body := CheckpointBody{Origin: l.opts.Origin, Size: size, Root: root}
	signed, err := note.Sign(&note.Note{Text: body.String()}, l.signer)
	if err != nil {
		return sekisho.Checkpoint{}, fmt.Errorf("audit: sign checkpoint: %w", err)
	}
	cp := sekisho.Checkpoint{Size: size, Note: signed, Time: l.opts.Now().UTC()}
	if err := l.store.PutCheckpoint(ctx, cp); err != nil {
		if sekisho.Code(err) == sekisho.EConflict {
			// Another node checkpointed this size first; its note stands.
			latest, _, lerr := latestCheckpoint(ctx, l.store)
			return latest, lerr
		}
		return sekisho.Checkpoint{}, fmt.Errorf("audit: store checkpoint: %w", err)
	}
	if l.opts.WitnessDir != "" {
		if err := writeWitness(l.opts.WitnessDir, cp); err != nil {
			return cp, err
		}
	}
	return cp, nil
}

// checkExtends verifies that the tree of the given size and root extends the
// tree of the checkpoint prev, with a consistency proof over the stored nodes.
// prev's signature is checked with Options.Verifier when it is set.
func (l *Log) checkExtends(ctx context.Context, prev sekisho.Checkpoint, size uint64, root []byte) error {
	var body CheckpointBody
	var err error
	if l.opts.Verifier != nil {
		body, err = OpenCheckpoint(prev.Note, l.opts.Verifier)
	} else {
		text, _, ok := bytes.Cut(prev.Note, []byte("\n\n"))
		if !ok {
			err = errors.New("checkpoint note has no blank line")
		} else {
			body, err = ParseCheckpointBody(string(text) + "\n")
		}
	}
	if err != nil {
		return fmt.Errorf("audit: checkpoint: latest stored checkpoint (size %d) is not valid: %w", prev.Size, err)
	}
	if body.Size != prev.Size {
		return fmt.Errorf("audit: checkpoint: latest stored checkpoint is stored as size %d but signs size %d", prev.Size, body.Size)
	}
	p, err := ConsistencyProof(ctx, l.store, body.Size, size)
	if err != nil {
		return fmt.Errorf("audit: checkpoint: %w", err)
	}
	if err := proof.VerifyConsistency(rfc6962.DefaultHasher, body.Size, size, p, body.Root, root); err != nil {
		return sekisho.Errorf(sekisho.EInternal, "audit log at size %d does not extend checkpoint %d: refusing to sign (run audit verify): %v", size, body.Size, err)
	}
	return nil
}

// LatestCheckpoint returns the stored checkpoint of the largest size; ENotFound
// if there is none.
func (l *Log) LatestCheckpoint(ctx context.Context) (sekisho.Checkpoint, error) {
	cp, ok, err := latestCheckpoint(ctx, l.store)
	if err != nil {
		return sekisho.Checkpoint{}, err
	}
	if !ok {
		return sekisho.Checkpoint{}, sekisho.Errorf(sekisho.ENotFound, "no audit checkpoint yet")
	}
	return cp, nil
}

func latestCheckpoint(ctx context.Context, store sekisho.AuditStore) (sekisho.Checkpoint, bool, error) {
	cps, err := store.Checkpoints(ctx)
	if err != nil {
		return sekisho.Checkpoint{}, false, fmt.Errorf("audit: read checkpoints: %w", err)
	}
	if len(cps) == 0 {
		return sekisho.Checkpoint{}, false, nil
	}
	return cps[len(cps)-1], true, nil
}

// RunCheckpointer makes a checkpoint every interval (when the log grew) until
// ctx ends, then returns ctx's error. Errors of one round are reported to
// Options.Logger and do not stop the loop.
func (l *Log) RunCheckpointer(ctx context.Context, every time.Duration) error {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
			if _, err := l.Checkpoint(ctx); err != nil && ctx.Err() == nil {
				l.logger().Error("audit checkpoint failed", "err", err)
			}
		}
	}
}

// writeWitness writes cp to dir/checkpoint-<size>, atomically (a temporary
// file renamed), readable by the witness that collects it.
func writeWitness(dir string, cp sekisho.Checkpoint) error {
	name := filepath.Join(dir, "checkpoint-"+strconv.FormatUint(cp.Size, 10))
	f, err := os.CreateTemp(dir, ".checkpoint-*")
	if err != nil {
		return fmt.Errorf("audit: witness export: %w", err)
	}
	tmp := f.Name()
	_, err = f.Write(cp.Note)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp, 0o644)
	}
	if err == nil {
		err = os.Rename(tmp, name)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("audit: witness export %s: %w", name, err)
	}
	return nil
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }
