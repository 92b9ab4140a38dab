package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/sekisho/sekisho"
	"github.com/sekisho/sekisho/audit"
	"github.com/sekisho/sekisho/keys"
	"github.com/sekisho/sekisho/postgres"
	"github.com/sekisho/sekisho/regions"
	"github.com/sekisho/sekisho/schemas"
	"github.com/sekisho/sekisho/sqlite"
	"github.com/sekisho/sekisho/vault"
)

// Files in the data directory.
const (
	dbFile             = "sekisho.db"
	lockFile           = "LOCK"
	bootstrapTokenFile = "bootstrap-admin-token"
)

// instanceOptions say how to open a data directory.
type instanceOptions struct {
	DataDir       string
	Store         string // "" for the embedded SQLite, or a postgres:// URL
	MasterKeyFile string
	// Regions maps a residency region to the store URL that keeps its
	// records and events; regions not listed use Store.
	Regions map[string]string
	// RegionList is the closed list of regions records may be pinned to
	// (serve --regions; default sekisho.DefaultRegions); the regions of
	// Regions are added to it.
	RegionList []string
	Stderr     io.Writer
	Logger     *slog.Logger
	// WitnessDir receives a copy of every checkpoint: the default log's as
	// DIR/checkpoint-<size>, a region's as DIR/<region>/checkpoint-<size>.
	WitnessDir string
	// LogOrigin is the checkpoint origin (--log-origin); "" means the
	// deployment's own (logOrigin).
	LogOrigin string
	// RootOrg is the org that runs the instance (serve --org): only its
	// admins define collections. "" (the offline tools): any admin.
	RootOrg string
	// Now is the clock of the vault and the audit log (default time.Now).
	Now func() time.Time
	// Keys is the key provider; RegionKeys the regions' own providers.
	Keys       keysConfig
	RegionKeys map[string]keysConfig
	// DEKCacheSize and DEKCacheTTL bound the vault's cache of unwrapped
	// data keys (0: the defaults).
	DEKCacheSize int
	DEKCacheTTL  time.Duration
	// RotationGrace is the grace of online key rotations (serve
	// --key-rotation-grace; 0: the vault's default, one minute).
	RotationGrace time.Duration
	// SQLite bounds the page caches of the SQLite stores (serve
	// --sqlite-cache-mib; zero: sqlite's defaults).
	SQLite sqlite.Options
}

// instance is an opened data directory: the store, the keyring, the audit log
// and the vault over them. It holds the directory's lock until Close.
type instance struct {
	dir   string
	store sekisho.Store
	keys  keys.Provider
	// closeKeys closes the key providers (HSM sessions).
	closeKeys func()
	log       *audit.Log // the default store's log
	vault     *vault.Vault
	// vaultOpts are the options vault was made with; a serving node makes
	// its vault with them and its authoriser and guard (newNode).
	vaultOpts vault.Options
	// regionLogs are the logs of regions with a store of their own.
	regionLogs map[string]*audit.Log
	// logs is the set of every log: the default and regionLogs. Every
	// reader of the audit trail takes it, never log alone.
	logs *audit.Logs
	// origin is the checkpoint origin of the default log; a region's log
	// signs origin/region.
	origin   string
	verifier string // audit verifier key, note format
	lock     *os.File
}

// openInstance opens (creating on first use) a data directory.
func openInstance(ctx context.Context, o instanceOptions) (_ *instance, err error) {
	if err := os.MkdirAll(o.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("create data directory: %w", err)
	}
	in := &instance{dir: o.DataDir}
	defer func() {
		if err != nil {
			in.Close()
		}
	}()
	if in.lock, err = lockDir(o.DataDir); err != nil {
		return nil, err
	}
	if in.keys, in.closeKeys, err = openProviders(o, o.Stderr); err != nil {
		return nil, err
	}
	if in.store, err = openStore(ctx, o.DataDir, o.Store, o.SQLite); err != nil {
		return nil, err
	}
	signer, verifier, err := audit.LoadOrCreateKeys(o.DataDir, audit.DefaultOrigin)
	if err != nil {
		return nil, err
	}
	vk, err := os.ReadFile(filepath.Join(o.DataDir, audit.VerifierKeyFile))
	if err != nil {
		return nil, fmt.Errorf("read audit verifier key: %w", err)
	}
	in.verifier = strings.TrimSpace(string(vk))
	origin, err := logOrigin(ctx, in.store, o.LogOrigin)
	if err != nil {
		return nil, err
	}
	in.origin = origin
	if in.log, err = audit.New(ctx, in.store, signer, audit.Options{Origin: origin, Logger: o.Logger, Verifier: verifier, Now: o.Now, WitnessDir: o.WitnessDir}); err != nil {
		return nil, fmt.Errorf("open audit log: %w", err)
	}
	in.logs = audit.Single(in.log)
	if len(o.Regions) > 0 {
		byStore := map[string]sekisho.Store{}
		in.regionLogs = map[string]*audit.Log{}
		urls := map[string]string{} // store URL -> first region with it
		for _, region := range slices.Sorted(maps.Keys(o.Regions)) {
			url := o.Regions[region]
			if !sekisho.ValidRegion(region) {
				return nil, fmt.Errorf("regions: %q is not a region code", region)
			}
			if url == o.Store {
				continue // the default store's region
			}
			if other, ok := urls[url]; ok {
				return nil, fmt.Errorf("regions %s and %s name the same store %s: give each region its own database, or leave it on the default store", other, region, redactDSN(url))
			}
			urls[url] = region
			s, err := openStore(ctx, o.DataDir, url, o.SQLite)
			if err != nil {
				return nil, fmt.Errorf("region %s: %w", region, err)
			}
			byStore[region] = s
			opts := audit.Options{Origin: origin + "/" + region, Logger: o.Logger, Verifier: verifier, Now: o.Now}
			if o.WitnessDir != "" {
				opts.WitnessDir = filepath.Join(o.WitnessDir, region)
				if err := os.MkdirAll(opts.WitnessDir, 0o755); err != nil {
					s.Close()
					return nil, fmt.Errorf("region %s: witness directory: %w", region, err)
				}
			}
			l, err := audit.New(ctx, s, signer, opts)
			if err != nil {
				s.Close()
				return nil, fmt.Errorf("region %s: open audit log: %w", region, err)
			}
			in.regionLogs[region] = l
		}
		in.store = regions.NewRouter(in.store, byStore)
		if in.logs, err = audit.NewLogs(in.log, in.regionLogs); err != nil {
			return nil, err
		}
	}
	in.vaultOpts = vault.Options{Now: o.Now, Regions: regionList(o.RegionList, o.Regions),
		DEKCacheSize: o.DEKCacheSize, DEKCacheTTL: o.DEKCacheTTL, Rotation: vault.RotationOptions{Grace: o.RotationGrace}, RootOrg: o.RootOrg}
	in.vault = vault.New(in.store, in.keys, in.logs, in.vaultOpts)
	defaults, err := schemas.Defaults()
	if err != nil {
		return nil, err
	}
	if err := in.vault.EnsureSchemas(ctx, defaults); err != nil {
		return nil, err
	}
	return in, nil
}

// originKind and originID name the control-plane object that keeps the
// deployment's checkpoint origin in the default store.
const (
	originKind = "deployment"
	originID   = "log-origin"
)

// logOrigin returns the checkpoint origin of the default log: flag when it
// is set (--log-origin), else the deployment's own, made on first use as
// sekisho.local/<random id> and kept in the default store, so that every
// node of a deployment signs the same origin and no two installs do. A store
// with checkpoints from before keeps the origin they were signed with.
func logOrigin(ctx context.Context, st sekisho.Store, flag string) (string, error) {
	if flag != "" {
		if strings.ContainsAny(flag, "\n\r") || strings.TrimSpace(flag) != flag {
			return "", fmt.Errorf("--log-origin %q: one line without surrounding spaces", flag)
		}
		return flag, nil
	}
	read := func() (string, error) {
		o, err := st.GetObject(ctx, originKind, originID)
		if err != nil {
			return "", err
		}
		var v struct {
			Origin string `json:"origin"`
		}
		if err := json.Unmarshal(o.Body, &v); err != nil || v.Origin == "" {
			return "", fmt.Errorf("log origin object does not decode: %v", err)
		}
		return v.Origin, nil
	}
	origin, err := read()
	if sekisho.Code(err) != sekisho.ENotFound {
		return origin, err
	}
	// A store that already holds signed checkpoints is an install from
	// before origins were per deployment: it keeps the origin its witnesses
	// know (the first line of its latest checkpoint), so upgrading does not
	// change what they check.
	cps, err := st.Checkpoints(ctx)
	if err != nil {
		return "", fmt.Errorf("read checkpoints for the log origin: %w", err)
	}
	if len(cps) > 0 {
		latest := cps[0]
		for _, c := range cps[1:] {
			if c.Size > latest.Size {
				latest = c
			}
		}
		origin, _, _ = strings.Cut(string(latest.Note), "\n")
	}
	if origin == "" {
		var raw [8]byte
		if _, err := rand.Read(raw[:]); err != nil {
			return "", err
		}
		origin = "sekisho.local/" + hex.EncodeToString(raw[:])
	}
	body, _ := json.Marshal(map[string]string{"origin": origin})
	err = st.PutObject(ctx, &sekisho.Object{Kind: originKind, ID: originID, Version: 1, Body: body, Updated: time.Now().UTC()})
	if sekisho.Code(err) == sekisho.EConflict {
		return read() // another node made it first
	}
	if err != nil {
		return "", fmt.Errorf("keep the log origin: %w", err)
	}
	return origin, nil
}

// regionList is the closed list of regions: list (default
// sekisho.DefaultRegions) and every region with a store of its own.
func regionList(list []string, stores map[string]string) []string {
	if len(list) == 0 {
		list = sekisho.DefaultRegions
	}
	out := slices.Clone(list)
	for _, r := range slices.Sorted(maps.Keys(stores)) {
		if !slices.Contains(out, r) {
			out = append(out, r)
		}
	}
	return out
}

// openStore opens the embedded SQLite of dataDir ("" or "sqlite"), another
// SQLite file (sqlite:PATH, relative to dataDir unless absolute) or a
// PostgreSQL database (postgres:// URL).
func openStore(ctx context.Context, dataDir, url string, so sqlite.Options) (sekisho.Store, error) {
	var s sekisho.Store
	var err error
	switch {
	case url == "" || url == "sqlite":
		s, err = sqlite.OpenWith(ctx, filepath.Join(dataDir, dbFile), so)
	case strings.HasPrefix(url, "sqlite:"):
		s, err = sqlite.OpenWith(ctx, sqlitePath(dataDir, url), so)
	case strings.HasPrefix(url, "postgres://") || strings.HasPrefix(url, "postgresql://"):
		s, err = postgres.Open(ctx, url)
	default:
		return nil, fmt.Errorf("store %q: want a postgres:// URL, sqlite:PATH, or nothing for the embedded SQLite", redactDSN(url))
	}
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", redactDSN(url), err)
	}
	return s, nil
}

// sqlitePath is the file of a sqlite:PATH store URL: PATH, relative to
// dataDir unless absolute.
func sqlitePath(dataDir, url string) string {
	p := strings.TrimPrefix(url, "sqlite:")
	if filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(dataDir, p)
}

// Close closes the audit logs (draining pending appends), the stores and the lock.
func (in *instance) Close() error {
	var errs []error
	if in.logs != nil {
		errs = append(errs, in.logs.Close())
	} else if in.log != nil {
		errs = append(errs, in.log.Close())
	}
	for _, l := range in.regionLogs {
		errs = append(errs, l.Close()) // Close is idempotent
	}
	if in.store != nil {
		errs = append(errs, in.store.Close())
	}
	if in.closeKeys != nil {
		in.closeKeys()
	}
	if in.lock != nil {
		errs = append(errs, in.lock.Close())
	}
	return errors.Join(errs...)
}

// lockDir takes an exclusive lock on the data directory, so that an import
// cannot write under a running server (or two servers share one directory).
func lockDir(dir string) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(dir, lockFile), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open lock file: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		pid, _ := os.ReadFile(f.Name())
		f.Close()
		holder := strings.TrimSpace(string(pid))
		if holder == "" {
			holder = "another process"
		} else {
			holder = "process " + holder
		}
		return nil, fmt.Errorf("data directory %s is in use by %s (a running sekisho serve?): stop it, or go through its API with --server URL", dir, holder)
	}
	f.Truncate(0)
	f.WriteAt([]byte(fmt.Sprintf("%d\n", os.Getpid())), 0)
	return f, nil
}

// bootstrapToken returns the bootstrap admin token of dir, creating it (mode
// 0600) on first use. created says whether it was made now.
func bootstrapToken(dir string) (token string, created bool, err error) {
	path := filepath.Join(dir, bootstrapTokenFile)
	b, err := os.ReadFile(path)
	if err == nil {
		return strings.TrimSpace(string(b)), false, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return "", false, fmt.Errorf("read bootstrap token: %w", err)
	}
	var raw [32]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", false, err
	}
	token = "sekisho-bootstrap-" + base64.RawURLEncoding.EncodeToString(raw[:])
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", false, fmt.Errorf("write bootstrap token: %w", err)
	}
	if _, err := f.WriteString(token + "\n"); err != nil {
		f.Close()
		return "", false, fmt.Errorf("write bootstrap token: %w", err)
	}
	if err := f.Close(); err != nil {
		return "", false, err
	}
	return token, true, nil
}

// redactDSN hides a password in a connection string before it is printed.
func redactDSN(dsn string) string {
	if i := strings.Index(dsn, "://"); i >= 0 {
		rest := dsn[i+3:]
		if at := strings.LastIndex(rest, "@"); at >= 0 {
			if colon := strings.Index(rest[:at], ":"); colon >= 0 {
				return dsn[:i+3] + rest[:colon] + ":***" + rest[at:]
			}
		}
	}
	return dsn
}
