package keys

import (
	"context"
	"crypto/cipher"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// Provider holds the key-encryption keys and the blind-index roots: the
// local keyring (Local) or an HSM behind PKCS#11 (PKCS11). A KEK is used
// through the provider only (wrap and unwrap a data key), so that a provider
// whose keys never leave their hardware implements it as well as one that
// holds them in memory.
//
// Errors: ErrKeyUnavailable when the keys cannot be reached (the caller
// answers key-unavailable and may retry), ErrKeyDestroyed for a version that
// was destroyed, ErrOpen for a wrapped key that does not authenticate.
type Provider interface {
	// WrapDEK wraps dek for the record a names under KEK version
	// a.KEKVersion of (a.Org, a.Region), or under the current version when
	// a.KEKVersion is 0 (creating version 1 on first use). It returns the
	// wrapped key and the version used, which is bound into it.
	WrapDEK(ctx context.Context, a DEKAD, dek []byte) (wrapped []byte, version int, err error)
	// UnwrapDEK opens a wrapped DEK of the record a names (a.KEKVersion is
	// the version that wrapped it).
	UnwrapDEK(ctx context.Context, a DEKAD, wrapped []byte) ([]byte, error)
	// KEKVersions lists the live versions of the KEK of (org, region),
	// oldest first; none if it has none.
	KEKVersions(ctx context.Context, org, region string) ([]int, error)
	// RotateKEK makes a new current version of the KEK of (org, region).
	RotateKEK(ctx context.Context, org, region string) (version int, err error)
	// RetireKEK destroys one version that is not the current one (after a
	// rotation, when no data key is wrapped by it any more).
	RetireKEK(ctx context.Context, org, region string, version int) error
	// DestroyKEKs destroys every version of the KEK of (org, region): every
	// data key they wrap is lost for good (crypto-shredding). It returns the
	// highest version destroyed; later versions start above it.
	DestroyKEKs(ctx context.Context, org, region string) (int, error)
	// IndexRoot returns the blind-index root key of org, creating it on first use.
	IndexRoot(ctx context.Context, org string) ([]byte, error)
	// Ping reports whether the keys can be reached (for /readyz).
	Ping(ctx context.Context) error
}

// Environment variables that hold the master key, or the path of a file that does.
const (
	EnvMasterKey     = "SEKISHO_MASTER_KEY"
	EnvMasterKeyFile = "SEKISHO_MASTER_KEY_FILE"
)

// KeyringFile is the name of the sealed keyring in the data directory.
const KeyringFile = "keyring.sealed"

// MasterKeySource says where a master key came from, for the start-up message.
type MasterKeySource struct {
	// Where is "env SEKISHO_MASTER_KEY", or the path of a file.
	Where string
	// Generated is true when the key was created by this call.
	Generated bool
}

// LoadMasterKey finds the master key: the environment variable
// SEKISHO_MASTER_KEY (base64 of 32 bytes), else the file named by file or by
// SEKISHO_MASTER_KEY_FILE, else defaultFile. If none exists and generate is
// true, a new key is written to defaultFile (mode 0600). The key must live
// outside the data directory: a key next to the keyring protects nothing.
func LoadMasterKey(dataDir, file, defaultFile string, generate bool) ([]byte, MasterKeySource, error) {
	if v := os.Getenv(EnvMasterKey); v != "" {
		k, err := decodeKey(v)
		if err != nil {
			return nil, MasterKeySource{}, fmt.Errorf("%s: %w", EnvMasterKey, err)
		}
		return k, MasterKeySource{Where: "env " + EnvMasterKey}, nil
	}
	if file == "" {
		file = os.Getenv(EnvMasterKeyFile)
	}
	explicit := file != ""
	if !explicit {
		file = defaultFile
	}
	if inside(dataDir, file) {
		return nil, MasterKeySource{}, fmt.Errorf("master key file %s is inside the data directory %s; keep it elsewhere", file, dataDir)
	}
	b, err := os.ReadFile(file)
	if err == nil {
		if fi, serr := os.Stat(file); serr == nil && fi.Mode().Perm()&0o077 != 0 {
			return nil, MasterKeySource{}, fmt.Errorf("master key file %s is readable by others (mode %v): chmod 600 it", file, fi.Mode().Perm())
		}
		k, err := decodeKey(strings.TrimSpace(string(b)))
		if err != nil {
			return nil, MasterKeySource{}, fmt.Errorf("master key file %s: %w", file, err)
		}
		return k, MasterKeySource{Where: file}, nil
	}
	if !errors.Is(err, os.ErrNotExist) || explicit || !generate {
		return nil, MasterKeySource{}, fmt.Errorf("read master key: %w", err)
	}
	k, err := NewKey()
	if err != nil {
		return nil, MasterKeySource{}, err
	}
	if err := os.MkdirAll(filepath.Dir(file), 0o700); err != nil {
		return nil, MasterKeySource{}, fmt.Errorf("create master key directory: %w", err)
	}
	created, err := writeFileExcl(file, []byte(base64.StdEncoding.EncodeToString(k)+"\n"), 0o600)
	if err != nil {
		return nil, MasterKeySource{}, fmt.Errorf("write master key: %w", err)
	}
	if !created {
		// Another process made one meanwhile: that one is the key.
		return LoadMasterKey(dataDir, file, defaultFile, false)
	}
	return k, MasterKeySource{Where: file, Generated: true}, nil
}

// DefaultMasterKeyFile is where a generated master key for dataDir goes: in
// the user's config directory, named after the data directory's absolute path.
func DefaultMasterKeyFile(dataDir string) (string, error) {
	abs, err := filepath.Abs(dataDir)
	if err != nil {
		return "", err
	}
	cfg, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("no user config directory for the master key (set %s or %s): %w", EnvMasterKey, EnvMasterKeyFile, err)
	}
	sum := sha256.Sum256([]byte(abs))
	return filepath.Join(cfg, "sekisho", "master-keys", hex.EncodeToString(sum[:8])+".key"), nil
}

func decodeKey(s string) ([]byte, error) {
	k, err := base64.StdEncoding.DecodeString(s)
	if err != nil || len(k) != KeySize {
		return nil, fmt.Errorf("want base64 of %d random bytes", KeySize)
	}
	return k, nil
}

func inside(dir, file string) bool {
	d, err1 := filepath.Abs(dir)
	f, err2 := filepath.Abs(file)
	if err1 != nil || err2 != nil {
		return false
	}
	// Resolve symbolic links where they exist, so that a link cannot hide
	// a key file that really lives in the data directory.
	if r, err := filepath.EvalSymlinks(d); err == nil {
		d = r
	}
	if r, err := filepath.EvalSymlinks(f); err == nil {
		f = r
	} else if r, err := filepath.EvalSymlinks(filepath.Dir(f)); err == nil {
		f = filepath.Join(r, filepath.Base(f))
	}
	rel, err := filepath.Rel(d, f)
	return err == nil && !strings.HasPrefix(rel, "..")
}

// Local is the keyring kept in the data directory, sealed under the master key.
type Local struct {
	path   string
	master []byte

	mu   sync.Mutex
	ring keyring
	// aeads holds each KEK's AES-GCM, ready to wrap and unwrap DEKs, so
	// that a record's wrap does not expand the KEK's key schedule again;
	// an entry goes when its KEK is retired or destroyed.
	aeads map[kekID]kekAEAD
}

type kekID struct {
	org, region string
	version     int
}

type kekAEAD struct {
	key  []byte // the keyring's slice the AEAD was made from
	aead cipher.AEAD
}

// aeadLocked returns the AEAD of the KEK key of (org, region, version).
func (l *Local) aeadLocked(org, region string, version int, key []byte) (cipher.AEAD, error) {
	id := kekID{org, region, version}
	if c, ok := l.aeads[id]; ok && len(c.key) == len(key) && len(key) > 0 && &c.key[0] == &key[0] {
		return c.aead, nil
	}
	aead, err := newGCM(key)
	if err != nil {
		return nil, err
	}
	if l.aeads == nil {
		l.aeads = map[kekID]kekAEAD{}
	}
	l.aeads[id] = kekAEAD{key: key, aead: aead}
	return aead, nil
}

// forgetLocked drops the cached AEADs of (org, region), of one version or
// (version 0) of all.
func (l *Local) forgetLocked(org, region string, version int) {
	for id := range l.aeads {
		if id.org == org && id.region == region && (version == 0 || id.version == version) {
			delete(l.aeads, id)
		}
	}
}

type keyring struct {
	Orgs map[string]*orgKeys `json:"orgs"`
}

type orgKeys struct {
	IndexRoot []byte                `json:"index_root"`
	KEKs      map[string][]kekEntry `json:"keks"` // region -> versions, oldest first
	// Destroyed is the highest destroyed version per region.
	Destroyed map[string]int `json:"destroyed,omitempty"`
}

type kekEntry struct {
	Version int       `json:"version"`
	Key     []byte    `json:"key"`
	Created time.Time `json:"created"`
}

// OpenLocal opens (or creates) the sealed keyring in dataDir.
func OpenLocal(dataDir string, master []byte) (*Local, error) {
	if len(master) != KeySize {
		return nil, fmt.Errorf("keys: master key is %d bytes, want %d", len(master), KeySize)
	}
	l := &Local{path: filepath.Join(dataDir, KeyringFile), master: master, ring: keyring{Orgs: map[string]*orgKeys{}}}
	b, err := os.ReadFile(l.path)
	if errors.Is(err, os.ErrNotExist) {
		// A new keyring, unless another process makes one first: then
		// that one is read (never written over).
		ct, serr := l.sealLocked()
		if serr != nil {
			return nil, serr
		}
		created, werr := writeFileExcl(l.path, ct, 0o600)
		if werr != nil {
			return nil, fmt.Errorf("keys: write keyring: %w", werr)
		}
		if created {
			return l, nil
		}
		b, err = os.ReadFile(l.path)
	}
	if err != nil {
		return nil, fmt.Errorf("keys: read keyring: %w", err)
	}
	pt, err := open(master, ad(labelKeyring), b)
	if err != nil {
		return nil, fmt.Errorf("keys: the master key does not open the keyring %s (wrong %s or key file?)", l.path, EnvMasterKey)
	}
	if err := json.Unmarshal(pt, &l.ring); err != nil {
		return nil, fmt.Errorf("keys: keyring is corrupt: %w", err)
	}
	if l.ring.Orgs == nil {
		l.ring.Orgs = map[string]*orgKeys{}
	}
	return l, nil
}

func (l *Local) sealLocked() ([]byte, error) {
	pt, err := json.Marshal(l.ring)
	if err != nil {
		return nil, fmt.Errorf("keys: encode keyring: %w", err)
	}
	return seal(l.master, ad(labelKeyring), pt)
}

// saveLocked writes the keyring whole. Two processes must not hold one
// keyring open at once (the last write would win): the command takes the
// data directory's lock first.
func (l *Local) saveLocked() error {
	ct, err := l.sealLocked()
	if err != nil {
		return err
	}
	if err := writeFileAtomic(l.path, ct, 0o600); err != nil {
		return fmt.Errorf("keys: write keyring: %w", err)
	}
	return nil
}

func (l *Local) orgLocked(org string) (*orgKeys, bool, error) {
	o := l.ring.Orgs[org]
	if o != nil {
		return o, false, nil
	}
	root, err := NewKey()
	if err != nil {
		return nil, false, err
	}
	o = &orgKeys{IndexRoot: root, KEKs: map[string][]kekEntry{}}
	l.ring.Orgs[org] = o
	return o, true, nil
}

// KEK returns the current KEK of (org, region) and its version, creating
// version 1 on first use.
func (l *Local) KEK(_ context.Context, org, region string) ([]byte, int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.kekLocked(org, region)
}

func (l *Local) kekLocked(org, region string) ([]byte, int, error) {
	o, _, err := l.orgLocked(org)
	if err != nil {
		return nil, 0, err
	}
	if vs := o.KEKs[region]; len(vs) > 0 {
		e := vs[len(vs)-1]
		return e.Key, e.Version, nil
	}
	v, err := l.addKEKLocked(o, region)
	if err != nil {
		return nil, 0, err
	}
	vs := o.KEKs[region]
	return vs[len(vs)-1].Key, v, nil
}

// KEKVersion returns a given version of the KEK of (org, region).
func (l *Local) KEKVersion(_ context.Context, org, region string, version int) ([]byte, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.versionLocked(org, region, version)
}

func (l *Local) versionLocked(org, region string, version int) ([]byte, error) {
	if o := l.ring.Orgs[org]; o != nil {
		for _, e := range o.KEKs[region] {
			if e.Version == version {
				return e.Key, nil
			}
		}
		if version <= o.Destroyed[region] {
			return nil, ErrKeyDestroyed
		}
	}
	return nil, fmt.Errorf("%w: no KEK version %d for org %s region %s", ErrKeyUnavailable, version, org, region)
}

// WrapDEK implements Provider.
func (l *Local) WrapDEK(ctx context.Context, a DEKAD, dek []byte) ([]byte, int, error) {
	l.mu.Lock()
	var kek []byte
	var err error
	if a.KEKVersion == 0 {
		kek, a.KEKVersion, err = l.kekLocked(a.Org, a.Region)
	} else {
		kek, err = l.versionLocked(a.Org, a.Region, a.KEKVersion)
	}
	var aead cipher.AEAD
	if err == nil {
		aead, err = l.aeadLocked(a.Org, a.Region, a.KEKVersion, kek)
	}
	l.mu.Unlock()
	if err != nil {
		return nil, 0, err
	}
	w, err := sealWith(aead, a.bytes(), dek)
	return w, a.KEKVersion, err
}

// UnwrapDEK implements Provider.
func (l *Local) UnwrapDEK(ctx context.Context, a DEKAD, wrapped []byte) ([]byte, error) {
	l.mu.Lock()
	kek, err := l.versionLocked(a.Org, a.Region, a.KEKVersion)
	var aead cipher.AEAD
	if err == nil {
		aead, err = l.aeadLocked(a.Org, a.Region, a.KEKVersion, kek)
	}
	l.mu.Unlock()
	if err != nil {
		return nil, err
	}
	return openWith(aead, a.bytes(), wrapped)
}

// KEKVersions implements Provider.
func (l *Local) KEKVersions(_ context.Context, org, region string) ([]int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []int
	if o := l.ring.Orgs[org]; o != nil {
		for _, e := range o.KEKs[region] {
			out = append(out, e.Version)
		}
	}
	return out, nil
}

// RetireKEK implements Provider.
func (l *Local) RetireKEK(_ context.Context, org, region string, version int) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	o := l.ring.Orgs[org]
	if o == nil {
		return nil
	}
	vs := o.KEKs[region]
	for i, e := range vs {
		if e.Version != version {
			continue
		}
		if i == len(vs)-1 {
			return fmt.Errorf("keys: version %d is the current KEK of %s/%s and cannot be retired", version, org, region)
		}
		o.KEKs[region] = append(vs[:i:i], vs[i+1:]...)
		if err := l.saveLocked(); err != nil {
			o.KEKs[region] = vs
			return err
		}
		l.forgetLocked(org, region, version)
		clear(e.Key)
		return nil
	}
	return nil
}

// DestroyKEKs implements Provider. The keyring file is rewritten without
// the keys; copies of the old file (backups) still hold them, so an operator
// who destroys must also rotate the master key or drop those copies (see
// the README).
func (l *Local) DestroyKEKs(_ context.Context, org, region string) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	o, _, err := l.orgLocked(org)
	if err != nil {
		return 0, err
	}
	vs := o.KEKs[region]
	top := o.Destroyed[region]
	if len(vs) > 0 {
		top = max(top, vs[len(vs)-1].Version)
	}
	if o.Destroyed == nil {
		o.Destroyed = map[string]int{}
	}
	prev := o.Destroyed[region]
	o.Destroyed[region] = top
	delete(o.KEKs, region)
	if err := l.saveLocked(); err != nil {
		o.KEKs[region], o.Destroyed[region] = vs, prev
		return 0, err
	}
	l.forgetLocked(org, region, 0)
	for _, e := range vs {
		clear(e.Key)
	}
	return top, nil
}

// Ping implements Provider: the keyring is in memory.
func (l *Local) Ping(context.Context) error { return nil }

// RotateKEK implements Provider.
func (l *Local) RotateKEK(_ context.Context, org, region string) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	o, _, err := l.orgLocked(org)
	if err != nil {
		return 0, err
	}
	return l.addKEKLocked(o, region)
}

func (l *Local) addKEKLocked(o *orgKeys, region string) (int, error) {
	k, err := NewKey()
	if err != nil {
		return 0, err
	}
	v := o.Destroyed[region] + 1
	if vs := o.KEKs[region]; len(vs) > 0 {
		v = vs[len(vs)-1].Version + 1
	}
	o.KEKs[region] = append(o.KEKs[region], kekEntry{Version: v, Key: k, Created: time.Now().UTC()})
	if err := l.saveLocked(); err != nil {
		o.KEKs[region] = o.KEKs[region][:len(o.KEKs[region])-1]
		return 0, err
	}
	return v, nil
}

// IndexRoot implements Provider.
func (l *Local) IndexRoot(_ context.Context, org string) ([]byte, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	o, created, err := l.orgLocked(org)
	if err != nil {
		return nil, err
	}
	if created {
		if err := l.saveLocked(); err != nil {
			delete(l.ring.Orgs, org)
			return nil, err
		}
	}
	return o.IndexRoot, nil
}

// writeFileExcl creates path with data, complete (a temporary file, fsync,
// then a hard link, which fails if path exists), unless path exists:
// created is false then, and path is left as it is.
func writeFileExcl(path string, data []byte, mode os.FileMode) (created bool, err error) {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".new*")
	if err != nil {
		return false, err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return false, err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return false, err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return false, err
	}
	if err := tmp.Close(); err != nil {
		return false, err
	}
	if err := os.Link(tmp.Name(), path); errors.Is(err, os.ErrExist) {
		return false, nil
	} else if err != nil {
		return false, err
	}
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		d.Sync()
		d.Close()
	}
	return true, nil
}

// writeFileAtomic writes a file through a temporary file, fsync and rename,
// so that a crash leaves the old or the new content, never half of one.
func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}
