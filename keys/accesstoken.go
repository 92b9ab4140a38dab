package keys

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"fmt"
)

// accessTokenEntry names the keyring entry whose index root the access-token
// MAC key is derived from. It is not a valid org id, so no org can collide.
const accessTokenEntry = "sekisho.access-token"

// AccessTokenKey derives the key that MACs the access tokens (package
// access) from the keyring: HMAC-SHA-256 of a fixed label under the index
// root of a reserved entry. It is never stored in the database, and every
// node with the same keyring derives the same key, so they accept each
// other's tokens.
func AccessTokenKey(ctx context.Context, p Provider) ([]byte, error) {
	root, err := p.IndexRoot(ctx, accessTokenEntry)
	if err != nil {
		return nil, fmt.Errorf("keys: access token key: %w", err)
	}
	m := hmac.New(sha256.New, root)
	m.Write([]byte("sekisho access token MAC v1"))
	return m.Sum(nil), nil
}
