package client

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/sekisho/sekisho/access/dpop"
	"github.com/sekisho/sekisho/client/pkcs11key"
	"github.com/sekisho/sekisho/client/tpmkey"
)

// Files of a profile directory. The device key and the cached token are
// written with mode 0600 inside a 0700 directory.
const (
	ProfileFile = "profile.json"
	KeyFile     = "device-key.pem"
	// TPMKeyFile holds a key_storage tpm profile's key blob (public area,
	// private area wrapped by the TPM, parent template): useless without
	// the TPM that made it.
	TPMKeyFile = "device-key.tpm.json"
	// PKCS11KeyFile holds a key_storage pkcs11 profile's key reference
	// (module, token label, CKA_ID, public key): useless without the token.
	PKCS11KeyFile = "device-key.pkcs11.json"
	TokenFile     = "token.json"
)

// Profile is what `sekisho login` stores: which server, as whom, with which
// device (like a kubeconfig).
type Profile struct {
	Server    string `json:"server"`
	Principal string `json:"principal"`
	Org       string `json:"org,omitempty"`
	Device    string `json:"device"`
	// KeyStorage says where the device key lives: file (default, the
	// PKCS #8 PEM in KeyFile) or tpm (inside the TPM named by TPM).
	KeyStorage string `json:"key_storage,omitempty"`
	// TPM is the TCTI string of the TPM of a key_storage tpm profile; every
	// verb signs there.
	TPM string `json:"tpm,omitempty"`
}

// Where a device key lives (the device record's key_storage).
const (
	KeyStorageFile = "file"
	KeyStorageTPM  = "tpm"
	// KeyStoragePKCS11: the key lives in a PKCS#11 token (smart card,
	// YubiKey PIV, HSM; SoftHSM2 in tests).
	KeyStoragePKCS11 = "pkcs11"
)

// HasKey reports whether dir holds a device key (a file or a TPM blob).
func HasKey(dir string) (bool, error) {
	for _, f := range []string{KeyFile, TPMKeyFile, PKCS11KeyFile} {
		if _, err := os.Stat(filepath.Join(dir, f)); err == nil {
			return true, nil
		} else if !errors.Is(err, fs.ErrNotExist) {
			return false, err
		}
	}
	return false, nil
}

// SaveTPMKey writes a TPM key's blob to dir; SaveProfile (with the
// profile's key_storage tpm) follows.
func SaveTPMKey(dir string, b *tpmkey.Blob) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create profile directory: %w", err)
	}
	j, _ := json.MarshalIndent(b, "", "  ")
	if err := writeFile(filepath.Join(dir, TPMKeyFile), append(j, '\n')); err != nil {
		return fmt.Errorf("write TPM key blob: %w", err)
	}
	return nil
}

// SavePKCS11Key writes a token key's reference to dir; SaveProfile (with
// the profile's key_storage pkcs11) follows.
func SavePKCS11Key(dir string, r *pkcs11key.Ref) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create profile directory: %w", err)
	}
	j, _ := json.MarshalIndent(r, "", "  ")
	if err := writeFile(filepath.Join(dir, PKCS11KeyFile), append(j, '\n')); err != nil {
		return fmt.Errorf("write PKCS#11 key reference: %w", err)
	}
	return nil
}

// DefaultProfileDir is sekisho's directory under the user's config directory.
func DefaultProfileDir() (string, error) {
	d, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("no user config directory (give --profile DIR): %w", err)
	}
	return filepath.Join(d, "sekisho"), nil
}

func writeFile(path string, b []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	if err := os.Chmod(tmp, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// SaveProfile writes the profile and, for a file key, the device key to
// dir. A key that lives in a TPM is not written (it cannot be): its blob
// was written by SaveTPMKey, and a file key of an earlier profile is
// removed.
func SaveProfile(dir string, p *Profile, key *dpop.Key) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create profile directory: %w", err)
	}
	if key.Exportable() {
		pem, err := key.MarshalPEM()
		if err != nil {
			return err
		}
		if err := writeFile(filepath.Join(dir, KeyFile), pem); err != nil {
			return fmt.Errorf("write device key: %w", err)
		}
		for _, f := range []string{TPMKeyFile, PKCS11KeyFile} {
			if err := os.Remove(filepath.Join(dir, f)); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("remove the earlier key reference %s: %w", f, err)
			}
		}
	} else if err := os.Remove(filepath.Join(dir, KeyFile)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove the earlier device key: %w", err)
	}
	b, _ := json.MarshalIndent(p, "", "  ")
	if err := writeFile(filepath.Join(dir, ProfileFile), append(b, '\n')); err != nil {
		return fmt.Errorf("write profile: %w", err)
	}
	return nil
}

// LoadProfile reads a profile and returns a client for it, with its cached
// token if still valid.
func LoadProfile(dir string) (*Profile, *Client, error) {
	b, err := os.ReadFile(filepath.Join(dir, ProfileFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, fmt.Errorf("no profile in %s: run sekisho login first", dir)
	}
	if err != nil {
		return nil, nil, err
	}
	var p Profile
	if err := json.Unmarshal(b, &p); err != nil {
		return nil, nil, fmt.Errorf("profile %s: %w", dir, err)
	}
	key, err := loadKey(dir, &p)
	if err != nil {
		return nil, nil, err
	}
	c := New(p.Server, key)
	c.KeyStorage = p.KeyStorage
	c.Renew = true // a revoked or outdated cached token is renewed with the key
	if tb, err := os.ReadFile(filepath.Join(dir, TokenFile)); err == nil {
		var t Token
		if json.Unmarshal(tb, &t) == nil {
			c.SetToken(t.AccessToken, t.ExpiresAt)
		}
	}
	return &p, c, nil
}

// SaveToken caches the client's current token in dir (useless without the
// device key, which every request must prove).
func SaveToken(dir string, c *Client) error {
	tok, exp := c.CurrentToken()
	if tok == "" {
		return nil
	}
	b, _ := json.Marshal(Token{AccessToken: tok, TokenType: "DPoP", ExpiresAt: exp, ExpiresIn: int64(time.Until(exp) / time.Second)})
	return writeFile(filepath.Join(dir, TokenFile), b)
}

// loadKey returns the device key of profile p in dir: the PEM file, or a
// signer of the key inside the profile's TPM.
func loadKey(dir string, p *Profile) (*dpop.Key, error) {
	switch p.KeyStorage {
	case "", KeyStorageFile:
		kb, err := os.ReadFile(filepath.Join(dir, KeyFile))
		if err != nil {
			return nil, fmt.Errorf("device key: %w", err)
		}
		key, err := dpop.ParsePEM(kb)
		if err != nil {
			return nil, fmt.Errorf("device key %s: %w", filepath.Join(dir, KeyFile), err)
		}
		return key, nil
	case KeyStorageTPM:
		path := filepath.Join(dir, TPMKeyFile)
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("TPM device key: %w", err)
		}
		var blob tpmkey.Blob
		if err := json.Unmarshal(b, &blob); err != nil {
			return nil, fmt.Errorf("TPM device key %s: %w", path, err)
		}
		blob.TPM = p.TPM
		s, err := blob.Signer()
		if err != nil {
			return nil, fmt.Errorf("TPM device key %s: %w", path, err)
		}
		key, err := dpop.NewKey(s)
		if err != nil {
			return nil, fmt.Errorf("TPM device key %s: %w", path, err)
		}
		if p.Device != "" && key.Thumbprint() != p.Device {
			return nil, fmt.Errorf("TPM device key %s is not device %s of the profile", path, p.Device)
		}
		return key, nil
	case KeyStoragePKCS11:
		path := filepath.Join(dir, PKCS11KeyFile)
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("PKCS#11 device key: %w", err)
		}
		var ref pkcs11key.Ref
		if err := json.Unmarshal(b, &ref); err != nil {
			return nil, fmt.Errorf("PKCS#11 device key %s: %w", path, err)
		}
		s, err := ref.Signer()
		if err != nil {
			return nil, fmt.Errorf("PKCS#11 device key %s: %w", path, err)
		}
		key, err := dpop.NewKey(s)
		if err != nil {
			return nil, fmt.Errorf("PKCS#11 device key %s: %w", path, err)
		}
		if p.Device != "" && key.Thumbprint() != p.Device {
			return nil, fmt.Errorf("PKCS#11 device key %s is not device %s of the profile", path, p.Device)
		}
		return key, nil
	}
	return nil, fmt.Errorf("profile %s: key_storage %q is not supported by this sekisho (want file, tpm or pkcs11)", dir, p.KeyStorage)
}
