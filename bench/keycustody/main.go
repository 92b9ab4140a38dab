// Command keycustody measures the cost of key custody on the hot read path:
// the local keyring against the PKCS#11 provider (a SoftHSM2 token made in a
// temporary directory), with the DEK cache on and off.
//
//	go run ./bench/keycustody -duration 3s
//
// It prints, per provider: the cost of one DEK unwrap (what a cache miss
// pays), and the rate of hot reads (vault.Get of one field of a small set of
// records, audited, from -concurrency goroutines) with the cache and
// without. Read the numbers as ratios within one run.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sekisho/sekisho"
	"github.com/sekisho/sekisho/audit"
	"github.com/sekisho/sekisho/keys"
	"github.com/sekisho/sekisho/schemas"
	"github.com/sekisho/sekisho/sqlite"
	"github.com/sekisho/sekisho/vault"
)

func main() {
	duration := flag.Duration("duration", 3*time.Second, "measured time per case")
	conc := flag.Int("concurrency", 16, "concurrent readers")
	records := flag.Int("records", 1000, "records read (the hot set)")
	module := flag.String("module", "/usr/lib/softhsm/libsofthsm2.so", "PKCS#11 module (SoftHSM2)")
	flag.Parse()
	ctx := context.Background()
	tmp, err := os.MkdirTemp("", "keycustody-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(tmp)

	// A SoftHSM2 token of our own.
	conf := filepath.Join(tmp, "softhsm2.conf")
	tokdir := filepath.Join(tmp, "tokens")
	os.Mkdir(tokdir, 0o700)
	os.WriteFile(conf, []byte("directories.tokendir = "+tokdir+"\nobjectstore.backend = file\nlog.level = ERROR\n"), 0o600)
	os.Setenv("SOFTHSM2_CONF", conf)
	if out, err := exec.Command("softhsm2-util", "--init-token", "--free", "--label", "bench", "--pin", "1234", "--so-pin", "5678").CombinedOutput(); err != nil {
		log.Fatalf("softhsm2-util: %v %s", err, out)
	}
	hsm, err := keys.OpenPKCS11(keys.PKCS11Config{Module: *module, TokenLabel: "bench", PIN: "1234", Sessions: *conc})
	if err != nil {
		log.Fatal(err)
	}
	defer hsm.Close()
	master, _ := keys.NewKey()
	os.Mkdir(filepath.Join(tmp, "local"), 0o700)
	local, err := keys.OpenLocal(filepath.Join(tmp, "local"), master)
	if err != nil {
		log.Fatal(err)
	}

	type result struct {
		Provider       string  `json:"provider"`
		UnwrapMicros   float64 `json:"unwrap_us"`
		HotReadCached  float64 `json:"hot_read_cached_per_s"`
		HotReadNoCache float64 `json:"hot_read_uncached_per_s"`
	}
	var results []result
	for _, pc := range []struct {
		name string
		p    keys.Provider
	}{{"local", local}, {"pkcs11 (SoftHSM2)", hsm}} {
		r := result{Provider: pc.name}
		// One unwrap, in a loop on concurrent goroutines.
		dek, _ := keys.NewKey()
		a := keys.DEKAD{Org: "operator", Region: "jp", Collection: "users", RecordID: "r"}
		w, v, err := pc.p.WrapDEK(ctx, a, dek)
		if err != nil {
			log.Fatal(err)
		}
		a.KEKVersion = v
		var n atomic.Int64
		run(*conc, *duration, func() {
			if _, err := pc.p.UnwrapDEK(ctx, a, w); err != nil {
				log.Fatal(err)
			}
			n.Add(1)
		})
		r.UnwrapMicros = float64(*duration/time.Microsecond) * float64(*conc) / float64(n.Load())
		for _, cache := range []int{0, -1} {
			rate := hotRead(ctx, tmp, pc.p, cache, *records, *conc, *duration)
			if cache == 0 {
				r.HotReadCached = rate
			} else {
				r.HotReadNoCache = rate
			}
		}
		results = append(results, r)
	}
	fmt.Printf("%-20s %14s %22s %22s\n", "provider", "unwrap (µs)", "hot read, cache (/s)", "hot read, no cache (/s)")
	for _, r := range results {
		fmt.Printf("%-20s %14.1f %22.0f %22.0f\n", r.Provider, r.UnwrapMicros, r.HotReadCached, r.HotReadNoCache)
	}
	b, _ := json.MarshalIndent(results, "", "  ")
	fmt.Println(string(b))
}

// run calls f from conc goroutines for d.
func run(conc int, d time.Duration, f func()) {
	var wg sync.WaitGroup
	end := time.Now().Add(d)
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(end) {
				f()
			}
		}()
	}
	wg.Wait()
}

// hotRead returns reads per second of one field of a hot set of records.
func hotRead(ctx context.Context, tmp string, p keys.Provider, cacheSize, records, conc int, d time.Duration) float64 {
	dir, _ := os.MkdirTemp(tmp, "vault-")
	st, err := sqlite.Open(ctx, filepath.Join(dir, "sekisho.db"))
	if err != nil {
		log.Fatal(err)
	}
	defer st.Close()
	signer, _, err := audit.LoadOrCreateKeys(dir, audit.DefaultOrigin)
	if err != nil {
		log.Fatal(err)
	}
	lg, err := audit.New(ctx, st, signer, audit.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer lg.Close()
	v := vault.New(st, p, lg, vault.Options{DEKCacheSize: cacheSize})
	defs, _ := schemas.Defaults()
	if err := v.EnsureSchemas(ctx, defs); err != nil {
		log.Fatal(err)
	}
	c := sekisho.Caller{Principal: "bench", Org: "operator", Device: "d", Purpose: "support"}
	var in []*sekisho.RecordInput
	for i := range records {
		f, _ := json.Marshal(fmt.Sprintf("User %d", i))
		in = append(in, &sekisho.RecordInput{Region: "jp", Fields: map[string]json.RawMessage{"display_name": f}})
	}
	items, err := v.CreateBatch(ctx, c, "users", in)
	if err != nil {
		log.Fatal(err)
	}
	var n, i atomic.Int64
	run(conc, d, func() {
		id := items[int(i.Add(1))%len(items)].ID
		if _, err := v.Get(ctx, c, "users", id, []string{"display_name"}); err != nil {
			log.Fatal(err)
		}
		n.Add(1)
	})
	return float64(n.Load()) / d.Seconds()
}
