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
)

// Files of a profile directory. The device key and the cached token are
// written with mode 0600 inside a 0700 directory.
const (
	ProfileFile = "profile.json"
	KeyFile     = "device-key.pem"
	TokenFile   = "token.json"
)

// Profile is what `sekisho login` stores: which server, as whom, with which
// device (like a kubeconfig).
type Profile struct {
	Server    string `json:"server"`
	Principal string `json:"principal"`
	Org       string `json:"org,omitempty"`
	Device    string `json:"device"`
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

// SaveProfile writes the profile and the device key to dir.
func SaveProfile(dir string, p *Profile, key *dpop.Key) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create profile directory: %w", err)
	}
	pem, err := key.MarshalPEM()
	if err != nil {
		return err
	}
	if err := writeFile(filepath.Join(dir, KeyFile), pem); err != nil {
		return fmt.Errorf("write device key: %w", err)
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
	kb, err := os.ReadFile(filepath.Join(dir, KeyFile))
	if err != nil {
		return nil, nil, fmt.Errorf("device key: %w", err)
	}
	key, err := dpop.ParsePEM(kb)
	if err != nil {
		return nil, nil, fmt.Errorf("device key %s: %w", filepath.Join(dir, KeyFile), err)
	}
	c := New(p.Server, key)
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
