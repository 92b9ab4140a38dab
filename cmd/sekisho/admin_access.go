package main

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"time"

	"github.com/sekisho/sekisho/access"
)

// tokenKeyOrg names the keyring entry whose index root the access-token MAC
// key is derived from. It is not a valid org id, so no org can collide.
const tokenKeyOrg = "sekisho.access-token"

// newAccess builds the access service of a running server: the token MAC
// key is derived from the keyring (never stored in the database), so every
// node with the same keyring accepts the same tokens.
func newAccess(ctx context.Context, in *instance, bootstrapToken, rootOrg, rootRegion string, now func() time.Time) (*access.Service, error) {
	root, err := in.keys.IndexRoot(ctx, tokenKeyOrg)
	if err != nil {
		return nil, err
	}
	m := hmac.New(sha256.New, root)
	m.Write([]byte("sekisho access token MAC v1"))
	acc, err := access.New(access.Config{Store: in.store, Schema: in.vault.Schema, Audit: in.log, TokenKey: m.Sum(nil),
		BootstrapToken: bootstrapToken, RootOrg: rootOrg, RootRegion: rootRegion, Now: now})
	if err != nil {
		return nil, err
	}
	if err := acc.EnsurePolicies(ctx); err != nil {
		return nil, err
	}
	return acc, nil
}
