package e2e

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"
)

// This file is an outside verifier: it imports nothing of sekisho, talks to
// a running server only through the auditor's interface (GET /v1/audit/...),
// hashes leaves per RFC 6962 itself, and checks proofs with
// transparency-dev/merkle's proof package and signatures with x/mod's note.

// auditor is a client of the auditor's interface.
type auditor struct {
	t      *testing.T
	base   string
	auth   func(*http.Request)
	client *http.Client
}

func (a *auditor) get(path string, wantType string) []byte {
	a.t.Helper()
	resp, b, err := do(a.client, a.auth, "GET", a.base+path, "", nil)
	if err != nil {
		a.t.Fatalf("GET %s: %v", path, err)
	}
	if resp.StatusCode != http.StatusOK {
		a.t.Fatalf("GET %s: %s: %s", path, resp.Status, b)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, wantType) {
		a.t.Fatalf("GET %s: Content-Type %q, want %s", path, ct, wantType)
	}
	return b
}

// getJSON decodes the response strictly into v: a key the interface does not
// name is an error, so the test pins the exact shapes.
func (a *auditor) getJSON(path string, v any) {
	a.t.Helper()
	dec := json.NewDecoder(bytes.NewReader(a.get(path, "application/json")))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		a.t.Fatalf("GET %s: %v", path, err)
	}
}

type checkpoint struct {
	origin string
	size   uint64
	root   []byte
}

// checkpoint fetches and opens the signed checkpoint with the pinned key.
func (a *auditor) checkpoint(v note.Verifier) checkpoint {
	a.t.Helper()
	raw := a.get("/v1/audit/checkpoint", "text/plain")
	n, err := note.Open(raw, note.VerifierList(v))
	if err != nil {
		a.t.Fatalf("checkpoint signature: %v\n%s", err, raw)
	}
	lines := strings.Split(n.Text, "\n")
	if len(lines) < 4 || lines[len(lines)-1] != "" {
		a.t.Fatalf("checkpoint text is not origin, size, root: %q", n.Text)
	}
	size, err := strconv.ParseUint(lines[1], 10, 64)
	if err != nil {
		a.t.Fatalf("checkpoint size %q: %v", lines[1], err)
	}
	root, err := base64.StdEncoding.DecodeString(lines[2])
	if err != nil || len(root) != sha256.Size {
		a.t.Fatalf("checkpoint root %q: %v", lines[2], err)
	}
	return checkpoint{origin: lines[0], size: size, root: root}
}

type eventItem struct {
	Index uint64          `json:"index"`
	Leaf  string          `json:"leaf"`
	Event json.RawMessage `json:"event"`
}

type eventsPage struct {
	Events []eventItem `json:"events"`
	Next   *uint64     `json:"next"`
}

// leaves pages through GET /v1/audit/events from 0 with no filter and
// returns every leaf, checking that indexes are contiguous and that each
// event object is the leaf decoded.
func (a *auditor) leaves(limit int) [][]byte {
	a.t.Helper()
	var out [][]byte
	path := fmt.Sprintf("/v1/audit/events?from=0&limit=%d", limit)
	for {
		var p eventsPage
		a.getJSON(path, &p)
		for _, it := range p.Events {
			if it.Index != uint64(len(out)) {
				a.t.Fatalf("events: index %d where %d was expected", it.Index, len(out))
			}
			leaf, err := base64.StdEncoding.DecodeString(it.Leaf)
			if err != nil {
				a.t.Fatalf("events: leaf %d is not base64: %v", it.Index, err)
			}
			var fromLeaf, given any
			if json.Unmarshal(leaf, &fromLeaf) != nil || json.Unmarshal(it.Event, &given) != nil || !jsonEqual(fromLeaf, given) {
				a.t.Fatalf("events: event %d is not its leaf decoded:\nleaf  %s\nevent %s", it.Index, leaf, it.Event)
			}
			out = append(out, leaf)
		}
		if p.Next == nil {
			if len(p.Events) == 0 && len(out) > 0 {
				a.t.Fatal("events: the previous page gave next, but no event follows (next must be absent at the end)")
			}
			return out
		}
		if len(p.Events) == 0 || *p.Next != p.Events[len(p.Events)-1].Index+1 {
			a.t.Fatalf("events: next %d after a page ending at %d", *p.Next, len(out))
		}
		path = fmt.Sprintf("/v1/audit/events?from=%d&limit=%d", *p.Next, limit)
	}
}

func jsonEqual(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return bytes.Equal(x, y)
}

// mth is the Merkle Tree Hash of RFC 6962 section 2.1, written from the RFC
// rather than taken from a library: k is the largest power of two below n.
func mth(leaves [][]byte) []byte {
	switch len(leaves) {
	case 0:
		h := sha256.Sum256(nil)
		return h[:]
	case 1:
		h := sha256.Sum256(append([]byte{0}, leaves[0]...))
		return h[:]
	}
	k := 1
	for k*2 < len(leaves) {
		k *= 2
	}
	h := sha256.New()
	h.Write([]byte{1})
	h.Write(mth(leaves[:k]))
	h.Write(mth(leaves[k:]))
	return h.Sum(nil)
}

func b64s(t *testing.T, ss []string) [][]byte {
	t.Helper()
	out := make([][]byte, len(ss))
	for i, s := range ss {
		b, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			t.Fatalf("proof hash %q: %v", s, err)
		}
		out[i] = b
	}
	return out
}

func TestIndependentVerifier(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs a server")
	}
	dir := filepath.Join(t.TempDir(), "data")
	srv := startServer(t, dir, masterKey(), "--checkpoint-interval", "1h")
	auth := enrol(t, srv).authorize(t, srv)
	client := &http.Client{Timeout: 10 * time.Second}
	a := &auditor{t: t, base: srv.base, auth: auth, client: client}

	// Some traffic, one request of which the client keeps the id of.
	var chosen string
	traffic := func(n int) {
		for i := 0; i < n; i++ {
			resp, b, err := do(client, auth, "POST", srv.base+"/v1/collections/users/records", "support",
				[]byte(fmt.Sprintf(`{"region":"jp","fields":{"display_name":"User %d","country":"JP"}}`, i)))
			if err != nil || resp.StatusCode != http.StatusCreated {
				t.Fatalf("create: %v %v %s", err, resp, b)
			}
			if i == n/2 && chosen == "" {
				chosen = resp.Header.Get("X-Request-Id")
			}
		}
	}
	traffic(13)

	// The key the auditor pins: the one serve wrote to the data directory,
	// which the server must also serve.
	pinned, err := os.ReadFile(filepath.Join(dir, "audit-verifier-key"))
	if err != nil {
		t.Fatal(err)
	}
	served := a.get("/v1/audit/verifier-key", "text/plain")
	if strings.TrimSpace(string(served)) != strings.TrimSpace(string(pinned)) {
		t.Fatalf("served verifier key %q differs from the pinned %q", served, pinned)
	}
	verifier, err := note.NewVerifier(strings.TrimSpace(string(pinned)))
	if err != nil {
		t.Fatalf("verifier key: %v", err)
	}

	cpA := a.checkpoint(verifier)
	traffic(22)
	cpB := a.checkpoint(verifier)
	if cpA.size < 13 || cpB.size < cpA.size+22 || cpA.origin != cpB.origin {
		t.Fatalf("checkpoints %d and %d (origins %q, %q)", cpA.size, cpB.size, cpA.origin, cpB.origin)
	}

	// Recompute both roots from every leaf, paging from 0.
	leaves := a.leaves(7)
	if uint64(len(leaves)) < cpB.size {
		t.Fatalf("%d leaves served, checkpoint signs %d", len(leaves), cpB.size)
	}
	if got := mth(leaves[:cpA.size]); !bytes.Equal(got, cpA.root) {
		t.Fatalf("root of the first %d leaves %x, checkpoint says %x", cpA.size, got, cpA.root)
	}
	if got := mth(leaves[:cpB.size]); !bytes.Equal(got, cpB.root) {
		t.Fatalf("root of the first %d leaves %x, checkpoint says %x", cpB.size, got, cpB.root)
	}

	// Inclusion of the chosen response's event, found by its request id.
	var found eventsPage
	a.getJSON("/v1/audit/events?request_id="+url.QueryEscape(chosen), &found)
	if len(found.Events) != 1 || found.Next != nil {
		t.Fatalf("events of request %s: %+v", chosen, found)
	}
	item := found.Events[0]
	if leaf, _ := base64.StdEncoding.DecodeString(item.Leaf); !bytes.Equal(leaf, leaves[item.Index]) {
		t.Fatalf("the filtered event %d differs from the one served in order", item.Index)
	}
	var ev struct {
		RequestID string `json:"request_id"`
		Decision  string `json:"decision"`
		Action    string `json:"action"`
	}
	json.Unmarshal(item.Event, &ev)
	if ev.RequestID != chosen || ev.Decision != "allow" || ev.Action != "create" {
		t.Fatalf("chosen event: %+v", ev)
	}
	var incl struct {
		Index    uint64   `json:"index"`
		TreeSize uint64   `json:"tree_size"`
		Hashes   []string `json:"hashes"`
	}
	a.getJSON(fmt.Sprintf("/v1/audit/proof/inclusion?index=%d&size=%d", item.Index, cpB.size), &incl)
	if incl.Index != item.Index || incl.TreeSize != cpB.size {
		t.Fatalf("inclusion proof for %d in %d: %+v", item.Index, cpB.size, incl)
	}
	leafHash := rfc6962.DefaultHasher.HashLeaf(leaves[item.Index])
	inclProof := b64s(t, incl.Hashes)
	if err := proof.VerifyInclusion(rfc6962.DefaultHasher, item.Index, cpB.size, leafHash, inclProof, cpB.root); err != nil {
		t.Fatalf("inclusion of event %d in checkpoint %d: %v", item.Index, cpB.size, err)
	}
	// A proof that verifies anything proves nothing: a flipped bit must fail.
	inclProof[0][0] ^= 1
	if proof.VerifyInclusion(rfc6962.DefaultHasher, item.Index, cpB.size, leafHash, inclProof, cpB.root) == nil {
		t.Fatal("a corrupted inclusion proof verified")
	}

	// Consistency between the two checkpoints.
	var cons struct {
		From   uint64   `json:"from"`
		To     uint64   `json:"to"`
		Hashes []string `json:"hashes"`
	}
	a.getJSON(fmt.Sprintf("/v1/audit/proof/consistency?from=%d&to=%d", cpA.size, cpB.size), &cons)
	if cons.From != cpA.size || cons.To != cpB.size {
		t.Fatalf("consistency proof %d to %d: %+v", cpA.size, cpB.size, cons)
	}
	consProof := b64s(t, cons.Hashes)
	if err := proof.VerifyConsistency(rfc6962.DefaultHasher, cpA.size, cpB.size, consProof, cpA.root, cpB.root); err != nil {
		t.Fatalf("consistency of checkpoints %d and %d: %v", cpA.size, cpB.size, err)
	}
	consProof[len(consProof)-1][0] ^= 1
	if proof.VerifyConsistency(rfc6962.DefaultHasher, cpA.size, cpB.size, consProof, cpA.root, cpB.root) == nil {
		t.Fatal("a corrupted consistency proof verified")
	}

	// A checkpoint signed by any other key is refused by the pinned verifier.
	_, otherKey, _ := note.GenerateKey(nil, cpA.origin)
	other, _ := note.NewVerifier(otherKey)
	if _, err := note.Open(a.get("/v1/audit/checkpoint", "text/plain"), note.VerifierList(other)); err == nil {
		t.Fatal("the checkpoint verified with a key that did not sign it")
	}
	t.Logf("verified: %d leaves, checkpoints %d and %d, inclusion of event %d (request %s)", len(leaves), cpA.size, cpB.size, item.Index, chosen)
}
