package main

import (
	"context"
	"time"

	"github.com/sekisho/sekisho"
	"github.com/sekisho/sekisho/access"
	"github.com/sekisho/sekisho/keys"
)

// newAccess builds the access service of a running server.
func newAccess(ctx context.Context, in *instance, bootstrapToken, rootOrg, rootRegion string, now func() time.Time) (*access.Service, error) {
	return newAccessWith(ctx, in, access.Config{BootstrapToken: bootstrapToken, RootOrg: rootOrg, RootRegion: rootRegion, Now: now})
}

// newAccessWith is newAccess with the rest of the access configuration
// (the edge's: public URL, server nonces); the store, schema, audit log and
// token key (keys.AccessTokenKey) come from the instance.
func newAccessWith(ctx context.Context, in *instance, cfg access.Config) (*access.Service, error) {
	tk, err := keys.AccessTokenKey(ctx, in.keys)
	if err != nil {
		return nil, err
	}
	// The instance's vault at the time of the call: a serving node replaces
	// it by one with the access service as its authoriser (newNode).
	schema := func(ctx context.Context, collection string) (*sekisho.Schema, error) {
		return in.vault.Schema(ctx, collection)
	}
	cfg.Store, cfg.Schema, cfg.Audit, cfg.TokenKey = in.store, schema, in.log, tk
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
