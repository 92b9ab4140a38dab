package export

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// cursorFile is the content of a cursor file.
type cursorFile struct {
	// Next is the index of the next event to send: every event before it
	// was acknowledged by the sink.
	Next uint64 `json:"next"`
}

func cursorPath(dir, sink, log string) string {
	return filepath.Join(dir, sink+"."+log+".cursor")
}

// readCursor returns the cursor kept at path, 0 when there is none yet (a
// new sink starts at the first event).
func readCursor(path string) (uint64, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("audit export cursor: %w", err)
	}
	var c cursorFile
	if err := json.Unmarshal(b, &c); err != nil {
		return 0, fmt.Errorf("audit export cursor %s: %w (remove the file to send the whole log again)", path, err)
	}
	return c.Next, nil
}

// writeCursor replaces the cursor at path durably: a crash leaves either
// the old cursor or the new one, never a torn file.
func writeCursor(path string, next uint64) error {
	b, err := json.Marshal(cursorFile{Next: next})
	if err != nil {
		return err
	}
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("audit export cursor: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		tmp.Close()
		return fmt.Errorf("audit export cursor: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("audit export cursor: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("audit export cursor: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("audit export cursor: %w", err)
	}
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("audit export cursor: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("audit export cursor: %w", err)
	}
	return nil
}
