package audit

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/mod/sumdb/note"
)

// Key file names inside the data directory.
const (
	SigningKeyFile  = "audit-signing-key"  // the note signer key, mode 0600
	VerifierKeyFile = "audit-verifier-key" // the note verifier key, for auditors to pin
)

// GenerateKey returns a new Ed25519 note signer key and its verifier key, in
// golang.org/x/mod/sumdb/note's encodings ("PRIVATE+KEY+name+hash+key" and
// "name+hash+key"). name is the key's name, usually the log's origin.
func GenerateKey(name string) (skey, vkey string, err error) {
	return note.GenerateKey(rand.Reader, name)
}

// LoadOrCreateKeys returns the checkpoint signer and verifier kept in dir
// (SigningKeyFile, VerifierKeyFile), creating a key named name on first use.
// The verifier key file is rewritten from the signing key if it is missing,
// and a verifier key that does not match the signing key is an error, so that
// the key auditors pin is always the one that signs.
func LoadOrCreateKeys(dir, name string) (note.Signer, note.Verifier, error) {
	skPath := filepath.Join(dir, SigningKeyFile)
	vkPath := filepath.Join(dir, VerifierKeyFile)
	skey, err := os.ReadFile(skPath)
	if errors.Is(err, fs.ErrNotExist) {
		s, _, gerr := GenerateKey(name)
		if gerr != nil {
			return nil, nil, fmt.Errorf("audit: generate signing key: %w", gerr)
		}
		// O_EXCL: of two processes starting at once, one creates the key
		// and the other reads it.
		if werr := writeNew(skPath, []byte(s+"\n"), 0o600); werr == nil {
			skey = []byte(s + "\n")
		} else if errors.Is(werr, fs.ErrExist) {
			skey, err = os.ReadFile(skPath)
		} else {
			return nil, nil, werr
		}
	}
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, nil, fmt.Errorf("audit: read signing key: %w", err)
	}
	if fi, err := os.Stat(skPath); err == nil && fi.Mode().Perm()&0o077 != 0 {
		return nil, nil, fmt.Errorf("audit: signing key %s is readable by others (mode %v); chmod 600 it", skPath, fi.Mode().Perm())
	}
	signer, err := note.NewSigner(strings.TrimSpace(string(skey)))
	if err != nil {
		return nil, nil, fmt.Errorf("audit: signing key %s: %w", skPath, err)
	}
	if signer.Name() != name {
		return nil, nil, fmt.Errorf("audit: signing key %s is named %q, not %q", skPath, signer.Name(), name)
	}
	want, err := verifierKey(strings.TrimSpace(string(skey)))
	if err != nil {
		return nil, nil, fmt.Errorf("audit: signing key %s: %w", skPath, err)
	}
	vkey, err := os.ReadFile(vkPath)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if werr := writeNew(vkPath, []byte(want+"\n"), 0o644); werr != nil && !errors.Is(werr, fs.ErrExist) {
			return nil, nil, werr
		}
	case err != nil:
		return nil, nil, fmt.Errorf("audit: read verifier key: %w", err)
	case strings.TrimSpace(string(vkey)) != want:
		return nil, nil, fmt.Errorf("audit: verifier key %s does not match the signing key %s", vkPath, skPath)
	}
	verifier, err := note.NewVerifier(want)
	if err != nil {
		return nil, nil, fmt.Errorf("audit: verifier key: %w", err)
	}
	return signer, verifier, nil
}

// LoadVerifier reads a verifier key file (the format of VerifierKeyFile).
func LoadVerifier(path string) (note.Verifier, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("audit: read verifier key: %w", err)
	}
	v, err := note.NewVerifier(strings.TrimSpace(string(b)))
	if err != nil {
		return nil, fmt.Errorf("audit: verifier key %s: %w", path, err)
	}
	return v, nil
}

// verifierKey derives the verifier key of an Ed25519 signer key: the key data
// of a signer key is the algorithm byte (1) and the 32-byte Ed25519 seed.
func verifierKey(skey string) (string, error) {
	parts := strings.SplitN(skey, "+", 5)
	if len(parts) != 5 || parts[0] != "PRIVATE" || parts[1] != "KEY" {
		return "", errors.New("not a note signer key")
	}
	key, err := base64.StdEncoding.DecodeString(parts[4])
	if err != nil || len(key) != 1+ed25519.SeedSize || key[0] != 1 {
		return "", errors.New("not an Ed25519 note signer key")
	}
	pub := ed25519.NewKeyFromSeed(key[1:]).Public().(ed25519.PublicKey)
	return note.NewEd25519VerifierKey(parts[2], pub)
}

func writeNew(path string, data []byte, perm os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		if errors.Is(err, fs.ErrExist) {
			return err
		}
		return fmt.Errorf("audit: create %s: %w", path, err)
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return fmt.Errorf("audit: write %s: %w", path, err)
	}
	return nil
}
