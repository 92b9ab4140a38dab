package main

import (
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/sekisho/sekisho/keys"
	"github.com/sekisho/sekisho/vault"
)

// keysConfig says where the KEKs live: the keys: section of the config
// file, a region's own keys: (regions: {jp: {store: ..., keys: {...}}}), or
// the flags --key-provider, --pkcs11-module, --pkcs11-token, --pkcs11-pin-file.
//
//	keys:
//	  provider: pkcs11            # local (default) or pkcs11
//	  module: /usr/lib/softhsm/libsofthsm2.so
//	  token_label: sekisho
//	  pin_file: /etc/sekisho/hsm-pin
//	  cache_size: 100000          # unwrapped data keys kept in memory
//	  cache_ttl: 5m               # and for how long
type keysConfig struct {
	Provider   string `yaml:"provider"`
	Module     string `yaml:"module"`
	TokenLabel string `yaml:"token_label"`
	PINFile    string `yaml:"pin_file"`
	CacheSize  string `yaml:"cache_size"`
	CacheTTL   string `yaml:"cache_ttl"`
}

// Key providers.
const (
	providerLocal  = "local"
	providerPKCS11 = "pkcs11"
)

// keyFlags are the key-custody flags of the commands that open a data
// directory (serve, import, keys rotate).
type keyFlags struct {
	keysConfig
	cacheSize int
	cacheTTL  time.Duration
	// regions are the regions' own providers, from the config file.
	regions map[string]keysConfig
}

func (k *keyFlags) flags(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&k.Provider, "key-provider", providerLocal, "where the key-encryption keys live: local (the keyring in the data directory, sealed by the master key) or pkcs11 (an HSM)")
	fl.StringVar(&k.Module, "pkcs11-module", "", "PKCS#11 module of the HSM, with --key-provider pkcs11 (for SoftHSM2: /usr/lib/softhsm/libsofthsm2.so)")
	fl.StringVar(&k.TokenLabel, "pkcs11-token", "", "label of the HSM token, with --key-provider pkcs11")
	fl.StringVar(&k.PINFile, "pkcs11-pin-file", "", "file holding the token's user PIN (mode 0600), with --key-provider pkcs11")
	fl.IntVar(&k.cacheSize, "dek-cache-size", vault.DefaultDEKCacheSize, "unwrapped data keys kept in memory (-1: none)")
	fl.DurationVar(&k.cacheTTL, "dek-cache-ttl", vault.DefaultDEKCacheTTL, "how long an unwrapped data key is kept in memory (-1s: not at all)")
}

// fromConfig reads the regions' own providers of the config file at path.
func (k *keyFlags) fromConfig(path string) error {
	if path == "" {
		return nil
	}
	c, err := loadConfig(path)
	if err != nil {
		return err
	}
	k.regions = c.RegionKeys
	return nil
}

func (c keysConfig) validate(where string) error {
	switch c.Provider {
	case "", providerLocal:
		if c.Module != "" || c.TokenLabel != "" || c.PINFile != "" {
			return fmt.Errorf("%s: module, token and PIN file are for the pkcs11 provider", where)
		}
	case providerPKCS11:
		if c.Module == "" || c.TokenLabel == "" || c.PINFile == "" {
			return fmt.Errorf("%s: the pkcs11 provider needs a module, a token label and a PIN file (--pkcs11-module, --pkcs11-token, --pkcs11-pin-file)", where)
		}
	default:
		return fmt.Errorf("%s: key provider %q: want local or pkcs11", where, c.Provider)
	}
	return nil
}

func (c keysConfig) local() bool { return c.Provider == "" || c.Provider == providerLocal }

// custody names a provider in the data directory's custody file.
func (c keysConfig) custody() string {
	if c.local() {
		return providerLocal
	}
	return providerPKCS11 + " token=" + c.TokenLabel
}

// custodyFile records in the data directory where its KEKs live, so that a
// command given another provider (an import without --key-provider pkcs11)
// is refused instead of wrapping data keys under the wrong keys.
const custodyFile = "key-custody"

func checkCustody(dataDir string, def keysConfig, regions map[string]keysConfig) error {
	lines := []string{"default " + def.custody()}
	for _, r := range slices.Sorted(maps.Keys(regions)) {
		lines = append(lines, "region "+r+" "+regions[r].custody())
	}
	want := strings.Join(lines, "\n") + "\n"
	path := filepath.Join(dataDir, custodyFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		// A data directory from before this file kept its keys locally.
		if _, serr := os.Stat(filepath.Join(dataDir, keys.KeyringFile)); serr == nil && want != "default local\n" {
			return fmt.Errorf("data directory %s keeps its keys in the local keyring; it cannot switch to %s (rotate into a new data directory instead)", dataDir, def.custody())
		}
		return os.WriteFile(path, []byte(want), 0o600)
	}
	if err != nil {
		return fmt.Errorf("read %s: %w", path, err)
	}
	if string(b) != want {
		return fmt.Errorf("data directory %s keeps its keys in:\n%swhile this command was given:\n%s(give the same --key-provider and --pkcs11-* flags or --config as the server)", dataDir, b, want)
	}
	return nil
}

// openProviders opens the default key provider and each region's own, and
// returns the provider the vault uses (a router when regions have their
// own) and a function that closes them. The local keyring (and so the
// master key) is opened only if some provider is local.
func openProviders(o instanceOptions, stderr io.Writer) (keys.Provider, func(), error) {
	def := o.Keys
	if err := def.validate("keys"); err != nil {
		return nil, nil, err
	}
	for r, c := range o.RegionKeys {
		if err := c.validate("regions: " + r + ": keys"); err != nil {
			return nil, nil, err
		}
	}
	if err := checkCustody(o.DataDir, def, o.RegionKeys); err != nil {
		return nil, nil, err
	}
	var closers []func()
	closeAll := func() {
		for _, c := range closers {
			c()
		}
	}
	var local *keys.Local
	open := func(c keysConfig) (keys.Provider, error) {
		if c.local() {
			if local == nil {
				l, err := openLocalKeyring(o, stderr)
				if err != nil {
					return nil, err
				}
				local = l
			}
			return local, nil
		}
		p, err := keys.OpenPKCS11(keys.PKCS11Config{Module: c.Module, TokenLabel: c.TokenLabel, PINFile: c.PINFile})
		if err != nil {
			return nil, err
		}
		closers = append(closers, func() { p.Close() })
		return p, nil
	}
	dp, err := open(def)
	if err != nil {
		closeAll()
		return nil, nil, err
	}
	if len(o.RegionKeys) == 0 {
		return dp, closeAll, nil
	}
	byRegion := map[string]keys.Provider{}
	for _, r := range slices.Sorted(maps.Keys(o.RegionKeys)) {
		p, err := open(o.RegionKeys[r])
		if err != nil {
			closeAll()
			return nil, nil, fmt.Errorf("region %s: %w", r, err)
		}
		byRegion[r] = p
	}
	return keys.NewRouter(dp, byRegion), closeAll, nil
}

func openLocalKeyring(o instanceOptions, stderr io.Writer) (*keys.Local, error) {
	defaultKey, err := keys.DefaultMasterKeyFile(o.DataDir)
	if err != nil {
		return nil, err
	}
	// A master key is generated only for a data directory without a keyring:
	// for an existing keyring, a missing key is an error, never a new key.
	_, statErr := os.Stat(filepath.Join(o.DataDir, keys.KeyringFile))
	generate := errors.Is(statErr, os.ErrNotExist)
	master, src, err := keys.LoadMasterKey(o.DataDir, o.MasterKeyFile, defaultKey, generate)
	if err != nil {
		return nil, fmt.Errorf("master key: %w (set %s, or %s / --master-key-file)", err, keys.EnvMasterKey, keys.EnvMasterKeyFile)
	}
	if src.Generated {
		fmt.Fprintf(stderr, "\n*** WARNING: no master key was configured, so one was generated at\n***   %s\n"+
			"*** It seals the keyring in %s. Anyone with both can read every record.\n"+
			"*** For production, move it off this machine's disk: a secrets manager that sets %s,\n"+
			"*** or a file on separate storage named by %s or --master-key-file,\n"+
			"*** or keep the keys in an HSM (--key-provider pkcs11).\n\n",
			src.Where, o.DataDir, keys.EnvMasterKey, keys.EnvMasterKeyFile)
	}
	return keys.OpenLocal(o.DataDir, master)
}

// readCustody reads where a data directory's KEKs live from its custody
// file (written by checkCustody); a directory from before that file with a
// keyring keeps them locally. nil: not known (no data directory, or
// nothing there).
func readCustody(dataDir string) (*keys.Custody, error) {
	if dataDir == "" {
		return nil, nil
	}
	b, err := os.ReadFile(filepath.Join(dataDir, custodyFile))
	if errors.Is(err, os.ErrNotExist) {
		if _, serr := os.Stat(filepath.Join(dataDir, keys.KeyringFile)); serr == nil {
			return &keys.Custody{Default: keys.Home{Provider: keys.ProviderLocal}}, nil
		}
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", custodyFile, err)
	}
	home := func(f []string) (keys.Home, error) {
		switch {
		case len(f) == 1 && f[0] == providerLocal:
			return keys.Home{Provider: keys.ProviderLocal}, nil
		case len(f) == 2 && f[0] == providerPKCS11 && strings.HasPrefix(f[1], "token="):
			return keys.Home{Provider: keys.ProviderPKCS11, Token: strings.TrimPrefix(f[1], "token=")}, nil
		}
		return keys.Home{}, fmt.Errorf("%s in %s: %q is not a key provider", custodyFile, dataDir, strings.Join(f, " "))
	}
	c := &keys.Custody{Regions: map[string]keys.Home{}}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		f := strings.Fields(line)
		var err error
		switch {
		case len(f) >= 2 && f[0] == "default":
			c.Default, err = home(f[1:])
		case len(f) >= 3 && f[0] == "region":
			c.Regions[f[1]], err = home(f[2:])
		default:
			err = fmt.Errorf("%s in %s: line %q", custodyFile, dataDir, line)
		}
		if err != nil {
			return nil, err
		}
	}
	return c, nil
}
