package sqlite_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/sekisho/sekisho"
	"github.com/sekisho/sekisho/sqlite"
	"github.com/sekisho/sekisho/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) sekisho.Store {
		s, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "sekisho.db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}
