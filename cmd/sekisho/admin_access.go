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
	return newAccessWith(ctx, in, access.Config{BootstrapToken: bootstrapToken, RootOrg: rootOrg, RootRegion: rootRegion, Now: now})
}

// newAccessWith is newAccess with the rest of the access configuration
// (the edge's: public URL, server nonces); the store, schema, audit log and
// token key come from the instance.
func newAccessWith(ctx context.Context, in *instance, cfg access.Config) (*access.Service, error) {
	root, err := in.keys.IndexRoot(ctx, tokenKeyOrg)
	if err != nil {
		return nil, err
	}
	m := hmac.New(sha256.New, root)
	m.Write([]byte("sekisho access token MAC v1"))
	cfg.Store, cfg.Schema, cfg.Audit, cfg.TokenKey = in.store, in.vault.Schema, in.log, m.Sum(nil)
	cfg.Regions = in.vault.Regions()
	acc, err := access.New(cfg)
	if err != nil {
		return nil, err
	}
	if err := acc.EnsurePolicies(ctx); err != nil {
		return nil, err
	}
	return acc, nil
}
