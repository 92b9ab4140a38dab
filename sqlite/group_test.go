package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// Writes that wait while the writer is busy are committed together, each in
// its own savepoint: one that fails is rolled back alone and reports its
// own error; the others are committed and report success. Control: the
// failing write's row is absent, the others' rows are present, and all of
// them were in one group (the writer was held until all had queued).
func TestGroupCommitIsolatesFailures(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, filepath.Join(t.TempDir(), "db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	hold := make(chan struct{})
	held := make(chan struct{})
	go s.grouped(ctx, func(tx *sql.Tx) error { close(held); <-hold; return nil })
	<-held
	insert := func(key string, fail bool) func(*sql.Tx) error {
		return func(tx *sql.Tx) error {
			if _, err := tx.Exec(`INSERT INTO replay (key, expires) VALUES (?, 1)`, []byte(key)); err != nil {
				return err
			}
			if fail {
				return errors.New("refused")
			}
			return nil
		}
	}
	var groups sync.Map
	var wg sync.WaitGroup
	errs := make([]error, 5)
	for i := range 5 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = s.grouped(ctx, func(tx *sql.Tx) error {
				groups.Store(fmt.Sprintf("%p", tx), true)
				return insert(fmt.Sprint("k", i), i == 2)(tx)
			})
		}()
	}
	// Let all five queue behind the held write (they only need to be
	// scheduled; the count of transactions below says if they were not).
	time.Sleep(time.Second)
	close(hold)
	wg.Wait()
	n := 0
	groups.Range(func(any, any) bool { n++; return true })
	if n != 1 {
		t.Fatalf("the five writes ran in %d transactions, want 1 (the test did not group them)", n)
	}
	for i, err := range errs {
		var key []byte
		qerr := s.r.QueryRow(`SELECT key FROM replay WHERE key = ?`, []byte(fmt.Sprint("k", i))).Scan(&key)
		if i == 2 {
			if err == nil || err.Error() != "refused" || qerr != sql.ErrNoRows {
				t.Errorf("failing write: err %v, row lookup %v; want its own error and no row", err, qerr)
			}
			continue
		}
		if err != nil || qerr != nil {
			t.Errorf("write %d: err %v, row lookup %v; want committed", i, err, qerr)
		}
	}
}
