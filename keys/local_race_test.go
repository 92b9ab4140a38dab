package keys_test

import (
	"bytes"
	"context"
	"path/filepath"
	"sync"
	"testing"

	"github.com/sekisho/sekisho/keys"
)

// TestLocalFirstOpenAtOnce: several openers of a new data directory at the
// same instant (processes that do not go through the command's data
// directory lock: the package's own callers) must end with one master key
// and one keyring that every one of them opens. Before, each generated its
// own master key and wrote its own keyring over the others' (rename): all
// but one held a master key that did not open the keyring on disk, and
// what they sealed was lost at their next start.
func TestLocalFirstOpenAtOnce(t *testing.T) {
	ctx := context.Background()
	for round := range 20 {
		dir := t.TempDir()
		keyFile := filepath.Join(t.TempDir(), "master.key")
		const n = 8
		var (
			wg      sync.WaitGroup
			start   = make(chan struct{})
			masters = make([][]byte, n)
			errs    = make([]error, n)
		)
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				m, _, err := keys.LoadMasterKey(dir, "", keyFile, true)
				if err == nil {
					_, err = keys.OpenLocal(dir, m)
				}
				masters[i], errs[i] = m, err
			}()
		}
		close(start)
		wg.Wait()
		for i := range n {
			if errs[i] != nil {
				t.Fatalf("round %d, opener %d: %v", round, i, errs[i])
			}
			if !bytes.Equal(masters[i], masters[0]) {
				t.Fatalf("round %d: openers got different master keys", round)
			}
		}
		// The key on disk opens the keyring on disk (positive control:
		// a later start works), and a KEK made now is kept.
		m, _, err := keys.LoadMasterKey(dir, "", keyFile, false)
		if err != nil || !bytes.Equal(m, masters[0]) {
			t.Fatalf("round %d: the master key on disk is not the one used: %v", round, err)
		}
		l, err := keys.OpenLocal(dir, m)
		if err != nil {
			t.Fatalf("round %d: reopen: %v", round, err)
		}
		if _, _, err := l.WrapDEK(ctx, keys.DEKAD{Org: "o", Region: "jp", Collection: "c", RecordID: "r"}, make([]byte, keys.KeySize)); err != nil {
			t.Fatal(err)
		}
	}
}
