package keys_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sekisho/sekisho/internal/softhsm"
	"github.com/sekisho/sekisho/keys"
)

// envChild makes the test binary a child process of
// TestPKCS11FirstKeyTwoProcesses: its value is the directory the child
// writes its results to.
const envChild = "SEKISHO_TEST_PKCS11_CHILD"

// procResult is what one child process made: per org, a DEK, its wrapping
// and the org's index root.
type procResult struct {
	Org     string `json:"org"`
	DEK     []byte `json:"dek"`
	Wrapped []byte `json:"wrapped"`
	Version int    `json:"version"`
	Root    []byte `json:"root"`
}

const procOrgs = 24

// TestPKCS11FirstKeyTwoProcesses: two sekisho processes sharing one token
// (two serve nodes, or serve and an offline verb) use the same orgs for
// the first time at the same instant. Each makes, for each of 24 new orgs,
// a record's data key (the org's first KEK in the region) and the org's
// index root. Afterwards a third connection to the token (this process)
// must open every data key either process wrapped, and see the index root
// each of them used. Before the fix, both processes could generate a "v1"
// KEK and an index key under one label: the data keys wrapped by the
// process whose key a later scan did not pick did not open (ErrOpen), and
// the two processes' index roots differed.
func TestPKCS11FirstKeyTwoProcesses(t *testing.T) {
	if dir := os.Getenv(envChild); dir != "" {
		pkcs11Child(t, dir)
		return
	}
	ctx := context.Background()
	tok := softhsm.New(t, "sekisho-procs")
	dir := t.TempDir()
	start := filepath.Join(dir, "go")
	var mu sync.Mutex // the children's output buffers
	var procs []*exec.Cmd
	var outs []*bytes.Buffer
	ready := make(chan error, 2)
	for i := range 2 {
		cmd := exec.Command(os.Args[0], "-test.run=^TestPKCS11FirstKeyTwoProcesses$")
		cmd.Env = append(os.Environ(), envChild+"="+dir, "SEKISHO_TEST_PKCS11_NAME="+fmt.Sprint("p", i),
			"SEKISHO_TEST_PKCS11_MODULE="+tok.Module, "SEKISHO_TEST_PKCS11_TOKEN="+tok.Label, "SEKISHO_TEST_PKCS11_PIN_FILE="+tok.PINFile)
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		var errb bytes.Buffer
		cmd.Stderr = lockedWriter{&mu, &errb}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill() }) // a child left waiting when the test failed
		procs, outs = append(procs, cmd), append(outs, &errb)
		go func() {
			sc := bufio.NewScanner(stdout)
			var said []string
			for sc.Scan() {
				if sc.Text() == "ready" {
					ready <- nil
					for sc.Scan() { // the child's test output
						mu.Lock()
						errb.WriteString(sc.Text() + "\n")
						mu.Unlock()
					}
					return
				}
				said = append(said, sc.Text())
			}
			ready <- fmt.Errorf("a child ended before it was ready: %v\n%s\n%s", sc.Err(), strings.Join(said, "\n"), &errb)
		}()
	}
	for range procs {
		if err := <-ready; err != nil {
			t.Fatal(err)
		}
	}
	// Both children are connected to the token and waiting: let them go.
	if err := os.WriteFile(start, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for i, cmd := range procs {
		if err := cmd.Wait(); err != nil {
			mu.Lock()
			t.Fatalf("child %d: %v\n%s", i, err, outs[i])
		}
	}
	fresh := openHSM(t, tok)
	roots := map[string][]byte{}
	for i := range procs {
		b, err := os.ReadFile(filepath.Join(dir, fmt.Sprint("p", i, ".json")))
		if err != nil {
			t.Fatal(err)
		}
		var rs []procResult
		if err := json.Unmarshal(b, &rs); err != nil {
			t.Fatal(err)
		}
		if len(rs) != procOrgs {
			t.Fatalf("child %d made %d results, want %d", i, len(rs), procOrgs)
		}
		for _, r := range rs {
			a := keys.DEKAD{Org: r.Org, Region: "jp", Collection: "users", RecordID: fmt.Sprint("p", i), KEKVersion: r.Version}
			if r.Version != 1 {
				t.Errorf("child %d: %s wrapped under KEK v%d, want v1", i, r.Org, r.Version)
			}
			got, err := fresh.UnwrapDEK(ctx, a, r.Wrapped)
			if err != nil || !bytes.Equal(got, r.DEK) {
				t.Errorf("child %d: the data key of %s does not open on another connection: %v", i, r.Org, err)
			}
			if want, ok := roots[r.Org]; ok && !bytes.Equal(want, r.Root) {
				t.Errorf("%s: the two processes used different index roots", r.Org)
			}
			roots[r.Org] = r.Root
		}
	}
	for org := range roots {
		index, keks, err := keys.KeyCounts(ctx, fresh, org, "jp")
		if err != nil || index != 1 || len(keks) != 1 || keks[1] != 1 {
			t.Errorf("%s: %d index keys and KEKs %v in the token (%v), want one of each", org, index, keks, err)
		}
	}
	for org, root := range roots {
		if got, err := fresh.IndexRoot(ctx, org); err != nil || !bytes.Equal(got, root) {
			t.Errorf("%s: the index root seen anew differs from the one the processes used (%v)", org, err)
		}
	}
}

// pkcs11Child is one process of TestPKCS11FirstKeyTwoProcesses: it
// connects, says ready, waits for the go file, then uses procOrgs new orgs
// for the first time, a few at once, and writes what it made.
func pkcs11Child(t *testing.T, dir string) {
	ctx := context.Background()
	name := os.Getenv("SEKISHO_TEST_PKCS11_NAME")
	p, err := keys.OpenPKCS11(keys.PKCS11Config{Module: os.Getenv("SEKISHO_TEST_PKCS11_MODULE"),
		TokenLabel: os.Getenv("SEKISHO_TEST_PKCS11_TOKEN"), PINFile: os.Getenv("SEKISHO_TEST_PKCS11_PIN_FILE")})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	fmt.Println("ready")
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(time.Millisecond) {
		if _, err := os.Stat(filepath.Join(dir, "go")); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no go from the parent")
		}
	}
	var (
		mu  sync.Mutex
		out []procResult
		wg  sync.WaitGroup
	)
	for i := range procOrgs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			org := fmt.Sprint("org", i)
			dek, _ := keys.NewKey()
			w, v, err := p.WrapDEK(ctx, keys.DEKAD{Org: org, Region: "jp", Collection: "users", RecordID: name}, dek)
			if err != nil {
				t.Error(err)
				return
			}
			root, err := p.IndexRoot(ctx, org)
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			out = append(out, procResult{Org: org, DEK: dek, Wrapped: w, Version: v, Root: root})
			mu.Unlock()
		}()
	}
	wg.Wait()
	b, err := json.Marshal(out)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".json"), b, 0o600); err != nil {
		t.Fatal(err)
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  *bytes.Buffer
}

func (l lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}
