package keys

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
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
}

type p11conn struct {
	ctx      *pkcs11.Ctx
	slot     uint
	sessions chan pkcs11.SessionHandle
	all      []pkcs11.SessionHandle

	mu      sync.Mutex
	keks    map[string]map[int]pkcs11.ObjectHandle // region/org -> version -> handle
	dead    map[string]int                         // region/org -> highest destroyed version
	indexes map[string]pkcs11.ObjectHandle         // org -> index key
	probe   pkcs11.ObjectHandle                    // 0 if none
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
	indexRootInfo  = "sekisho/index-root/v1"
	gcmIVSize      = 12
	gcmTagBits     = 128
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
		var h pkcs11.ObjectHandle
		if h, err = generateAES(c, sh, labelProbe); err != nil {
			err = fmt.Errorf("keys: make the probe key in the token: %w", err)
		}
		c.probe = h
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

func generateAES(c *p11conn, sh pkcs11.SessionHandle, label string) (pkcs11.ObjectHandle, error) {
	return c.ctx.GenerateKey(sh, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_AES_KEY_GEN, nil)}, []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY),
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
	keks := map[string]map[int]pkcs11.ObjectHandle{}
	dead := map[string]int{}
	indexes := map[string]pkcs11.ObjectHandle{}
	var probe pkcs11.ObjectHandle
	for _, class := range []uint{pkcs11.CKO_SECRET_KEY, pkcs11.CKO_DATA} {
		hs, err := c.find(sh, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_CLASS, class)})
		if err != nil {
			return err
		}
		for _, h := range hs {
			attrs := []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_LABEL, nil)}
			if class == pkcs11.CKO_DATA {
				attrs = append(attrs, pkcs11.NewAttribute(pkcs11.CKA_VALUE, nil))
			}
			a, err := c.ctx.GetAttributeValue(sh, h, attrs)
			if err != nil {
				return fmt.Errorf("keys: read object label: %w", err)
			}
			label := string(a[0].Value)
			switch {
			case class == pkcs11.CKO_SECRET_KEY && strings.HasPrefix(label, labelKEK):
				rest := strings.TrimPrefix(label, labelKEK)
				v, ro, ok := strings.Cut(rest, "/")
				n, err := strconv.Atoi(v)
				if !ok || err != nil {
					continue
				}
				if keks[ro] == nil {
					keks[ro] = map[int]pkcs11.ObjectHandle{}
				}
				keks[ro][n] = h
			case class == pkcs11.CKO_SECRET_KEY && label == labelProbe:
				probe = h
			case class == pkcs11.CKO_SECRET_KEY && strings.HasPrefix(label, labelIndex):
				indexes[strings.TrimPrefix(label, labelIndex)] = h
			case class == pkcs11.CKO_DATA && strings.HasPrefix(label, labelDestroyed):
				if n, err := strconv.Atoi(string(a[1].Value)); err == nil {
					dead[strings.TrimPrefix(label, labelDestroyed)] = n
				}
			}
		}
	}
	c.mu.Lock()
	c.keks, c.dead, c.indexes, c.probe, c.scanned = keks, dead, indexes, probe, time.Now()
	c.mu.Unlock()
	return nil
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

// versions returns the KEK versions of (org, region), rescanning the token
// when the list is older than Refresh or when want is not in it.
func (p *PKCS11) versions(c *p11conn, sh pkcs11.SessionHandle, org, region string, want int) (map[int]pkcs11.ObjectHandle, int, error) {
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

func current(vs map[int]pkcs11.ObjectHandle) int {
	top := 0
	for v := range vs {
		top = max(top, v)
	}
	return top
}

func (p *PKCS11) generate(c *p11conn, sh pkcs11.SessionHandle, org, region string, version int) (pkcs11.ObjectHandle, error) {
	label := labelKEK + strconv.Itoa(version) + "/" + ro(org, region)
	h, err := generateAES(c, sh, label)
	if err != nil {
		return 0, fmt.Errorf("keys: generate KEK %s/%s v%d in the token: %w", org, region, version, err)
	}
	c.mu.Lock()
	if c.keks[ro(org, region)] == nil {
		c.keks[ro(org, region)] = map[int]pkcs11.ObjectHandle{}
	}
	c.keks[ro(org, region)][version] = h
	c.mu.Unlock()
	return h, nil
}

// firstKEK returns the current KEK of (org, region), generating it when the
// token has none: once, under genMu, after reading the token again (another
// caller may have made it meanwhile).
func (p *PKCS11) firstKEK(c *p11conn, sh pkcs11.SessionHandle, org, region string) (int, pkcs11.ObjectHandle, error) {
	p.genMu.Lock()
	defer p.genMu.Unlock()
	if err := c.scan(sh); err != nil {
		return 0, 0, err
	}
	c.mu.Lock()
	vs, dead := c.keks[ro(org, region)], c.dead[ro(org, region)]
	c.mu.Unlock()
	if v := current(vs); v > 0 {
		return v, vs[v], nil
	}
	h, err := p.generate(c, sh, org, region, dead+1)
	return dead + 1, h, err
}

// WrapDEK implements Provider.
func (p *PKCS11) WrapDEK(ctx context.Context, a DEKAD, dek []byte) ([]byte, int, error) {
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
		h, ok := vs[v]
		switch {
		case a.KEKVersion == 0 && v == 0:
			// The first key of (org, region); after a destruction the
			// versions go on from the destroyed ones.
			if v, h, err = p.firstKEK(c, sh, a.Org, a.Region); err != nil {
				return err
			}
		case v <= dead:
			return ErrKeyDestroyed
		case !ok:
			if err := c.check(sh); err != nil {
				return err // the token is gone, not only this key
			}
			return fmt.Errorf("%w: no KEK version %d of %s/%s in the token", ErrKeyUnavailable, v, a.Org, a.Region)
		}
		a.KEKVersion = v
		iv := make([]byte, gcmIVSize)
		if _, err := rand.Read(iv); err != nil {
			return fmt.Errorf("keys: random IV: %w", err)
		}
		params := pkcs11.NewGCMParams(iv, a.bytes(), gcmTagBits)
		defer params.Free()
		if err := c.ctx.EncryptInit(sh, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_AES_GCM, params)}, h); err != nil {
			return fmt.Errorf("keys: wrap in the token: %w", err)
		}
		ct, err := c.ctx.Encrypt(sh, dek)
		if err != nil {
			return fmt.Errorf("keys: wrap in the token: %w", err)
		}
		out = append(iv, ct...)
		return nil
	})
	if err != nil {
		return nil, 0, err
	}
	return out, a.KEKVersion, nil
}

// UnwrapDEK implements Provider.
func (p *PKCS11) UnwrapDEK(ctx context.Context, a DEKAD, wrapped []byte) ([]byte, error) {
	if len(wrapped) < gcmIVSize+gcmTagBits/8 {
		return nil, ErrOpen
	}
	var dek []byte
	err := p.do(ctx, func(c *p11conn, sh pkcs11.SessionHandle) error {
		vs, dead, err := p.versions(c, sh, a.Org, a.Region, a.KEKVersion)
		if err != nil {
			return err
		}
		h, ok := vs[a.KEKVersion]
		switch {
		case a.KEKVersion <= dead:
			return ErrKeyDestroyed
		case !ok:
			if err := c.check(sh); err != nil {
				return err // the token is gone, not only this key
			}
			return fmt.Errorf("%w: no KEK version %d of %s/%s in the token", ErrKeyUnavailable, a.KEKVersion, a.Org, a.Region)
		}
		params := pkcs11.NewGCMParams(wrapped[:gcmIVSize], a.bytes(), gcmTagBits)
		defer params.Free()
		if err := c.ctx.DecryptInit(sh, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_AES_GCM, params)}, h); err != nil {
			return fmt.Errorf("keys: unwrap in the token: %w", err)
		}
		pt, err := c.ctx.Decrypt(sh, wrapped[gcmIVSize:])
		if err != nil {
			if isCode(err, pkcs11.CKR_ENCRYPTED_DATA_INVALID) || isCode(err, pkcs11.CKR_ENCRYPTED_DATA_LEN_RANGE) {
				return ErrOpen
			}
			// Some modules (SoftHSM) answer a tag that does not verify
			// with CKR_GENERAL_ERROR: if the token otherwise works, it is
			// the wrapped key that does not authenticate.
			if isCode(err, pkcs11.CKR_GENERAL_ERROR) && c.check(sh) == nil {
				return ErrOpen
			}
			return fmt.Errorf("keys: unwrap in the token: %w", err)
		}
		dek = pt
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(dek) != KeySize {
		return nil, ErrOpen
	}
	return dek, nil
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
		for v := range c.keks[ro(org, region)] {
			out = append(out, v)
		}
		return nil
	})
	slices.Sort(out)
	return out, err
}

// RotateKEK implements Provider.
func (p *PKCS11) RotateKEK(ctx context.Context, org, region string) (int, error) {
	var v int
	err := p.do(ctx, func(c *p11conn, sh pkcs11.SessionHandle) error {
		if err := c.scan(sh); err != nil {
			return err
		}
		c.mu.Lock()
		v = max(current(c.keks[ro(org, region)]), c.dead[ro(org, region)]) + 1
		c.mu.Unlock()
		_, err := p.generate(c, sh, org, region, v)
		return err
	})
	return v, err
}

// RetireKEK implements Provider.
func (p *PKCS11) RetireKEK(ctx context.Context, org, region string, version int) error {
	return p.do(ctx, func(c *p11conn, sh pkcs11.SessionHandle) error {
		if err := c.scan(sh); err != nil {
			return err
		}
		c.mu.Lock()
		vs := c.keks[ro(org, region)]
		h, ok := vs[version]
		cur := current(vs)
		c.mu.Unlock()
		if !ok {
			return nil
		}
		if version == cur {
			return fmt.Errorf("keys: version %d is the current KEK of %s/%s and cannot be retired", version, org, region)
		}
		if err := c.ctx.DestroyObject(sh, h); err != nil {
			return fmt.Errorf("keys: retire KEK version %d of %s/%s: %w", version, org, region, err)
		}
		c.mu.Lock()
		delete(vs, version)
		c.mu.Unlock()
		return nil
	})
}

// DestroyKEKs implements Provider.
func (p *PKCS11) DestroyKEKs(ctx context.Context, org, region string) (int, error) {
	var top int
	err := p.do(ctx, func(c *p11conn, sh pkcs11.SessionHandle) error {
		if err := c.scan(sh); err != nil {
			return err
		}
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
		for v, h := range vs {
			if err := c.ctx.DestroyObject(sh, h); err != nil {
				return fmt.Errorf("keys: destroy KEK version %d of %s/%s: %w", v, org, region, err)
			}
		}
		return c.scan(sh)
	})
	return top, err
}

// IndexRoot implements Provider: HMAC-SHA-256 in the token under the org's
// index key (made on first use) over a fixed label.
func (p *PKCS11) IndexRoot(ctx context.Context, org string) ([]byte, error) {
	var out []byte
	err := p.do(ctx, func(c *p11conn, sh pkcs11.SessionHandle) error {
		c.mu.Lock()
		h, ok := c.indexes[org]
		c.mu.Unlock()
		if !ok {
			// Read the token again, and make the key if it is still not
			// there, once (see genMu).
			p.genMu.Lock()
			defer p.genMu.Unlock()
			if err := c.scan(sh); err != nil {
				return err
			}
			c.mu.Lock()
			h, ok = c.indexes[org]
			c.mu.Unlock()
		}
		if !ok {
			var err error
			h, err = c.ctx.GenerateKey(sh, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_GENERIC_SECRET_KEY_GEN, nil)}, []*pkcs11.Attribute{
				pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY),
				pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_GENERIC_SECRET),
				pkcs11.NewAttribute(pkcs11.CKA_VALUE_LEN, KeySize),
				pkcs11.NewAttribute(pkcs11.CKA_LABEL, labelIndex+org),
				pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true),
				pkcs11.NewAttribute(pkcs11.CKA_PRIVATE, true),
				pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, true),
				pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, false),
				pkcs11.NewAttribute(pkcs11.CKA_SIGN, true),
				pkcs11.NewAttribute(pkcs11.CKA_VERIFY, true),
			})
			if err != nil {
				return fmt.Errorf("keys: generate the index key of %s in the token: %w", org, err)
			}
			c.mu.Lock()
			c.indexes[org] = h
			c.mu.Unlock()
		}
		if err := c.ctx.SignInit(sh, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_SHA256_HMAC, nil)}, h); err != nil {
			return fmt.Errorf("keys: index root in the token: %w", err)
		}
		mac, err := c.ctx.Sign(sh, ad(indexRootInfo, org))
		if err != nil {
			return fmt.Errorf("keys: index root in the token: %w", err)
		}
		out = mac
		return nil
	})
	return out, err
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
