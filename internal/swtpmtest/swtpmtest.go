// Package swtpmtest starts a software TPM 2.0 (Debian's swtpm) for a test.
//
// Without the swtpm program the tests that need a TPM skip, unless
// SEKISHO_REQUIRE_SWTPM=1, when they fail: scripts/test.sh sets it (and
// .ci/run installs swtpm), so that a missing TPM cannot pass for a green
// run.
package swtpmtest

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"
)

// EnvRequire makes a missing swtpm a failure.
const EnvRequire = "SEKISHO_REQUIRE_SWTPM"

// TPM is a running swtpm.
type TPM struct {
	// TCTI names it for sekisho: swtpm:host=127.0.0.1,port=P.
	TCTI string
	// StateDir holds its state (its seeds: another directory is another TPM).
	StateDir string
}

// Start runs `swtpm socket --tpm2` on a free port pair with a fresh state
// directory (a new TPM, with its own seeds), started (startup-clear), and
// stops it when the test ends.
func Start(t testing.TB) *TPM {
	t.Helper()
	bin, err := exec.LookPath("swtpm")
	if err != nil {
		const msg = "swtpm is not installed (apt-get install swtpm swtpm-tools tpm2-tools)"
		if os.Getenv(EnvRequire) == "1" {
			t.Fatal(msg + " (failing because " + EnvRequire + "=1)")
		}
		t.Skip(msg)
	}
	dir := t.TempDir()
	for attempt := 0; ; attempt++ {
		port := freePortPair(t)
		var stderr bytes.Buffer
		cmd := exec.Command(bin, "socket", "--tpm2",
			"--server", "type=tcp,bindaddr=127.0.0.1,port="+strconv.Itoa(port),
			"--ctrl", "type=tcp,bindaddr=127.0.0.1,port="+strconv.Itoa(port+1),
			"--tpmstate", "dir="+dir, "--flags", "not-need-init,startup-clear")
		cmd.Stdout, cmd.Stderr = &stderr, &stderr
		if err := cmd.Start(); err != nil {
			t.Fatalf("swtpmtest: start swtpm: %v", err)
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		deadline := time.Now().Add(20 * time.Second)
		for {
			if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
				c.Close()
				t.Cleanup(func() {
					cmd.Process.Kill()
					<-exited
				})
				return &TPM{TCTI: fmt.Sprintf("swtpm:host=127.0.0.1,port=%d", port), StateDir: dir}
			}
			select {
			case err := <-exited:
				if attempt < 3 { // the port was taken meanwhile: another pair
					goto retry
				}
				t.Fatalf("swtpmtest: swtpm exited: %v: %s", err, stderr.String())
			case <-time.After(50 * time.Millisecond):
			}
			if time.Now().After(deadline) {
				cmd.Process.Kill()
				<-exited
				t.Fatalf("swtpmtest: swtpm did not listen on %s: %s", addr, stderr.String())
			}
		}
	retry:
	}
}

// freePortPair returns a port P such that P and P+1 were free just now.
func freePortPair(t testing.TB) int {
	t.Helper()
	for i := 0; i < 50; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("swtpmtest: %v", err)
		}
		p := l.Addr().(*net.TCPAddr).Port
		l2, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p+1)))
		l.Close()
		if err == nil {
			l2.Close()
			return p
		}
	}
	t.Fatal("swtpmtest: no free port pair")
	return 0
}
