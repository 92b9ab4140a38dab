package sqlite_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/sekisho/sekisho"
	"github.com/sekisho/sekisho/sqlite"
	"github.com/sekisho/sekisho/storetest"
)

func openTemp(t *testing.T) sekisho.Store {
	s, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "sekisho.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, openTemp)
}

// The routing cases: regions.Router over a default, a jp and a th database.
func TestRouted(t *testing.T) {
	storetest.RunRouted(t, openTemp)
}

// The conformance suite through regions.Router over three databases.
func TestConformanceThroughRouter(t *testing.T) {
	storetest.RunThroughRouter(t, openTemp)
}

func TestDatabaseFileIsOwnerOnly(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sekisho.db")
	s, err := sqlite.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		t.Fatalf("database file mode %v, want owner only", fi.Mode().Perm())
	}
}
