package e2e

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
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

	"github.com/sekisho/sekisho/access/dpop"
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
	// http is the client of the server (one that trusts its test CA when it
	// serves TLS).
	http *http.Client
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
	return startServerOn(t, freeAddr(t), "http", &http.Client{Timeout: 10 * time.Second}, dir, key, extra...)
}

// startServerOn starts `sekisho serve --addr addr` and waits until scheme://addr/readyz
// answers to client.
func startServerOn(t *testing.T, addr, scheme string, client *http.Client, dir, key string, extra ...string) *server {
	t.Helper()
	logf, err := os.OpenFile(filepath.Join(filepath.Dir(dir), "serve.log"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	// Each server's metrics listener on a free port (its default,
	// 127.0.0.1:9700, is one per host); extra may name one.
	// The tests' devices are file keys: the default device requirement
	// (hardware-bound, issue 16) is tested by cmd/sekisho TestDevicePolicyTPM.
	args := append([]string{"serve", "--addr", addr, "--data", dir, "--checkpoint-interval", "1s", "--metrics-addr", "127.0.0.1:0",
		"--device-requirement-default", "any"}, extra...)
	cmd := exec.Command(binary, args...)
	cmd.Env = append(os.Environ(), "SEKISHO_MASTER_KEY="+key)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &server{t: t, dir: dir, base: scheme + "://" + addr, cmd: cmd, log: logf, done: make(chan error, 1), http: client}
	go func() { s.done <- cmd.Wait() }()
	t.Cleanup(func() { s.kill() })
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := client.Get(s.base + "/readyz")
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

// stop sends SIGTERM (a graceful shutdown: the log lines held for a batch
// are written out) and waits for the process to be gone.
func (s *server) stop() { s.end(syscall.SIGTERM, 30*time.Second) }

// kill sends SIGKILL (no shutdown, no final checkpoint, nothing flushed)
// and waits for the process to be gone.
func (s *server) kill() { s.end(syscall.SIGKILL, 10*time.Second) }

// end sends sig to a running server and waits up to within for it to exit.
func (s *server) end(sig syscall.Signal, within time.Duration) {
	if s.cmd.ProcessState == nil {
		s.cmd.Process.Signal(sig)
	}
	select {
	case err := <-s.done:
		s.done <- err
	case <-time.After(within):
		s.t.Errorf("sekisho serve (pid %d) did not exit after %v", s.cmd.Process.Pid, sig)
	}
	s.log.Close()
}

// creds is the device-bound credential of the first admin of a data
// directory: a DPoP device key enrolled by spending the bootstrap token.
type creds struct {
	key *dpop.Key
}

// enrol spends the bootstrap token of srv's data directory on a new device
// key for the first admin (POST /v1/bootstrap), as sekisho login does.
func enrol(t *testing.T, srv *server) *creds {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(srv.dir, "bootstrap-admin-token"))
	if err != nil {
		t.Fatal(err)
	}
	key, err := dpop.GenerateKey("ed25519")
	if err != nil {
		t.Fatal(err)
	}
	url := srv.base + "/v1/bootstrap"
	proof, err := key.Proof("POST", url, "", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("POST", url, strings.NewReader(`{"principal":"e2e-admin","device_name":"e2e"}`))
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(b)))
	req.Header.Set("DPoP", proof)
	req.Header.Set("Content-Type", "application/json")
	resp, err := srv.http.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("bootstrap: %s: %s", resp.Status, body)
	}
	return &creds{key: key}
}

// service creates a principal with the service role (whose volume budget
// fits a load test; an admin's does not, and the guard would rightly stop
// it) and enrols a new device key for it, approved by admin.
func service(t *testing.T, srv *server, admin *creds) *creds {
	t.Helper()
	auth := admin.authorize(t, srv)
	client := srv.http
	resp, b, err := do(client, auth, "POST", srv.base+"/v1/principals", "", []byte(`{"id":"e2e-svc","org":"operator","kind":"service","roles":["service"]}`))
	if err != nil || resp.StatusCode/100 != 2 {
		t.Fatalf("create service principal: %v %s", err, b)
	}
	key, err := dpop.GenerateKey("ed25519")
	if err != nil {
		t.Fatal(err)
	}
	url := srv.base + "/v1/devices"
	proof, err := key.Proof("POST", url, "", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("POST", url, strings.NewReader(`{"principal":"e2e-svc","name":"e2e-load"}`))
	req.Header.Set("DPoP", proof)
	req.Header.Set("Content-Type", "application/json")
	resp, err = client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	var dev struct{ ID string }
	if resp.StatusCode/100 != 2 || json.Unmarshal(b, &dev) != nil || dev.ID == "" {
		t.Fatalf("enrol service device: %s: %s", resp.Status, b)
	}
	if resp, b, err := do(client, auth, "POST", srv.base+"/v1/devices/"+dev.ID+"/approve", "", nil); err != nil || resp.StatusCode/100 != 2 {
		t.Fatalf("approve service device: %v %s", err, b)
	}
	return &creds{key: key}
}

// authorize is the one place that gives a request its credentials: an
// access token of the enrolled device from srv (POST /v1/token), sent as
// "Authorization: DPoP <token>" with a fresh DPoP proof of the device key
// for each request's method and URL.
func (c *creds) authorize(t *testing.T, srv *server) func(*http.Request) {
	t.Helper()
	url := srv.base + "/v1/token"
	proof, err := c.key.Proof("POST", url, "", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("POST", url, strings.NewReader("grant_type=client_credentials"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("DPoP", proof)
	resp, err := srv.http.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &tok) != nil || tok.AccessToken == "" {
		t.Fatalf("token: %s: %s", resp.Status, body)
	}
	return func(r *http.Request) {
		p, err := c.key.Proof(r.Method, r.URL.Scheme+"://"+r.URL.Host+r.URL.EscapedPath(), tok.AccessToken, time.Now())
		if err != nil {
			panic(err)
		}
		r.Header.Set("Authorization", "DPoP "+tok.AccessToken)
		r.Header.Set("DPoP", p)
	}
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
