package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/sekisho/sekisho/access"
	"github.com/sekisho/sekisho/access/dpop"
	"github.com/sekisho/sekisho/client"
	"github.com/sekisho/sekisho/client/pkcs11key"
	"github.com/sekisho/sekisho/client/tpmkey"
	"github.com/sekisho/sekisho/sso"
)

// oidcLoginFlags are login's single sign-on flags.
type oidcLoginFlags struct {
	oidc, deviceCode bool
	timeout          time.Duration
}

func (o *oidcLoginFlags) flags(f *pflag.FlagSet) {
	f.BoolVar(&o.oidc, "oidc", false, "sign in through the server's identity provider (OpenID Connect): authorization code with PKCE in a browser, redirected to a loopback port")
	f.BoolVar(&o.deviceCode, "device-code", false, "with --oidc: the device flow for headless machines (enter a code at the provider from another machine)")
	f.DurationVar(&o.timeout, "oidc-timeout", 5*time.Minute, "with --oidc: how long to wait for the sign-in at the identity provider")
}

type oidcLoginArgs struct {
	server, profile, keyStore, keyType, tpm, deviceName, format string
	p11                                                         *pkcs11Flags
	force, attest                                               bool
}

// serverIdP is what the server's metadata says of its identity provider.
type serverIdP struct {
	Issuer   string   `json:"sekisho_oidc_issuer"`
	ClientID string   `json:"sekisho_oidc_client_id"`
	Scopes   []string `json:"sekisho_oidc_scopes"`
}

func fetchServerIdP(ctx context.Context, server string) (*serverIdP, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, server+"/.well-known/oauth-authorization-server", nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("read the server's metadata: %w", err)
	}
	defer resp.Body.Close()
	var m serverIdP
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("read the server's metadata: HTTP %d", resp.StatusCode)
	}
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
		return nil, fmt.Errorf("read the server's metadata: %w", err)
	}
	if m.Issuer == "" || m.ClientID == "" {
		return nil, fmt.Errorf("the server %s has no identity provider (serve --oidc-issuer URL --oidc-client-id ID); log in with --principal instead", server)
	}
	return &m, nil
}

// loginOIDC is login --oidc.
func loginOIDC(cmd *cobra.Command, o oidcLoginFlags, a oidcLoginArgs) error {
	ctx := cmd.Context()
	errw, out := cmd.ErrOrStderr(), cmd.OutOrStdout()
	server := strings.TrimRight(a.server, "/")
	dir, err := profileDir(a.profile)
	if err != nil {
		return err
	}
	idp, err := fetchServerIdP(ctx, server)
	if err != nil {
		return err
	}
	// The device key: the profile's own (the device it already is), or a
	// new one where --key-store says.
	old, err := existingProfile(dir)
	if err != nil {
		return err
	}
	var (
		p    *client.Profile
		c    *client.Client
		key  *dpop.Key
		blob *tpmkey.Blob
		ref  *pkcs11key.Ref
	)
	reused := false
	if old != nil && !a.force {
		if p, c, err = client.LoadProfile(dir); err != nil {
			return fmt.Errorf("the profile %s holds a device key that does not load (give --force to make a new one): %w", dir, err)
		}
		if p.Server != server {
			return usageErrorf("profile %s is for the server %s, not %s; give another --profile, or --force to replace it", dir, p.Server, server)
		}
		if cmd.Flags().Changed("key-store") && a.keyStore != orDefault(p.KeyStorage, client.KeyStorageFile) {
			return usageErrorf("profile %s holds a %s key; give --force to replace it with a %s key", dir, orDefault(p.KeyStorage, client.KeyStorageFile), a.keyStore)
		}
		if a.attest {
			return usageErrorf("profile %s holds a device key already enrolled; --attest attests a new key (add --force)", dir)
		}
		key, reused = c.Key, true
		c.KeyStorage = orDefault(p.KeyStorage, client.KeyStorageFile)
	} else {
		if old != nil {
			fmt.Fprintf(errw, "sekisho: replacing profile %s: %s is abandoned here but stays enrolled; an admin of %s revokes it with\n  sekisho device revoke -- %s\n",
				dir, old.describe(), orDefault(old.Org, "its org"), old.Device)
		}
		p = &client.Profile{Server: server}
		if key, blob, ref, err = newDeviceKey(cmd, a.keyStore, a.keyType, a.tpm, a.p11, p); err != nil {
			return err
		}
		p.Device = key.Thumbprint()
		c = client.New(server, key)
		c.KeyStorage = a.keyStore
		if blob != nil {
			// As at enrolment: the TPM proves where the key lives when it can.
			if err := attestLogin(cmd, c, blob, p.Device, a.attest); err != nil {
				return err
			}
		}
	}
	deviceName := a.deviceName
	if deviceName == "" {
		deviceName, _ = os.Hostname()
	}
	login := &sso.Login{Issuer: idp.Issuer, ClientID: idp.ClientID, Scopes: idp.Scopes}
	wait, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	var tok *client.Token
	if o.deviceCode {
		da, grant, err := login.Device(wait)
		if err != nil {
			return err
		}
		grant.Set("device_name", deviceName)
		fmt.Fprintf(errw, "To sign in, open %s on any device and enter the code %s", da.VerificationURI, da.UserCode)
		if da.VerificationURIComplete != "" {
			fmt.Fprintf(errw, "\n(or open %s)", da.VerificationURIComplete)
		}
		fmt.Fprintln(errw)
		if tok, err = pollDeviceSignIn(wait, c, grant, da.Interval); err != nil {
			return err
		}
	} else {
		grant, err := login.Browser(wait, func(u string) {
			fmt.Fprintf(errw, "Open this URL in your browser to sign in:\n  %s\n", u)
		})
		if err != nil {
			return err
		}
		grant.Set("device_name", deviceName)
		if tok, err = c.SignIn(ctx, grant); err != nil {
			return err
		}
	}
	p.Principal, p.Org, p.Device = tok.Principal, tok.Org, tok.Device
	if reused {
		blob, ref = nil, nil // already in the profile
	}
	if err := saveProfile(dir, p, key, blob, ref, c); err != nil {
		return err
	}
	var who struct {
		Roles []string `json:"roles"`
	}
	if err := c.JSON(ctx, http.MethodGet, "/v1/whoami", "", nil, &who); err != nil {
		return err
	}
	var dev client.Device
	if err := c.JSON(ctx, http.MethodGet, "/v1/devices/"+p.Device, "", nil, &dev); err != nil {
		return err
	}
	client.SaveToken(dir, c)
	if a.format == "json" {
		return writeJSON(out, loginResult{Server: p.Server, Principal: p.Principal, Org: p.Org, Roles: who.Roles, Device: p.Device,
			Status: dev.Status, Profile: dir, KeyStorage: dev.KeyStorage, TPM: p.TPM, Abandoned: abandoned(old, a.force), Attested: dev.Attested})
	}
	how := "a new"
	if reused {
		how = "the profile's"
	}
	if dev.Attested {
		how += ", attested"
	}
	fmt.Fprintf(out, "Signed in as %s (org %s, roles %s) through %s.\nDevice %s (%s key), %s.\n%sProfile: %s\n",
		p.Principal, p.Org, strings.Join(who.Roles, ","), idp.Issuer, p.Device, how, dev.Status, keyLine(p), dir)
	return nil
}

func abandoned(old *oldProfile, force bool) string {
	if !force {
		return ""
	}
	return old.device()
}

// pollDeviceSignIn polls the token endpoint with a device code grant
// until the person approved it at the identity provider (RFC 8628 §3.5).
func pollDeviceSignIn(ctx context.Context, c *client.Client, grant url.Values, interval int64) (*client.Token, error) {
	every := time.Duration(interval) * time.Second
	if every <= 0 {
		every = 5 * time.Second
	}
	for {
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("the sign-in was not approved in time: %w", ctx.Err())
		case <-time.After(every):
		}
		tok, err := c.SignIn(ctx, grant)
		switch client.ProblemType(err) {
		case access.ProblemAuthorizationPending:
			continue
		case access.ProblemSlowDown:
			every += 5 * time.Second
			continue
		}
		return tok, err
	}
}
