package postgres_test

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/sekisho/sekisho"
	"github.com/sekisho/sekisho/internal/pgtest"
	"github.com/sekisho/sekisho/postgres"
	"github.com/sekisho/sekisho/storetest"
)

// open returns a store on a fresh database.
func open(t *testing.T) sekisho.Store {
	t.Helper()
	s, err := postgres.Open(context.Background(), pgtest.DSN(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	pgtest.Server(t) // skip once, not in every subtest
	storetest.Run(t, open)
}

// The routing cases: regions.Router over a default, a jp and a th database.
func TestRouted(t *testing.T) {
	pgtest.Server(t)
	storetest.RunRouted(t, open)
}

// TestMigrate runs the migrations twice, and from several processes at once
// (goroutines stand in for them): each version is applied once and nobody
// fails.
func TestMigrate(t *testing.T) {
	dsn := pgtest.DSN(t)
	ctx := t.Context()
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Go(func() { errs[i] = postgres.Migrate(ctx, dsn) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("concurrent Migrate %d: %v", i, err)
		}
	}
	if err := postgres.Migrate(ctx, dsn); err != nil {
		t.Fatalf("Migrate again: %v", err)
	}
	s, err := postgres.Open(ctx, dsn)
	if err != nil {
		t.Fatalf("Open after Migrate: %v", err)
	}
	defer s.Close()
	if err := s.Ping(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestOpenBadDSN checks that a malformed DSN is refused without echoing it:
// it may hold a password.
func TestOpenBadDSN(t *testing.T) {
	_, err := postgres.Open(t.Context(), "postgres://u:s3cret@127.0.0.1:bad-port/db")
	if sekisho.Code(err) != sekisho.EInvalid {
		t.Fatalf("Open(bad DSN) = %v, want EInvalid", err)
	}
	if strings.Contains(err.Error(), "s3cret") {
		t.Fatalf("Open(bad DSN) error shows the password: %v", err)
	}
}
