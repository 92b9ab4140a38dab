package sqlite

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sekisho/sekisho"
)

// The checkpointer copies committed WAL pages into the database file in the
// background: 2 MiB of objects, far below the writer's autocheckpoint
// (64 MiB of WAL), reach the database file without another commit.
func TestCheckpointerCopiesTheWAL(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "db")
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	body := []byte(`"` + strings.Repeat("x", 4000) + `"`)
	for i := range 500 {
		if err := s.PutObject(ctx, &sekisho.Object{Kind: "k", ID: fmt.Sprint(i), Org: "o", Version: 1, Body: body}); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Size() >= 2_000_000 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("database file is %d bytes 20s after 2 MB of commits: the WAL was not checkpointed", fi.Size())
		}
		time.Sleep(50 * time.Millisecond)
	}
	// The objects read back (the copy lost nothing).
	for _, i := range []int{0, 250, 499} {
		o, err := s.GetObject(ctx, "k", fmt.Sprint(i))
		if err != nil || string(o.Body) != string(body) {
			t.Fatalf("object %d after the checkpoint: %v", i, err)
		}
	}
}
