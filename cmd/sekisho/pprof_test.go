package main

import (
	"bytes"
	"io"
	"net/http"
	"testing"
)

// SEKISHO_PPROF=1 mounts Go's profiles on the metrics listener, with a CPU
// profile and an execution trace of a window of the run (what a latency
// tail waits on); never on the data listener, and without the variable on
// neither. Control: the same server without SEKISHO_PPROF answers 404 on
// the metrics listener too.
func TestServePprofOnTheMetricsListenerOnly(t *testing.T) {
	setMasterKey(t)
	get := func(url string) (int, []byte) {
		t.Helper()
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	for _, tc := range []struct {
		env  string
		want int
	}{{"1", http.StatusOK}, {"", http.StatusNotFound}} {
		t.Run("SEKISHO_PPROF="+tc.env, func(t *testing.T) {
			t.Setenv("SEKISHO_PPROF", tc.env)
			metrics := freeAddr(t)
			s := startServe(t, t.TempDir(), freeAddr(t), "--metrics-addr", metrics)
			for _, p := range []struct {
				path  string
				magic []byte // the start of a body
			}{
				{"/debug/pprof/profile?seconds=1", []byte{0x1f, 0x8b}}, // gzipped protobuf
				{"/debug/pprof/trace?seconds=1", []byte("go 1.")},      // the trace format's header
			} {
				code, body := get("http://" + metrics + p.path)
				if code != tc.want {
					t.Errorf("metrics listener %s: %d, want %d", p.path, code, tc.want)
				}
				if code == http.StatusOK && !bytes.HasPrefix(body, p.magic) {
					t.Errorf("metrics listener %s: body starts %q, want %q", p.path, body[:min(len(body), 8)], p.magic)
				}
				if code, _ := get(s.url + p.path); code == http.StatusOK {
					t.Errorf("data listener %s: %d: profiles must never be on it", p.path, code)
				}
			}
		})
	}
}
