package main

import (
	"fmt"
	"os"
	"sort"
	"sync"
	"time"
)

func run(f *os.File, workers, n int, off *int64, mu *sync.Mutex) []time.Duration {
	buf := make([]byte, 64<<10)
	var lats []time.Duration
	var lmu sync.Mutex
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < n; i++ {
				mu.Lock()
				o := *off
				*off = (*off + int64(len(buf))) % (8 << 20)
				f.WriteAt(buf, o)
				mu.Unlock()
				t := time.Now()
				f.Sync()
				d := time.Since(t)
				lmu.Lock()
				lats = append(lats, d)
				lmu.Unlock()
			}
		}()
	}
	wg.Wait()
	return lats
}

func main() {
	f, _ := os.OpenFile("/work/fsx.dat", os.O_CREATE|os.O_RDWR, 0o600)
	f.Truncate(8 << 20)
	f.Sync()
	var off int64
	var mu sync.Mutex
	for _, w := range []int{1, 2, 3, 1, 2, 3} {
		t := time.Now()
		l := run(f, w, 400, &off, &mu)
		el := time.Since(t)
		sort.Slice(l, func(i, j int) bool { return l[i] < l[j] })
		fmt.Printf("workers %d: %d syncs in %v = %.0f/s, p50 %v p90 %v\n", w, len(l), el.Round(time.Millisecond), float64(len(l))/el.Seconds(), l[len(l)/2], l[len(l)*9/10])
	}
	os.Remove("/work/fsx.dat")
}
