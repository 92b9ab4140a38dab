package keys

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/miekg/pkcs11"
)

// PKCS11Config says how to reach a token through a PKCS#11 module.
type PKCS11Config struct {
	// Module is the path of the PKCS#11 library, for example
	// /usr/lib/softhsm/libsofthsm2.so.
	Module string
	// TokenLabel names the token (CKA_LABEL of the token info).
	TokenLabel string
	// PIN is the user PIN; PINFile, if PIN is empty, a file holding it.
	PIN     string
	PINFile string
	// Sessions is the number of sessions kept open (default 8).
	Sessions int
	// Refresh is how often the list of key versions is read again from the
	// token, so that a rotation made by another node is seen (default 10s).
	Refresh time.Duration
	// Retry is the least time between two attempts to reconnect after the
	// token was lost (default 1s).
	Retry time.Duration
	// LockDir holds the lock file the processes of one host take to make
	// a key (default os.TempDir()).
	LockDir string
}

// PKCS11 keeps the KEKs and the blind-index roots in an HSM behind a
// PKCS#11 module. Each KEK is an AES-256 key generated inside the token,
// sensitive and not extractable: it never leaves the HSM. Data keys are
// wrapped and unwrapped inside the HSM with AES-GCM (CKM_AES_GCM, a random
// 96-bit IV, 128-bit tag) bound to the same associated data as the local
// provider's. An org's blind-index root is HMAC-SHA-256 inside the HSM
// (CKM_SHA256_HMAC) under an org key that never leaves it, over a fixed label.
//
// Objects in the token, by CKA_LABEL:
//
//	sekisho/kek/<version>/<region>/<org>     AES-256 KEK
//	sekisho/index/<org>                      generic secret, the index root's key
//	sekisho/kek-destroyed/<region>/<org>     data object: highest destroyed version
//	sekisho/claim/<what>                     data object: a process making <what>
//
// Keys carry a random CKA_ID (16 bytes), and a wrapped data key names the
// CKA_ID of the KEK that wrapped it. PKCS#11 has no unique labels and no
// compare-and-swap, so several processes sharing a token (two serve nodes,
// serve and an offline verb) could each make "the" first KEK of an (org,
// region) or an org's index key (makeKey). Three things keep them apart or
// make it harmless:
//
//   - On one host, every change to the token's objects is made under a
//     lock file (hostLock), after a read of the token under the same lock;
//     a key is made only if that read does not show it.
//   - Across hosts, a key is made only by a process alone in the claim
//     protocol (exclusive): it creates a claim object, then looks at the
//     claims of the same label; only if it sees no other live claim does it
//     read the token again and make the key if still missing, then it
//     removes its claim; otherwise it removes its claim, waits a random
//     while and tries again. Of two processes, the one whose look comes
//     second sees the other's claim, or the other has finished and its key
//     is in the token. A claim older than claimStale (a process that died
//     holding it) is ignored and removed.
//   - Should two keys of one label exist anyway (tokens from before, or a
//     process stalled past claimStale), nothing becomes unreadable: a data
//     key is unwrapped with the exact KEK its CKA_ID names (wrapped keys
//     from before the ids, 60 bytes, are tried under every KEK of their
//     version); new wraps use the KEK with the lowest CKA_ID; an org's index
//     root is the lowest of the roots its index keys give, so every process
//     converges on the same; retiring and destroying take every object of
//     the label.
//
// When the token cannot be reached (module error, token removed, a key
// missing), operations fail with ErrKeyUnavailable and the provider tries to
// reconnect, at most once per Retry, on the next call.
type PKCS11 struct {
	cfg PKCS11Config
	pin string

	mu      sync.Mutex
	conn    *p11conn
	lastTry time.Time
	lastErr error
	// opMu is held for reading by every call into the module and for
	// writing by a reconnection, which finalises the module: a call never
	// runs into a module being torn down.
	opMu sync.RWMutex
	// genMu makes the first key of an (org, region) or an org once in this
	// process: concurrent first uses would each generate one under the same
	// label, and records wrapped under the one a scan does not pick would
	// not open.
	genMu sync.Mutex
	// hostMu guards the host lock (hostLock): its file, and how many
	// callers of this provider hold it.
	hostMu   sync.Mutex
	hostFile *os.File
	hostN    int
}

// kobj is a key object of the token: its CKA_ID (empty for keys made before
// ids) and its handle in this connection.
type kobj struct {
	id []byte
	h  pkcs11.ObjectHandle
}

// sortObjs orders the keys of one label by CKA_ID, the order every process
// agrees on.
func sortObjs(os []kobj) {
	slices.SortFunc(os, func(a, b kobj) int { return bytes.Compare(a.id, b.id) })
}

type p11conn struct {
	ctx      *pkcs11.Ctx
	slot     uint
	sessions chan pkcs11.SessionHandle
	all      []pkcs11.SessionHandle

	mu      sync.Mutex
	keks    map[string]map[int][]kobj // region/org -> version -> keys, lowest CKA_ID first
	dead    map[string]int            // region/org -> highest destroyed version
	indexes map[string][]kobj         // org -> index keys, lowest CKA_ID first
	probe   pkcs11.ObjectHandle       // 0 if none
	scanned time.Time
}

// Errors of key custody.
var (
	// ErrKeyUnavailable: the HSM cannot be reached or a key is missing. It
	// is temporary: the vault answers key-unavailable (503) and retries.
	ErrKeyUnavailable = errors.New("keys: key unavailable")
	// ErrKeyDestroyed: the KEK version was destroyed (crypto-shredded).
	ErrKeyDestroyed = errors.New("keys: key destroyed")
)

const (
	labelKEK       = "sekisho/kek/"
	labelIndex     = "sekisho/index/"
	labelDestroyed = "sekisho/kek-destroyed/"
	labelProbe     = "sekisho/probe"
	labelClaim     = "sekisho/claim/"
	// keyIDSize is the size of a key's random CKA_ID.
	keyIDSize = 16
	// claimStale is the age after which a claim is taken for the leftover
	// of a process that died making a key. Making a key takes milliseconds.
	claimStale = 30 * time.Second
	// claimWait bounds the wait for another process's claim.
	claimWait     = 2 * claimStale
	indexRootInfo = "sekisho/index-root/v1"
	gcmIVSize     = 12
	gcmTagBits    = 128
)

// OpenPKCS11 loads the module, finds the token and logs in. The token must
// be reachable at start.
func OpenPKCS11(cfg PKCS11Config) (*PKCS11, error) {
	if cfg.Module == "" || cfg.TokenLabel == "" {
		return nil, errors.New("keys: pkcs11 needs a module path and a token label")
	}
	if cfg.Sessions <= 0 {
		cfg.Sessions = 8
	}
	if cfg.Refresh <= 0 {
		cfg.Refresh = 10 * time.Second
	}
	if cfg.Retry <= 0 {
		cfg.Retry = time.Second
	}
	if cfg.LockDir == "" {
		cfg.LockDir = os.TempDir()
	}
	p := &PKCS11{cfg: cfg, pin: cfg.PIN}
	if p.pin == "" {
		if cfg.PINFile == "" {
			return nil, errors.New("keys: pkcs11 needs a PIN file")
		}
		b, err := os.ReadFile(cfg.PINFile)
		if err != nil {
			return nil, fmt.Errorf("keys: read PIN file: %w", err)
		}
		if fi, err := os.Stat(cfg.PINFile); err == nil && fi.Mode().Perm()&0o077 != 0 {
			return nil, fmt.Errorf("keys: PIN file %s is readable by others (mode %v): chmod 600 it", cfg.PINFile, fi.Mode().Perm())
		}
		p.pin = strings.TrimSpace(string(b))
	}
	c, err := p.connect(false)
	if err != nil {
		return nil, err
	}
	p.conn = c
	return p, nil
}

// connect loads and initialises the module, finds the token, opens the
// sessions and logs in. With reinit, the module is finalised first, so that
// it reads its tokens again (SoftHSM sees a token come back only so); another
// provider of this process on the same module then reconnects too.
func (p *PKCS11) connect(reinit bool) (*p11conn, error) {
	ctx := pkcs11.New(p.cfg.Module)
	if ctx == nil {
		return nil, fmt.Errorf("keys: cannot load the PKCS#11 module %s", p.cfg.Module)
	}
	// Under the host lock (see hostLock): SoftHSM2 leaves out of its slot
	// list a token whose files another process is writing while it reads
	// them at C_Initialize.
	unlock, err := p.hostLock(context.Background())
	if err != nil {
		ctx.Destroy()
		return nil, err
	}
	defer unlock()
	if reinit {
		ctx.Finalize()
	}
	if err := ctx.Initialize(); err != nil && !isCode(err, pkcs11.CKR_CRYPTOKI_ALREADY_INITIALIZED) {
		ctx.Destroy()
		return nil, fmt.Errorf("keys: initialise %s: %w", p.cfg.Module, err)
	}
	c := &p11conn{ctx: ctx}
	fail := func(err error) (*p11conn, error) {
		c.close()
		return nil, err
	}
	slots, err := ctx.GetSlotList(true)
	if err != nil {
		return fail(fmt.Errorf("keys: list slots: %w", err))
	}
	found := false
	for _, s := range slots {
		ti, err := ctx.GetTokenInfo(s)
		if err == nil && strings.TrimRight(ti.Label, " \x00") == p.cfg.TokenLabel {
			c.slot, found = s, true
			break
		}
	}
	if !found {
		return fail(fmt.Errorf("keys: no token labelled %q in %s", p.cfg.TokenLabel, p.cfg.Module))
	}
	c.sessions = make(chan pkcs11.SessionHandle, p.cfg.Sessions)
	for i := range p.cfg.Sessions {
		sh, err := ctx.OpenSession(c.slot, pkcs11.CKF_SERIAL_SESSION|pkcs11.CKF_RW_SESSION)
		if err != nil {
			return fail(fmt.Errorf("keys: open session: %w", err))
		}
		c.all = append(c.all, sh)
		c.sessions <- sh
		if i == 0 {
			// Login is per application and token: one session logs all in.
			if err := ctx.Login(sh, pkcs11.CKU_USER, p.pin); err != nil && !isCode(err, pkcs11.CKR_USER_ALREADY_LOGGED_IN) {
				return fail(fmt.Errorf("keys: log in to token %q: %w", p.cfg.TokenLabel, err))
			}
		}
	}
	sh := <-c.sessions
	err = c.scan(sh)
	if err == nil && c.probe == 0 {
		// Made, as every change is, under the host lock after a read.
		var k kobj
		err = busy(func() (err error) {
			k, err = generateAES(c, sh, labelProbe)
			return err
		})
		c.probe = k.h
		if err != nil {
			err = fmt.Errorf("keys: make the probe key in the token: %w", err)
		}
	}
	c.sessions <- sh
	if err != nil {
		return fail(err)
	}
	return c, nil
}

// check encrypts a block under the probe key: the token is present, logged
// in, and its keys work. A token removed under a live session still answers
// session calls, and finds objects, from memory; a key operation fails.
func (c *p11conn) check(sh pkcs11.SessionHandle) error {
	c.mu.Lock()
	h := c.probe
	c.mu.Unlock()
	if h == 0 {
		return fmt.Errorf("%w: the probe key is missing from the token", errMissing)
	}
	iv := make([]byte, gcmIVSize)
	params := pkcs11.NewGCMParams(iv, nil, gcmTagBits)
	defer params.Free()
	if err := c.ctx.EncryptInit(sh, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_AES_GCM, params)}, h); err != nil {
		return err
	}
	_, err := c.ctx.Encrypt(sh, make([]byte, 16))
	return err
}

// errMissing: a key that should be in the token is not.
var errMissing = fmt.Errorf("%w: key missing from the token", ErrKeyUnavailable)

// generateAES makes an AES-256 key labelled label with a random CKA_ID.
func generateAES(c *p11conn, sh pkcs11.SessionHandle, label string) (kobj, error) {
	id, err := newKeyID()
	if err != nil {
		return kobj{}, err
	}
	h, err := c.ctx.GenerateKey(sh, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_AES_KEY_GEN, nil)}, []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY),
		pkcs11.NewAttribute(pkcs11.CKA_ID, id),
		pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_AES),
		pkcs11.NewAttribute(pkcs11.CKA_VALUE_LEN, KeySize),
		pkcs11.NewAttribute(pkcs11.CKA_LABEL, label),
		pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true),
		pkcs11.NewAttribute(pkcs11.CKA_PRIVATE, true),
		pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, true),
		pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, false),
		pkcs11.NewAttribute(pkcs11.CKA_ENCRYPT, true),
		pkcs11.NewAttribute(pkcs11.CKA_DECRYPT, true),
		pkcs11.NewAttribute(pkcs11.CKA_WRAP, false),
		pkcs11.NewAttribute(pkcs11.CKA_UNWRAP, false),
	})
	return kobj{id: id, h: h}, err
}

func newKeyID() ([]byte, error) {
	id := make([]byte, keyIDSize)
	if _, err := rand.Read(id); err != nil {
		return nil, fmt.Errorf("keys: random key id: %w", err)
	}
	return id, nil
}

func (c *p11conn) close() {
	for _, sh := range c.all {
		c.ctx.CloseSession(sh)
	}
	c.all = nil
}

// Close closes the sessions and finalises the module.
func (p *PKCS11) Close() error {
	p.opMu.Lock()
	defer p.opMu.Unlock()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.conn != nil {
		p.conn.close()
		p.conn.ctx.Finalize()
		p.conn.ctx.Destroy()
		p.conn = nil
	}
	p.hostMu.Lock()
	defer p.hostMu.Unlock()
	if p.hostFile != nil {
		p.hostFile.Close()
		p.hostFile = nil
	}
	return nil
}

func isCode(err error, code uint) bool {
	var e pkcs11.Error
	return errors.As(err, &e) && uint(e) == code
}

// scan reads the labels of every sekisho object of the token.
// sh is a session the caller holds (never one taken from the pool here: a
// caller holding one and waiting for a second could wait for ever).
func (c *p11conn) scan(sh pkcs11.SessionHandle) error {
	var err error
	for range 5 {
		if err = c.scan1(sh); !errors.Is(err, errChanged) {
			break
		}
	}
	return err
}

// errChanged: an object changed while the token was read (see attrs).
var errChanged = errors.New("keys: the token changed while it was read")

func (c *p11conn) scan1(sh pkcs11.SessionHandle) error {
	keks := map[string]map[int][]kobj{}
	dead := map[string]int{}
	indexes := map[string][]kobj{}
	var probe pkcs11.ObjectHandle
	for _, class := range []uint{pkcs11.CKO_SECRET_KEY, pkcs11.CKO_DATA} {
		hs, err := c.find(sh, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_CLASS, class)})
		if err != nil {
			return err
		}
		for _, h := range hs {
			a, err := c.attrs(sh, h, pkcs11.CKA_LABEL)
			if isCode(err, pkcs11.CKR_OBJECT_HANDLE_INVALID) {
				continue // removed meanwhile
			}
			if err != nil {
				return err
			}
			label := string(a[0].Value)
			if !strings.HasPrefix(label, "sekisho/") {
				continue // not ours
			}
			more := []uint{pkcs11.CKA_VALUE}
			if class == pkcs11.CKO_SECRET_KEY {
				more = []uint{pkcs11.CKA_ID, pkcs11.CKA_VALUE_LEN}
			}
			b, err := c.attrs(sh, h, more...)
			if isCode(err, pkcs11.CKR_OBJECT_HANDLE_INVALID) {
				continue
			}
			if err != nil {
				return err
			}
			a = append(a, b...)
			if class == pkcs11.CKO_SECRET_KEY && bytesToUint(a[2].Value) != KeySize {
				// Being made by another process: SoftHSM writes an
				// object's attributes one by one, the key's value last.
				continue
			}
			switch {
			case class == pkcs11.CKO_SECRET_KEY && strings.HasPrefix(label, labelKEK):
				rest := strings.TrimPrefix(label, labelKEK)
				v, ro, ok := strings.Cut(rest, "/")
				n, err := strconv.Atoi(v)
				if !ok || err != nil {
					continue
				}
				if keks[ro] == nil {
					keks[ro] = map[int][]kobj{}
				}
				keks[ro][n] = append(keks[ro][n], kobj{id: a[1].Value, h: h})
			case class == pkcs11.CKO_SECRET_KEY && label == labelProbe:
				probe = h
			case class == pkcs11.CKO_SECRET_KEY && strings.HasPrefix(label, labelIndex):
				org := strings.TrimPrefix(label, labelIndex)
				indexes[org] = append(indexes[org], kobj{id: a[1].Value, h: h})
			case class == pkcs11.CKO_DATA && strings.HasPrefix(label, labelDestroyed):
				if n, err := strconv.Atoi(string(a[1].Value)); err == nil {
					dead[strings.TrimPrefix(label, labelDestroyed)] = n
				}
			}
		}
	}
	for _, vs := range keks {
		for _, os := range vs {
			sortObjs(os)
		}
	}
	for _, os := range indexes {
		sortObjs(os)
	}
	c.mu.Lock()
	c.keks, c.dead, c.indexes, c.probe, c.scanned = keks, dead, indexes, probe, time.Now()
	c.mu.Unlock()
	return nil
}

// attrs reads attributes of object h; a failure other than a handle gone is
// errChanged (SoftHSM answers an object being changed by another process
// with CKR_BUFFER_TOO_SMALL, say): the scan starts again.
func (c *p11conn) attrs(sh pkcs11.SessionHandle, h pkcs11.ObjectHandle, types ...uint) ([]*pkcs11.Attribute, error) {
	tmpl := make([]*pkcs11.Attribute, len(types))
	for i, t := range types {
		tmpl[i] = pkcs11.NewAttribute(t, nil)
	}
	a, err := c.ctx.GetAttributeValue(sh, h, tmpl)
	if err != nil && !isCode(err, pkcs11.CKR_OBJECT_HANDLE_INVALID) {
		return nil, fmt.Errorf("%w: read an object's attributes: %w", errChanged, err)
	}
	return a, err
}

func (c *p11conn) find(sh pkcs11.SessionHandle, tmpl []*pkcs11.Attribute) ([]pkcs11.ObjectHandle, error) {
	if err := c.ctx.FindObjectsInit(sh, tmpl); err != nil {
		return nil, fmt.Errorf("keys: find objects: %w", err)
	}
	var out []pkcs11.ObjectHandle
	for {
		hs, _, err := c.ctx.FindObjects(sh, 100)
		if err != nil {
			c.ctx.FindObjectsFinal(sh)
			return nil, fmt.Errorf("keys: find objects: %w", err)
		}
		if len(hs) == 0 {
			break
		}
		out = append(out, hs...)
	}
	if err := c.ctx.FindObjectsFinal(sh); err != nil {
		return nil, fmt.Errorf("keys: find objects: %w", err)
	}
	return out, nil
}

// do runs f with a session of a live connection. A failure that says the
// token is gone drops the connection and f is tried once more on a new one
// (another provider of this process may have reinitialised the module);
// after that, the next call reconnects, at most once per Retry.
func (p *PKCS11) do(ctx context.Context, f func(c *p11conn, sh pkcs11.SessionHandle) error) error {
	err := p.do1(ctx, f)
	if errors.Is(err, errLost) {
		err = p.do1(ctx, f)
	}
	if errors.Is(err, errLost) {
		err = fmt.Errorf("%w: %v", ErrKeyUnavailable, err)
	}
	return err
}

// errLost marks a failure that dropped the connection.
var errLost = errors.New("keys: connection to the token lost")

func (p *PKCS11) do1(ctx context.Context, f func(c *p11conn, sh pkcs11.SessionHandle) error) error {
	c, err := p.live()
	if err != nil {
		return err
	}
	p.opMu.RLock()
	defer p.opMu.RUnlock()
	p.mu.Lock()
	replaced := p.conn != c
	p.mu.Unlock()
	if replaced {
		// Replaced (a reconnection) before this call got in: its sessions are
		// gone, and their handles may be the new connection's.
		return fmt.Errorf("%w: the connection was replaced", errLost)
	}
	var sh pkcs11.SessionHandle
	select {
	case sh = <-c.sessions:
	case <-ctx.Done():
		return ctx.Err()
	}
	err = f(c, sh)
	if isCode(err, pkcs11.CKR_OBJECT_HANDLE_INVALID) || isCode(err, pkcs11.CKR_KEY_HANDLE_INVALID) {
		// A key destroyed or retired by another node or process: read the
		// token's objects again and retry once.
		if err = c.scan(sh); err == nil {
			err = f(c, sh)
		}
	}
	c.sessions <- sh
	if err != nil && (lost(err) || errors.Is(err, errMissing)) {
		// The token is gone: reconnect (and read the token afresh).
		p.drop(c, err)
		return fmt.Errorf("%w: %w", errLost, err)
	}
	return err
}

// lost reports whether err means the token or the session is gone.
func lost(err error) bool {
	var e pkcs11.Error
	if !errors.As(err, &e) {
		return false
	}
	switch uint(e) {
	case pkcs11.CKR_DEVICE_ERROR, pkcs11.CKR_DEVICE_REMOVED, pkcs11.CKR_TOKEN_NOT_PRESENT, pkcs11.CKR_TOKEN_NOT_RECOGNIZED,
		pkcs11.CKR_SESSION_HANDLE_INVALID, pkcs11.CKR_SESSION_CLOSED, pkcs11.CKR_USER_NOT_LOGGED_IN,
		pkcs11.CKR_CRYPTOKI_NOT_INITIALIZED, pkcs11.CKR_GENERAL_ERROR, pkcs11.CKR_DEVICE_MEMORY,
		pkcs11.CKR_OBJECT_HANDLE_INVALID, pkcs11.CKR_KEY_HANDLE_INVALID, pkcs11.CKR_SLOT_ID_INVALID:
		return true
	}
	return false
}

func (p *PKCS11) live() (*p11conn, error) {
	p.mu.Lock()
	if p.conn != nil {
		c := p.conn
		p.mu.Unlock()
		return c, nil
	}
	p.mu.Unlock()
	// Reconnecting finalises the module: wait until no call is in it.
	p.opMu.Lock()
	defer p.opMu.Unlock()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.conn != nil {
		return p.conn, nil // another caller reconnected meanwhile
	}
	if time.Since(p.lastTry) < p.cfg.Retry {
		return nil, fmt.Errorf("%w: %v", ErrKeyUnavailable, p.lastErr)
	}
	p.lastTry = time.Now()
	c, err := p.connect(true)
	if err != nil {
		p.lastErr = err
		return nil, fmt.Errorf("%w: %v", ErrKeyUnavailable, err)
	}
	p.conn = c
	return c, nil
}

// drop forgets a connection whose token is gone. Its sessions are not
// closed one by one: the reconnection finalises the module, which ends them.
func (p *PKCS11) drop(c *p11conn, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.conn == c {
		p.conn = nil
		p.lastErr = err
	}
}

func ro(org, region string) string { return region + "/" + org }

// busy runs f (a change to the token's objects) again, a few times, while
// it fails with CKR_FUNCTION_FAILED: SoftHSM answers so when two processes
// change its objects at the same instant.
func busy(f func() error) error {
	err := f()
	for i := 0; i < 8 && isCode(err, pkcs11.CKR_FUNCTION_FAILED); i++ {
		time.Sleep(time.Duration(1+mrand.IntN(10)) * time.Millisecond)
		err = f()
	}
	return err
}

// versions returns the KEKs of (org, region) by version, rescanning the
// token when the list is older than Refresh or when want is not in it. The
// map returned is never written to (setKEKs replaces it).
func (p *PKCS11) versions(c *p11conn, sh pkcs11.SessionHandle, org, region string, want int) (map[int][]kobj, int, error) {
	c.mu.Lock()
	vs, dead, stale := c.keks[ro(org, region)], c.dead[ro(org, region)], time.Since(c.scanned) > p.cfg.Refresh
	c.mu.Unlock()
	if _, ok := vs[want]; stale || (want > 0 && !ok && want > dead) {
		if err := c.scan(sh); err != nil {
			return nil, 0, err
		}
		c.mu.Lock()
		vs, dead = c.keks[ro(org, region)], c.dead[ro(org, region)]
		c.mu.Unlock()
	}
	return vs, dead, nil
}

// setKEKs sets the keys of one version of (org, region) (none: removes the
// version) in a copy of its map, so that a map versions returned stays as it was.
func (c *p11conn) setKEKs(org, region string, version int, objs []kobj) {
	c.mu.Lock()
	defer c.mu.Unlock()
	vs := maps.Clone(c.keks[ro(org, region)])
	if vs == nil {
		vs = map[int][]kobj{}
	}
	if len(objs) == 0 {
		delete(vs, version)
	} else {
		vs[version] = objs
	}
	c.keks[ro(org, region)] = vs
}

func current(vs map[int][]kobj) int {
	top := 0
	for v := range vs {
		top = max(top, v)
	}
	return top
}

func (p *PKCS11) generate(c *p11conn, sh pkcs11.SessionHandle, org, region string, version int) (kobj, error) {
	label := labelKEK + strconv.Itoa(version) + "/" + ro(org, region)
	k, err := generateAES(c, sh, label)
	if err != nil {
		return kobj{}, fmt.Errorf("keys: generate KEK %s/%s v%d in the token: %w", org, region, version, err)
	}
	c.mu.Lock()
	objs := append(slices.Clone(c.keks[ro(org, region)][version]), k)
	c.mu.Unlock()
	sortObjs(objs)
	c.setKEKs(org, region, version, objs)
	return k, nil
}

// exclusive runs f while this process is the only one with a live claim
// on what (see the PKCS11 type): f reads the token again and makes the key
// only if it is still missing. Another process's live claim makes it take
// its own back, wait a random while and try again, for at most claimWait.
func (p *PKCS11) exclusive(ctx context.Context, c *p11conn, sh pkcs11.SessionHandle, what string, f func() error) error {
	label := labelClaim + what
	mine, err := newKeyID()
	if err != nil {
		return err
	}
	deadline := time.Now().Add(claimWait)
	odd := map[pkcs11.ObjectHandle]time.Time{}
	for wait := 2 * time.Millisecond; ; wait = min(2*wait, 200*time.Millisecond) {
		alone, h, err := c.claim(sh, label, mine, odd)
		if err == nil && alone {
			err = f()
			// Every claim of this call goes (one SoftHSM said it failed to
			// make may be there); one left behind (the token failed) goes
			// stale.
			c.dropClaims(sh, label, mine)
			return err
		}
		if h != 0 {
			busy(func() error { return c.ctx.DestroyObject(sh, h) })
		}
		// SoftHSM fails one of two objects made at the same instant with
		// CKR_FUNCTION_FAILED (two processes) or CKR_GENERAL_ERROR (two
		// sessions of one process, while the token otherwise works): that
		// is contention too.
		if err != nil && !isCode(err, pkcs11.CKR_FUNCTION_FAILED) && !(isCode(err, pkcs11.CKR_GENERAL_ERROR) && c.check(sh) == nil) {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%w: another process has been making %s for %v", ErrKeyUnavailable, what, claimWait)
		}
		select {
		case <-time.After(wait/2 + mrand.N(wait/2)):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// hostLock takes the lock that the processes of this host sharing the
// token hold while they change its objects: a file in LockDir named after
// the module and the token, locked with flock(2). Each change is made
// after the token was read (scan) under the same lock. SoftHSM2, a token in
// files, re-reads its objects only when its generation file changed since
// its last look, and its own writes set that mark past the other
// processes' writes it had not read: a process that writes while another
// does may never see the other's objects (so in
// TestPKCS11FirstKeyTwoProcesses the claims alone did not keep two
// processes from making one key each). With every change made under the
// lock, after a read, no process skips another's. Across hosts the claims
// do it, on an HSM that shows each object to every session once made.
//
// The lock is the provider's: its callers share it (a reconnection inside
// makeKey takes it again), and it keeps other processes out.
func (p *PKCS11) hostLock(ctx context.Context) (func(), error) {
	for {
		p.hostMu.Lock()
		if p.hostN > 0 {
			p.hostN++
			p.hostMu.Unlock()
			return p.hostUnlock, nil
		}
		if p.hostFile == nil {
			sum := sha256.Sum256([]byte(p.cfg.Module + "\x00" + p.cfg.TokenLabel))
			name := filepath.Join(p.cfg.LockDir, "sekisho-pkcs11-"+hex.EncodeToString(sum[:8])+".lock")
			f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE, 0o600)
			if err != nil {
				p.hostMu.Unlock()
				return nil, fmt.Errorf("%w: the token's lock file: %v", ErrKeyUnavailable, err)
			}
			p.hostFile = f
		}
		err := syscall.Flock(int(p.hostFile.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			p.hostN = 1
		}
		p.hostMu.Unlock()
		if err == nil {
			return p.hostUnlock, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			return nil, fmt.Errorf("%w: the token's lock file: %v", ErrKeyUnavailable, err)
		}
		select {
		case <-time.After(2 * time.Millisecond):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

func (p *PKCS11) hostUnlock() {
	p.hostMu.Lock()
	defer p.hostMu.Unlock()
	if p.hostN--; p.hostN == 0 {
		syscall.Flock(int(p.hostFile.Fd()), syscall.LOCK_UN)
	}
}

// dropClaims removes the claims of label whose value starts with mine.
func (c *p11conn) dropClaims(sh pkcs11.SessionHandle, label string, mine []byte) {
	hs, _ := c.find(sh, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_DATA), pkcs11.NewAttribute(pkcs11.CKA_LABEL, label)})
	for _, h := range hs {
		if a, err := c.attrs(sh, h, pkcs11.CKA_VALUE); err == nil && bytes.HasPrefix(a[0].Value, mine) {
			busy(func() error { return c.ctx.DestroyObject(sh, h) })
		}
	}
}

// claim makes this process's claim on label (its value: mine, then the
// time in Unix nanoseconds) and reports whether no other live claim of
// label is in the token. Stale claims are removed.
// odd remembers when each claim without a readable value was first seen.
func (c *p11conn) claim(sh pkcs11.SessionHandle, label string, mine []byte, odd map[pkcs11.ObjectHandle]time.Time) (bool, pkcs11.ObjectHandle, error) {
	value := binary.BigEndian.AppendUint64(slices.Clone(mine), uint64(time.Now().UnixNano()))
	h, err := c.ctx.CreateObject(sh, []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_DATA),
		pkcs11.NewAttribute(pkcs11.CKA_LABEL, label),
		pkcs11.NewAttribute(pkcs11.CKA_VALUE, value),
		pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true),
		pkcs11.NewAttribute(pkcs11.CKA_PRIVATE, true),
	})
	if err != nil {
		return false, 0, fmt.Errorf("keys: claim %s: %w", label, err)
	}
	hs, err := c.find(sh, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_DATA), pkcs11.NewAttribute(pkcs11.CKA_LABEL, label)})
	if err != nil {
		return false, h, err
	}
	alone := true
	for _, o := range hs {
		a, err := c.ctx.GetAttributeValue(sh, o, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_VALUE, nil)})
		if isCode(err, pkcs11.CKR_OBJECT_HANDLE_INVALID) {
			continue // taken back meanwhile
		}
		if err != nil {
			return false, h, fmt.Errorf("keys: read a claim of %s: %w", label, err)
		}
		v := a[0].Value
		switch {
		case len(v) == keyIDSize+8 && bytes.Equal(v[:keyIDSize], mine):
		case len(v) != keyIDSize+8:
			// Being made: SoftHSM writes an object's attributes one by
			// one, and another process may read it in between. A claim
			// left so by a process that died goes when seen so for
			// claimStale.
			if at, ok := odd[o]; !ok {
				odd[o] = time.Now()
			} else if time.Since(at) > claimStale {
				c.ctx.DestroyObject(sh, o)
				continue
			}
			alone = false
		case time.Since(time.Unix(0, int64(binary.BigEndian.Uint64(v[keyIDSize:])))) > claimStale:
			c.ctx.DestroyObject(sh, o) // the leftover of a process that died
		default:
			alone = false
		}
	}
	return alone, h, nil
}

// fresh runs f on a view of the token read again under the host lock
// (hostLock), so that what f decides from it (make a key, retire or destroy
// versions) is not undone by another process of this host meanwhile.
func (p *PKCS11) fresh(ctx context.Context, f func(c *p11conn, sh pkcs11.SessionHandle) error) error {
	unlock, err := p.hostLock(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	return p.do(ctx, func(c *p11conn, sh pkcs11.SessionHandle) error {
		if err := c.scan(sh); err != nil {
			return err
		}
		return f(c, sh)
	})
}

// errNoKey: the key to use is not in the token yet (this process's view).
var errNoKey = errors.New("keys: no key yet")

// makeKey makes a key this process found missing (the first KEK of an
// (org, region), a new KEK version, an org's index key), so that the
// processes sharing the token make it once between them. have (nil for a
// new version, always made) says whether a connection's view holds it.
// In this process genMu makes one caller at a time do it; on this host the
// hostLock does; across hosts the claims (exclusive). Under the locks the
// token is read again before anything is written, and mk runs only if the
// key is still missing.
func (p *PKCS11) makeKey(ctx context.Context, what string, have func(c *p11conn) bool, mk func(c *p11conn, sh pkcs11.SessionHandle) error) error {
	p.genMu.Lock()
	defer p.genMu.Unlock()
	p.mu.Lock()
	c := p.conn
	p.mu.Unlock()
	if c != nil && have != nil && have(c) {
		return nil // made by another caller of this process meanwhile
	}
	return p.fresh(ctx, func(c *p11conn, sh pkcs11.SessionHandle) error {
		if have != nil && have(c) {
			return nil
		}
		return p.exclusive(ctx, c, sh, what, func() error {
			for try := 0; ; try++ {
				if err := c.scan(sh); err != nil {
					return err
				}
				if have != nil && have(c) {
					return nil
				}
				// SoftHSM may answer CKR_FUNCTION_FAILED to an object
				// made while it wrote another (even one it made): read
				// the token again before trying again, lest the key be
				// made twice.
				err := mk(c, sh)
				if !isCode(err, pkcs11.CKR_FUNCTION_FAILED) || try == 8 {
					return err
				}
				time.Sleep(time.Duration(1+mrand.IntN(10)) * time.Millisecond)
			}
		})
	})
}

// A wrapped data key is wrappedFormat, the length of the wrapping KEK's
// CKA_ID (a byte), that CKA_ID, the IV, and the AES-GCM ciphertext and tag.
// A data key wrapped before the ids (or under a KEK without one) is the
// IV, ciphertext and tag only: legacyWrappedSize bytes, which no wrapping
// with an id can be.
const (
	wrappedFormat     = 1
	legacyWrappedSize = gcmIVSize + KeySize + gcmTagBits/8
)

func encodeWrapped(id, iv, ct []byte) []byte {
	if len(id) == 0 {
		return append(iv, ct...)
	}
	out := append([]byte{wrappedFormat, byte(len(id))}, id...)
	return append(append(out, iv...), ct...)
}

// splitWrapped returns the CKA_ID a wrapped data key names (nil: any KEK
// of its version, the legacy form) and its IV, ciphertext and tag.
func splitWrapped(w []byte) (id, body []byte, ok bool) {
	if len(w) == legacyWrappedSize {
		return nil, w, true
	}
	if len(w) < 2 || w[0] != wrappedFormat || w[1] == 0 || len(w) < 2+int(w[1])+gcmIVSize+gcmTagBits/8 {
		return nil, nil, false
	}
	return w[2 : 2+int(w[1])], w[2+int(w[1]):], true
}

// candidates are the KEKs that may have wrapped a data key naming id: the
// one with that CKA_ID, or (no id) every one of the version.
func candidates(objs []kobj, id []byte) []kobj {
	if id == nil {
		return objs
	}
	for _, k := range objs {
		if bytes.Equal(k.id, id) {
			return []kobj{k}
		}
	}
	return nil
}

// WrapDEK implements Provider.
func (p *PKCS11) WrapDEK(ctx context.Context, a DEKAD, dek []byte) ([]byte, int, error) {
	out, v, err := p.wrap(ctx, a, dek)
	if errors.Is(err, errNoKey) {
		// The first KEK of (org, region); after a destruction the versions
		// go on from the destroyed ones.
		have := func(c *p11conn) bool {
			c.mu.Lock()
			defer c.mu.Unlock()
			return current(c.keks[ro(a.Org, a.Region)]) > 0
		}
		err = p.makeKey(ctx, "kek/"+ro(a.Org, a.Region), have, func(c *p11conn, sh pkcs11.SessionHandle) error {
			c.mu.Lock()
			dead := c.dead[ro(a.Org, a.Region)]
			c.mu.Unlock()
			_, err := p.generate(c, sh, a.Org, a.Region, dead+1)
			return err
		})
		if err == nil {
			out, v, err = p.wrap(ctx, a, dek)
		}
	}
	return out, v, err
}

func (p *PKCS11) wrap(ctx context.Context, a DEKAD, dek []byte) ([]byte, int, error) {
	var out []byte
	err := p.do(ctx, func(c *p11conn, sh pkcs11.SessionHandle) error {
		vs, dead, err := p.versions(c, sh, a.Org, a.Region, a.KEKVersion)
		if err != nil {
			return err
		}
		v := a.KEKVersion
		if v == 0 {
			v = current(vs)
		}
		objs := vs[v]
		switch {
		case a.KEKVersion == 0 && v == 0:
			return errNoKey
		case v <= dead:
			return ErrKeyDestroyed
		case len(objs) == 0:
			if err := c.check(sh); err != nil {
				return err // the token is gone, not only this key
			}
			return fmt.Errorf("%w: no KEK version %d of %s/%s in the token", ErrKeyUnavailable, v, a.Org, a.Region)
		}
		// The lowest CKA_ID: should a version have two keys, every
		// process wraps under the same one.
		k := objs[0]
		a.KEKVersion = v
		iv := make([]byte, gcmIVSize)
		if _, err := rand.Read(iv); err != nil {
			return fmt.Errorf("keys: random IV: %w", err)
		}
		params := pkcs11.NewGCMParams(iv, a.bytes(), gcmTagBits)
		defer params.Free()
		if err := c.ctx.EncryptInit(sh, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_AES_GCM, params)}, k.h); err != nil {
			return fmt.Errorf("keys: wrap in the token: %w", err)
		}
		ct, err := c.ctx.Encrypt(sh, dek)
		if err != nil {
			return fmt.Errorf("keys: wrap in the token: %w", err)
		}
		out = encodeWrapped(k.id, iv, ct)
		return nil
	})
	if err != nil {
		return nil, 0, err
	}
	return out, a.KEKVersion, nil
}

// UnwrapDEK implements Provider.
func (p *PKCS11) UnwrapDEK(ctx context.Context, a DEKAD, wrapped []byte) ([]byte, error) {
	id, body, ok := splitWrapped(wrapped)
	if !ok {
		return nil, ErrOpen
	}
	return p.unwrapDEK(ctx, a, id, body)
}

func (p *PKCS11) unwrapDEK(ctx context.Context, a DEKAD, id, body []byte) ([]byte, error) {
	var dek []byte
	err := p.do(ctx, func(c *p11conn, sh pkcs11.SessionHandle) error {
		vs, dead, err := p.versions(c, sh, a.Org, a.Region, a.KEKVersion)
		if err != nil {
			return err
		}
		objs := candidates(vs[a.KEKVersion], id)
		if len(objs) == 0 && len(vs[a.KEKVersion]) > 0 {
			// A KEK of this version that another process made since the
			// last scan.
			if err := c.scan(sh); err != nil {
				return err
			}
			c.mu.Lock()
			objs = candidates(c.keks[ro(a.Org, a.Region)][a.KEKVersion], id)
			c.mu.Unlock()
		}
		switch {
		case a.KEKVersion <= dead:
			return ErrKeyDestroyed
		case len(objs) == 0:
			if err := c.check(sh); err != nil {
				return err // the token is gone, not only this key
			}
			return fmt.Errorf("%w: no KEK version %d of %s/%s (id %x) in the token", ErrKeyUnavailable, a.KEKVersion, a.Org, a.Region, id)
		}
		for _, k := range objs {
			pt, err := c.unwrap(sh, k.h, a, body)
			if !errors.Is(err, ErrOpen) {
				dek = pt
				return err
			}
		}
		return ErrOpen
	})
	if err != nil {
		return nil, err
	}
	if len(dek) != KeySize {
		return nil, ErrOpen
	}
	return dek, nil
}

// unwrap opens body (IV, ciphertext, tag) under the KEK h; ErrOpen if it
// does not authenticate.
func (c *p11conn) unwrap(sh pkcs11.SessionHandle, h pkcs11.ObjectHandle, a DEKAD, body []byte) ([]byte, error) {
	if len(body) < gcmIVSize+gcmTagBits/8 {
		return nil, ErrOpen
	}
	params := pkcs11.NewGCMParams(body[:gcmIVSize], a.bytes(), gcmTagBits)
	defer params.Free()
	if err := c.ctx.DecryptInit(sh, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_AES_GCM, params)}, h); err != nil {
		return nil, fmt.Errorf("keys: unwrap in the token: %w", err)
	}
	pt, err := c.ctx.Decrypt(sh, body[gcmIVSize:])
	if err != nil {
		if isCode(err, pkcs11.CKR_ENCRYPTED_DATA_INVALID) || isCode(err, pkcs11.CKR_ENCRYPTED_DATA_LEN_RANGE) {
			return nil, ErrOpen
		}
		// Some modules (SoftHSM) answer a tag that does not verify
		// with CKR_GENERAL_ERROR: if the token otherwise works, it is
		// the wrapped key that does not authenticate.
		if isCode(err, pkcs11.CKR_GENERAL_ERROR) && c.check(sh) == nil {
			return nil, ErrOpen
		}
		return nil, fmt.Errorf("keys: unwrap in the token: %w", err)
	}
	return pt, nil
}

// KEKVersions implements Provider.
func (p *PKCS11) KEKVersions(ctx context.Context, org, region string) ([]int, error) {
	var out []int
	err := p.do(ctx, func(c *p11conn, sh pkcs11.SessionHandle) error {
		if err := c.scan(sh); err != nil {
			return err
		}
		c.mu.Lock()
		defer c.mu.Unlock()
		out = slices.Collect(maps.Keys(c.keks[ro(org, region)]))
		return nil
	})
	slices.Sort(out)
	return out, err
}

// RotateKEK implements Provider. Across processes, each rotation makes its
// own version, never two keys of one (makeKey).
func (p *PKCS11) RotateKEK(ctx context.Context, org, region string) (int, error) {
	var v int
	err := p.makeKey(ctx, "kek/"+ro(org, region), nil, func(c *p11conn, sh pkcs11.SessionHandle) error {
		c.mu.Lock()
		v = max(current(c.keks[ro(org, region)]), c.dead[ro(org, region)]) + 1
		c.mu.Unlock()
		_, err := p.generate(c, sh, org, region, v)
		return err
	})
	return v, err
}

// RetireKEK implements Provider: every key of the version goes.
func (p *PKCS11) RetireKEK(ctx context.Context, org, region string, version int) error {
	return p.fresh(ctx, func(c *p11conn, sh pkcs11.SessionHandle) error {
		c.mu.Lock()
		vs := c.keks[ro(org, region)]
		objs := vs[version]
		cur := current(vs)
		c.mu.Unlock()
		if len(objs) == 0 {
			return nil
		}
		if version == cur {
			return fmt.Errorf("keys: version %d is the current KEK of %s/%s and cannot be retired", version, org, region)
		}
		for _, k := range objs {
			if err := c.ctx.DestroyObject(sh, k.h); err != nil {
				return fmt.Errorf("keys: retire KEK version %d of %s/%s: %w", version, org, region, err)
			}
		}
		c.setKEKs(org, region, version, nil)
		return nil
	})
}

// DestroyKEKs implements Provider: every key of every version goes.
func (p *PKCS11) DestroyKEKs(ctx context.Context, org, region string) (int, error) {
	var top int
	err := p.fresh(ctx, func(c *p11conn, sh pkcs11.SessionHandle) error {
		c.mu.Lock()
		vs := c.keks[ro(org, region)]
		top = max(current(vs), c.dead[ro(org, region)])
		c.mu.Unlock()
		// The tombstone first: a crash half way leaves the versions marked
		// destroyed, never a key that a new version could collide with.
		label := labelDestroyed + ro(org, region)
		old, err := c.find(sh, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_DATA), pkcs11.NewAttribute(pkcs11.CKA_LABEL, label)})
		if err != nil {
			return err
		}
		if _, err := c.ctx.CreateObject(sh, []*pkcs11.Attribute{
			pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_DATA),
			pkcs11.NewAttribute(pkcs11.CKA_LABEL, label),
			pkcs11.NewAttribute(pkcs11.CKA_VALUE, []byte(strconv.Itoa(top))),
			pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true),
			pkcs11.NewAttribute(pkcs11.CKA_PRIVATE, true),
		}); err != nil {
			return fmt.Errorf("keys: record the destruction of %s/%s: %w", org, region, err)
		}
		for _, h := range old {
			c.ctx.DestroyObject(sh, h)
		}
		for v, objs := range vs {
			for _, k := range objs {
				if err := c.ctx.DestroyObject(sh, k.h); err != nil {
					return fmt.Errorf("keys: destroy KEK version %d of %s/%s: %w", v, org, region, err)
				}
			}
		}
		return c.scan(sh)
	})
	return top, err
}

// IndexRoot implements Provider: HMAC-SHA-256 in the token under the org's
// index key (made on first use, by makeKey) over a fixed label. Should the
// org have several index keys (made by processes before makeKey), the root
// is the lowest of theirs: the same in every process that sees them.
func (p *PKCS11) IndexRoot(ctx context.Context, org string) ([]byte, error) {
	out, err := p.indexRoot(ctx, org)
	if errors.Is(err, errNoKey) {
		have := func(c *p11conn) bool {
			c.mu.Lock()
			defer c.mu.Unlock()
			return len(c.indexes[org]) > 0
		}
		err = p.makeKey(ctx, "index/"+org, have, func(c *p11conn, sh pkcs11.SessionHandle) error {
			k, err := generateIndexKey(c, sh, org)
			if err != nil {
				return fmt.Errorf("keys: generate the index key of %s in the token: %w", org, err)
			}
			c.mu.Lock()
			objs := append(slices.Clone(c.indexes[org]), k)
			sortObjs(objs)
			c.indexes[org] = objs
			c.mu.Unlock()
			return nil
		})
		if err == nil {
			out, err = p.indexRoot(ctx, org)
		}
	}
	return out, err
}

func (p *PKCS11) indexRoot(ctx context.Context, org string) ([]byte, error) {
	var out []byte
	err := p.do(ctx, func(c *p11conn, sh pkcs11.SessionHandle) error {
		out = nil
		c.mu.Lock()
		objs := c.indexes[org]
		c.mu.Unlock()
		if len(objs) == 0 {
			return errNoKey
		}
		for _, k := range objs {
			if err := c.ctx.SignInit(sh, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_SHA256_HMAC, nil)}, k.h); err != nil {
				return fmt.Errorf("keys: index root in the token: %w", err)
			}
			mac, err := c.ctx.Sign(sh, ad(indexRootInfo, org))
			if err != nil {
				return fmt.Errorf("keys: index root in the token: %w", err)
			}
			if out == nil || bytes.Compare(mac, out) < 0 {
				out = mac
			}
		}
		return nil
	})
	return out, err
}

// generateIndexKey makes the org's index key, a generic secret for
// HMAC-SHA-256, with a random CKA_ID.
func generateIndexKey(c *p11conn, sh pkcs11.SessionHandle, org string) (kobj, error) {
	id, err := newKeyID()
	if err != nil {
		return kobj{}, err
	}
	h, err := c.ctx.GenerateKey(sh, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_GENERIC_SECRET_KEY_GEN, nil)}, []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY),
		pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_GENERIC_SECRET),
		pkcs11.NewAttribute(pkcs11.CKA_ID, id),
		pkcs11.NewAttribute(pkcs11.CKA_VALUE_LEN, KeySize),
		pkcs11.NewAttribute(pkcs11.CKA_LABEL, labelIndex+org),
		pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true),
		pkcs11.NewAttribute(pkcs11.CKA_PRIVATE, true),
		pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, true),
		pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, false),
		pkcs11.NewAttribute(pkcs11.CKA_SIGN, true),
		pkcs11.NewAttribute(pkcs11.CKA_VERIFY, true),
	})
	return kobj{id: id, h: h}, err
}

// Ping implements Provider: the token answers and is logged in.
func (p *PKCS11) Ping(ctx context.Context) error {
	return p.do(ctx, func(c *p11conn, sh pkcs11.SessionHandle) error {
		info, err := c.ctx.GetSessionInfo(sh)
		if err != nil {
			return err
		}
		if info.State != pkcs11.CKS_RW_USER_FUNCTIONS && info.State != pkcs11.CKS_RO_USER_FUNCTIONS {
			return pkcs11.Error(pkcs11.CKR_USER_NOT_LOGGED_IN)
		}
		return c.check(sh)
	})
}

// bytesToUint reads a CK_ULONG attribute (in the machine's byte order, as
// the module wrote it); 0 if it is not one.
func bytesToUint(b []byte) uint {
	switch len(b) {
	case 8:
		return uint(binary.NativeEndian.Uint64(b))
	case 4:
		return uint(binary.NativeEndian.Uint32(b))
	}
	return 0
}
