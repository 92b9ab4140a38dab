package main

import (
	"fmt"

	"github.com/spf13/pflag"

	"github.com/sekisho/sekisho/access"
	"github.com/sekisho/sekisho/sso"
)

// oidcFlags are serve's single sign-on flags: people sign in through the
// company's OpenID Connect provider (sekisho login --oidc).
type oidcFlags struct {
	issuer, clientID, mapping string
}

func (o *oidcFlags) flags(fl *pflag.FlagSet) {
	fl.StringVar(&o.issuer, "oidc-issuer", "", "issuer URL of the OpenID Connect provider people sign in with (sekisho login --oidc); needs --oidc-client-id and --oidc-mapping")
	fl.StringVar(&o.clientID, "oidc-client-id", "", "sekisho's client id at the OpenID Connect provider (a public client: PKCE, refresh token and device code grants, redirect URI http://127.0.0.1/callback)")
	fl.StringVar(&o.mapping, "oidc-mapping", "", "YAML file mapping the provider's people to principals and their groups to roles (see the README, Single sign-on)")
}

// provider returns the identity provider the flags configure, or nil.
func (o *oidcFlags) provider() (access.IdentityProvider, error) {
	if o.issuer == "" {
		if o.clientID != "" || o.mapping != "" {
			return nil, usageErrorf("--oidc-client-id and --oidc-mapping need --oidc-issuer")
		}
		return nil, nil
	}
	if o.clientID == "" || o.mapping == "" {
		return nil, usageErrorf("--oidc-issuer needs --oidc-client-id ID and --oidc-mapping FILE")
	}
	m, err := sso.LoadMapping(o.mapping)
	if err != nil {
		return nil, fmt.Errorf("--oidc-mapping: %w", err)
	}
	p, err := sso.New(sso.Config{Issuer: o.issuer, ClientID: o.clientID, Mapping: m})
	if err != nil {
		return nil, err
	}
	return p, nil
}
