package sqlite_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/sekisho/sekisho"
	"github.com/sekisho/sekisho/sqlite"
)

// BenchmarkGetObject is the state lookup the authenticator and the guard
// make when their caches expire (a device, principal, org or quarantine by
// id): one read of the objects table among a thousand objects.
func BenchmarkGetObject(b *testing.B) {
	ctx := context.Background()
	s, err := sqlite.Open(ctx, filepath.Join(b.TempDir(), "sekisho.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	const n = 1000
	for i := range n {
		body := fmt.Appendf(nil, `{"id":"dev-%d","status":"approved"}`, i)
		if err := s.PutObject(ctx, &sekisho.Object{Kind: sekisho.KindDevice, ID: fmt.Sprint("dev-", i), Org: "operator", Version: 1, Body: body}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		o, err := s.GetObject(ctx, sekisho.KindDevice, fmt.Sprint("dev-", i%n))
		if err != nil || o.Version != 1 {
			b.Fatal(o, err)
		}
		i += 7
	}
}
