package e2e

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// binary is the sekisho binary built by TestMain.
var binary string

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	dir, err := os.MkdirTemp("", "sekisho-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	binary = filepath.Join(dir, "sekisho")
	build := exec.Command("go", "build", "-o", binary, "github.com/sekisho/sekisho/cmd/sekisho")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build sekisho:", err)
		return 1
	}
	return m.Run()
}

// server is a `sekisho serve` process.
type server struct {
	t    *testing.T
	dir  string
	base string
	cmd  *exec.Cmd
	log  *os.File
	done chan error
}

// masterKey returns a fresh base64 master key for a test's servers, given
// in the environment as an operator's secrets manager would.
func masterKey() string {
	var k [32]byte
	rand.Read(k[:])
	return base64.StdEncoding.EncodeToString(k[:])
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// startServer starts `sekisho serve` on dir and a free port and waits until
// it answers /readyz.
func startServer(t *testing.T, dir, key string, extra ...string) *server {
	t.Helper()
	addr := freeAddr(t)
	logf, err := os.OpenFile(filepath.Join(filepath.Dir(dir), "serve.log"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	args := append([]string{"serve", "--addr", addr, "--data", dir, "--checkpoint-interval", "1s"}, extra...)
	cmd := exec.Command(binary, args...)
	cmd.Env = append(os.Environ(), "SEKISHO_MASTER_KEY="+key)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &server{t: t, dir: dir, base: "http://" + addr, cmd: cmd, log: logf, done: make(chan error, 1)}
	go func() { s.done <- cmd.Wait() }()
	t.Cleanup(func() { s.kill() })
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get(s.base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return s
			}
		}
		select {
		case err := <-s.done:
			s.done <- err
			t.Fatalf("sekisho serve exited: %v; log:\n%s", err, readLog(dir))
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("sekisho serve did not become ready; log:\n%s", readLog(dir))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func readLog(dir string) string {
	b, _ := os.ReadFile(filepath.Join(filepath.Dir(dir), "serve.log"))
	return string(b)
}

// kill sends SIGKILL (no shutdown, no final checkpoint, nothing flushed)
// and waits for the process to be gone.
func (s *server) kill() {
	if s.cmd.ProcessState == nil {
		s.cmd.Process.Signal(syscall.SIGKILL)
	}
	select {
	case err := <-s.done:
		s.done <- err
	case <-time.After(10 * time.Second):
		s.t.Errorf("sekisho serve (pid %d) did not exit after SIGKILL", s.cmd.Process.Pid)
	}
	s.log.Close()
}

// authorize is the one place that gives a request its credentials: today
// the bootstrap admin token of the data directory, as a bearer token. When
// device-bound credentials land, only this function changes.
func authorize(t *testing.T, dir string) func(*http.Request) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "bootstrap-admin-token"))
	if err != nil {
		t.Fatal(err)
	}
	token := strings.TrimSpace(string(b))
	return func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+token) }
}

// sekisho runs the binary with args and returns its stdout and exit status.
func sekisho(t *testing.T, args ...string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	code := 0
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			t.Fatalf("sekisho %s: %v", strings.Join(args, " "), err)
		}
		code = ee.ExitCode()
	}
	if stderr.Len() > 0 {
		t.Logf("sekisho %s: stderr: %s", strings.Join(args, " "), stderr.String())
	}
	return string(out), code
}

// do sends one request and returns the response with its body read.
func do(client *http.Client, auth func(*http.Request), method, url, purpose string, body []byte) (*http.Response, []byte, error) {
	var rd io.Reader
	if body != nil {
		rd = strings.NewReader(string(body))
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		return nil, nil, err
	}
	auth(req)
	if purpose != "" {
		req.Header.Set("Sekisho-Purpose", purpose)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp, b, err
}
