package vault_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sekisho/sekisho"
	"github.com/sekisho/sekisho/vault"
)

// seed creates n records of operator, half in jp and half in th, in batches.
func seed(t testing.TB, e *env, n int) []string {
	t.Helper()
	ctx := context.Background()
	ids := make([]string, 0, n)
	for len(ids) < n {
		var in []*sekisho.RecordInput
		for i := 0; i < 1000 && len(ids)+len(in) < n; i++ {
			region := "jp"
			if (len(ids)+i)%2 == 1 {
				region = "th"
			}
			in = append(in, &sekisho.RecordInput{Region: region, Fields: fields("display_name", fmt.Sprintf("User %d", len(ids)+i))})
		}
		items, err := e.v.CreateBatch(ctx, operator, "users", in)
		if err != nil {
			t.Fatal(err)
		}
		for _, it := range items {
			if it.Err != nil {
				t.Fatal(it.Err)
			}
			ids = append(ids, it.ID)
		}
	}
	return ids
}

// versions counts the records of region by KEK version.
func versions(t testing.TB, e *env, ids []string, region string) map[int]int {
	t.Helper()
	out := map[int]int{}
	for i := 0; i < len(ids); i += 1000 {
		recs, err := e.store.GetRecords(context.Background(), "users", ids[i:min(i+1000, len(ids))])
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range recs {
			if r.Region == region {
				out[r.KEKVersion]++
			}
		}
	}
	return out
}

// Rotation under load: while the KEK of operator/jp rotates over 100,000
// records, readers and writers (reads, updates, creates) go on, and not
// one of their requests fails; at the end every jp data key is under the
// new version and the old one is retired; th is untouched.
func TestRotationUnderLoad(t *testing.T) {
	n := 100000
	if testing.Short() || raceEnabled {
		n = 10000
	}
	ctx := context.Background()
	e := newEnv(t)
	putOrg(t, e, "operator")
	t0 := time.Now()
	ids := seed(t, e, n)
	t.Logf("seeded %d records in %s", n, time.Since(t0))
	t0 = time.Now()
	rot, err := e.v.StartRotation(ctx, operator, "operator", "jp")
	if err != nil {
		t.Fatal(err)
	}
	var requests, failed atomic.Int64
	var firstErr atomic.Value
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var created sync.Map
	for w := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 1))
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				id := ids[rng.IntN(len(ids))]
				var err error
				switch i % 4 {
				case 0, 1:
					_, err = e.v.Get(ctx, operator, "users", id, []string{"display_name"})
				case 2:
					_, err = e.v.Update(ctx, operator, "users", id, fields("display_name", fmt.Sprintf("Renamed %d-%d", w, i)))
				case 3:
					var rec *sekisho.Record
					rec, err = e.v.Create(ctx, operator, "users", &sekisho.RecordInput{Region: "jp", Fields: fields("display_name", "New")})
					if err == nil {
						created.Store(rec.ID, true)
					}
				}
				requests.Add(1)
				if err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
				}
			}
		}()
	}
	done, err := e.v.RunRotation(ctx, rot.ID, vault.RotationOptions{Grace: 50 * time.Millisecond}, nil)
	close(stop)
	wg.Wait()
	if err != nil || done.State != vault.RotationFinished {
		t.Fatalf("rotation: %+v %v", done, err)
	}
	t.Logf("%d requests during the rotation of %s (%d passes, %d data keys re-wrapped)", requests.Load(), time.Since(t0), done.Pass, done.Rewrapped)
	if requests.Load() == 0 || failed.Load() != 0 {
		t.Fatalf("%d of %d requests failed during the rotation; first: %v", failed.Load(), requests.Load(), firstErr.Load())
	}
	created.Range(func(k, _ any) bool { ids = append(ids, k.(string)); return true })
	if got := versions(t, e, ids, "jp"); len(got) != 1 || got[done.Version] == 0 {
		t.Fatalf("jp records by KEK version after the rotation: %v, want all under v%d", got, done.Version)
	}
	if got := versions(t, e, ids, "th"); len(got) != 1 || got[1] != n/2 {
		t.Fatalf("th records by KEK version: %v, want all %d under v1", got, n/2)
	}
	if vs, _ := e.keys.KEKVersions(ctx, "operator", "jp"); len(vs) != 1 || vs[0] != done.Version {
		t.Fatalf("KEK versions of operator/jp after the rotation: %v", vs)
	}
	// Every record still reads.
	for _, id := range ids[:200] {
		if _, err := e.v.Get(ctx, operator, "users", id, nil); err != nil {
			t.Fatal(err)
		}
	}
}

// A rotation killed half way (its context ends, as a process killed in the
// middle) stays running with its cursor persisted; a new vault over the
// same store and keys resumes it from the cursor and finishes it.
func TestRotationResumesAfterKill(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	putOrg(t, e, "operator")
	ids := seed(t, e, 6000)
	rot, err := e.v.StartRotation(ctx, operator, "operator", "jp")
	if err != nil {
		t.Fatal(err)
	}
	kctx, kill := context.WithCancel(ctx)
	var batches int
	_, err = e.v.RunRotation(kctx, rot.ID, vault.RotationOptions{Grace: time.Millisecond}, func(r *vault.Rotation) {
		if batches++; batches == 6 {
			kill()
		}
	})
	if err == nil {
		t.Fatal("the killed rotation finished")
	}
	half, err := e.v.Rotation(ctx, rot.ID)
	if err != nil {
		t.Fatal(err)
	}
	got := versions(t, e, ids, "jp")
	if half.State != vault.RotationRunning || half.After == "" || got[rot.Version] == 0 || got[rot.Version-1] == 0 {
		t.Fatalf("after the kill: state %s cursor %q, jp by version %v: want running, half way", half.State, half.After, got)
	}
	// A new vault (a restarted server) over the same store and keyring.
	v2 := vault.New(e.store, e.keys, e.log, vault.Options{Rotation: vault.RotationOptions{Grace: time.Millisecond}})
	if err := v2.ResumeRotations(ctx, v2.RotationOptions()); err != nil {
		t.Fatal(err)
	}
	end, err := v2.Rotation(ctx, rot.ID)
	if err != nil || end.State != vault.RotationFinished {
		t.Fatalf("after resuming: %+v %v", end, err)
	}
	if got := versions(t, e, ids, "jp"); len(got) != 1 || got[rot.Version] != 3000 {
		t.Fatalf("jp by version after resuming: %v", got)
	}
	// The resumed walk went on from the cursor: the first walk did not
	// start over (fewer re-wraps than twice the records).
	if end.Rewrapped != 3000 {
		t.Fatalf("%d data keys re-wrapped for 3000 records", end.Rewrapped)
	}
	var b []byte
	b, _ = json.Marshal(end)
	t.Logf("%s", b)
}
