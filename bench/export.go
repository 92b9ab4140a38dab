package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// sinkReceiver is the JSON-lines-over-TLS receiver of -export: it reads
// what serve's audit export sends and keeps the distinct indexes of the
// default log. It can be stopped (the sink is down) and started again on the
// same address.
type sinkReceiver struct {
	addr string
	cert tls.Certificate

	mu    sync.Mutex
	ln    net.Listener
	conns []net.Conn
	seen  map[uint64]bool
	lines int
	wg    sync.WaitGroup
}

func (r *sinkReceiver) start() error {
	addr := r.addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	r.mu.Lock()
	if r.seen == nil {
		r.seen = map[uint64]bool{}
	}
	r.addr = ln.Addr().String()
	r.ln = tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{r.cert}, MinVersion: tls.VersionTLS12})
	lst := r.ln
	r.mu.Unlock()
	r.wg.Go(func() {
		for {
			c, err := lst.Accept()
			if err != nil {
				return
			}
			r.mu.Lock()
			r.conns = append(r.conns, c)
			r.mu.Unlock()
			r.wg.Go(func() {
				defer c.Close()
				sc := bufio.NewScanner(c)
				sc.Buffer(nil, 1<<20)
				for sc.Scan() {
					var l struct {
						Log   string `json:"log"`
						Index uint64 `json:"index"`
					}
					if json.Unmarshal(sc.Bytes(), &l) != nil || l.Log != "default" {
						continue
					}
					r.mu.Lock()
					r.seen[l.Index] = true
					r.lines++
					r.mu.Unlock()
				}
			})
		}
	})
	return nil
}

func (r *sinkReceiver) stop() {
	r.mu.Lock()
	r.ln.Close()
	for _, c := range r.conns {
		c.Close()
	}
	r.conns = nil
	r.mu.Unlock()
	r.wg.Wait()
}

// stats returns the distinct indexes received, one past the highest, and
// the lines received (duplicates included).
func (r *sinkReceiver) stats() (distinct int, end uint64, lines int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := range r.seen {
		end = max(end, i+1)
	}
	return len(r.seen), end, r.lines
}

// exportConfig writes serve's configuration file for -export: one
// json-lines sink at the receiver, checked against the bench's CA.
func exportConfig(out, addr, caFile string) (string, error) {
	path := filepath.Join(out, "export.yaml")
	conf := fmt.Sprintf("audit_export:\n  cursor_dir: %s\n  sinks:\n    - {name: bench, type: json-lines, address: '%s', ca_file: '%s', poll_interval: 200ms}\n",
		filepath.Join(out, "export-cursors"), addr, caFile)
	if err := os.RemoveAll(filepath.Join(out, "export-cursors")); err != nil {
		return "", err
	}
	return path, os.WriteFile(path, []byte(conf), 0o600)
}

// exportResult is what -export measured.
type exportResult struct {
	// DownUpRatio is hot_read_sink_down's throughput over the mean of
	// hot_read_sink_up and hot_read_sink_up_again: 1 means a sink that is
	// down does not slow requests.
	DownUpRatio float64 `json:"down_up_ratio"`
	// LogSize is the default log's size at the end; Received the distinct
	// indexes the receiver got, Lines with duplicates; Missing the indexes
	// below LogSize never received; CatchUpS how long after the load the
	// receiver had them all.
	LogSize  uint64  `json:"log_size"`
	Received int     `json:"received"`
	Lines    int     `json:"lines"`
	Missing  int     `json:"missing"`
	CatchUpS float64 `json:"catch_up_s"`
}

// logSize returns the size of the default audit log (audit tail -n 1).
func logSize(ctx context.Context, bin, data string, storeArgs, env []string) (uint64, error) {
	args := append([]string{"audit", "tail", "--data", data, "-n", "1", "--format", "json"}, storeArgs...)
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(os.Environ(), env...)
	b, err := cmd.Output()
	if err != nil {
		return 0, fmt.Errorf("audit tail: %w", err)
	}
	var l struct{ Index uint64 }
	if err := json.Unmarshal([]byte(strings.TrimSpace(string(b))), &l); err != nil {
		return 0, fmt.Errorf("audit tail: %q: %w", b, err)
	}
	return l.Index + 1, nil
}

// waitCaughtUp waits (at most limit) until the receiver has every index
// below the log's size.
func waitCaughtUp(ctx context.Context, r *sinkReceiver, size func() (uint64, error), limit time.Duration) (*exportResult, error) {
	t0 := time.Now()
	for {
		n, err := size()
		if err != nil {
			return nil, err
		}
		distinct, _, lines := r.stats()
		res := &exportResult{LogSize: n, Received: distinct, Lines: lines, CatchUpS: time.Since(t0).Seconds()}
		r.mu.Lock()
		for i := uint64(0); i < n; i++ {
			if !r.seen[i] {
				res.Missing++
			}
		}
		r.mu.Unlock()
		if res.Missing == 0 || time.Since(t0) > limit || ctx.Err() != nil {
			return res, ctx.Err()
		}
		time.Sleep(500 * time.Millisecond)
	}
}
