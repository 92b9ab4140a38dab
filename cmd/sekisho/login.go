package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/sekisho/sekisho/access/dpop"
	"github.com/sekisho/sekisho/client"
	"github.com/sekisho/sekisho/client/pkcs11key"
	"github.com/sekisho/sekisho/client/tpmkey"
)

func newLoginCmd() *cobra.Command {
	var server, bootFile, principal, profile, keyType, deviceName, format, keyStore, tpm string
	var p11 pkcs11Flags
	var attest bool
	var force bool
	var sso oidcLoginFlags
	cmd := &cobra.Command{
		Use:   "login",
		Short: "Enrol this machine's device key and store a profile",
		Long: `Generate a device key on this machine, enrol it, and store a profile (server,
principal, device key with mode 0600, cached credential) in --profile DIR
(default: sekisho under the user's config directory).

With --bootstrap-token-file, spend the bootstrap token that the first serve
wrote: this enrols the first admin (roles admin and auditor) and its device,
approved, once. With --principal, enrol a device for a principal an admin
created; an admin of its org then approves it (sekisho device approve -- ID).

A profile directory that already holds a device key is never overwritten
silently: login refuses unless --force, and with --force says which device
it abandons (it stays enrolled until an admin revokes it).

--key-store says where the device key lives. file (the default, for
development) writes it as a PKCS #8 PEM file that anything able to read
the profile can copy. tpm creates it inside the machine's TPM 2.0 (ECDSA
P-256, fixedTPM: it cannot leave that TPM) and keeps only the key's blob
(useless without that TPM) in the profile; every proof is signed by the
TPM. --tpm names the TPM as a TCTI string (default $SEKISHO_TPM, else
/dev/tpmrm0; swtpm:host=127.0.0.1,port=2321 for a software TPM); the
profile records it, so api and every verb sign with the same TPM. The
device record says key_storage: tpm (claimed; attested: false until an
attestation is verified).

pkcs11 creates it inside a PKCS#11 token (smart card, YubiKey PIV, HSM;
SoftHSM2 for tests): ECDSA P-256, sensitive and not extractable. Name the
token with --pkcs11-module LIB --pkcs11-token LABEL and its user PIN with
--pkcs11-pin-file FILE (mode 0600) or $SEKISHO_PKCS11_PIN; the profile keeps
the module, the label, the key's CKA_ID and public key and the PIN file's
path (never the PIN), and every proof is signed by the token.

With --oidc, a person signs in through the company's identity provider
(the server's serve --oidc-issuer): login prints the provider's sign-in URL
to open in a browser and waits for its redirect on a loopback port
(authorization code flow with PKCE); --device-code instead prints a URL
and a code to enter on any other machine (for headless machines). The
server maps the person's subject and groups to a principal and roles,
enrols this machine's device key for them, approved (or reuses the key
the profile already holds), and every token refresh asks the identity
provider again: a person disabled there is refused at the next refresh.
With --key-store tpm the sign-in attests the key as below.

With --key-store tpm, login also attests the key when the
TPM holds an endorsement key certificate: an attestation key of the same
TPM certifies the device key, the server proves the attestation key lives
in that TPM (credential activation) and checks the EK certificate against
its trusted roots (serve --tpm-ek-roots); the device record then says
attested: true. --attest makes a failed attestation fail the login.`,
		Example: `  sekisho login --server http://127.0.0.1:8700 --bootstrap-token-file ./sekisho-data/bootstrap-admin-token
  sekisho login --server http://127.0.0.1:8700 --principal bob --profile ~/.config/sekisho-bob
  sekisho login --server http://127.0.0.1:8700 --principal bob --key-store tpm
  sekisho login --server https://vault.example.jp --oidc
  sekisho login --server https://vault.example.jp --oidc --device-code --key-store tpm
  sekisho login --server http://127.0.0.1:8700 --principal bob --key-store tpm --tpm swtpm:host=127.0.0.1,port=2321
  sekisho login --server http://127.0.0.1:8700 --principal bob --key-store pkcs11 \
    --pkcs11-module /usr/lib/softhsm/libsofthsm2.so --pkcs11-token bob --pkcs11-pin-file ~/.config/bob.pin`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			if server == "" {
				return usageErrorf("--server URL is required")
			}
			if sso.oidc || sso.deviceCode {
				if bootFile != "" || principal != "" {
					return usageErrorf("--oidc signs in as the person the identity provider names: no --bootstrap-token-file or --principal")
				}
				if attest && keyStore != client.KeyStorageTPM {
					return usageErrorf("--attest is for --key-store tpm")
				}
				return loginOIDC(cmd, sso, oidcLoginArgs{server: server, profile: profile, keyStore: keyStore, keyType: keyType, tpm: tpm,
					p11: &p11, deviceName: deviceName, force: force, format: format, attest: attest})
			}
			if bootFile == "" && principal == "" {
				return usageErrorf("give --bootstrap-token-file FILE (first admin) or --principal ID")
			}
			dir, err := profileDir(profile)
			if err != nil {
				return err
			}
			old, err := existingProfile(dir)
			if err != nil {
				return err
			}
			if old != nil && !force {
				return usageErrorf("profile %s already holds %s; give --force to replace it (that device stays enrolled: revoke it with  sekisho device revoke -- %s)",
					dir, old.describe(), old.Device)
			}
			if old != nil {
				fmt.Fprintf(cmd.ErrOrStderr(), "sekisho: replacing profile %s: %s is abandoned here but stays enrolled; an admin of %s revokes it with\n  sekisho device revoke -- %s\n",
					dir, old.describe(), orDefault(old.Org, "its org"), old.Device)
			}
			if tpm != "" && keyStore != client.KeyStorageTPM {
				return usageErrorf("--tpm is for --key-store tpm")
			}
			if attest && keyStore != client.KeyStorageTPM {
				return usageErrorf("--attest is for --key-store tpm")
			}
			if p11.given(cmd) && keyStore != client.KeyStoragePKCS11 {
				return usageErrorf("--pkcs11-module, --pkcs11-token and --pkcs11-pin-file are for --key-store pkcs11")
			}
			p := &client.Profile{Server: strings.TrimRight(server, "/")}
			key, blob, ref, err := newDeviceKey(cmd, keyStore, keyType, tpm, &p11, p)
			if err != nil {
				return err
			}
			p.Device = key.Thumbprint()
			if deviceName == "" {
				deviceName, _ = os.Hostname()
			}
			c := client.New(server, key)
			c.KeyStorage = keyStore
			out := cmd.OutOrStdout()
			if bootFile != "" {
				b, err := os.ReadFile(bootFile)
				if err != nil {
					return fmt.Errorf("read bootstrap token: %w", err)
				}
				if principal == "" {
					principal = "admin"
				}
				if blob != nil {
					if err := attestLogin(cmd, c, blob, p.Device, attest); err != nil {
						return err
					}
				}
				res, err := c.Bootstrap(ctx, strings.TrimSpace(string(b)), principal, deviceName)
				if err != nil {
					return err
				}
				p.Principal, p.Org = res.Principal.ID, res.Principal.Org
				if _, err := c.Refresh(ctx); err != nil {
					return err
				}
				if err := saveProfile(dir, p, key, blob, ref, c); err != nil {
					return err
				}
				if format == "json" {
					return writeJSON(out, loginResult{Server: p.Server, Principal: p.Principal, Org: p.Org, Roles: []string{"admin", "auditor"},
						Device: p.Device, Status: res.Device.Status, Profile: dir, Abandoned: old.device(), KeyStorage: keyStore, TPM: p.TPM,
						Attested: res.Device.Attested})
				}
				fmt.Fprintf(out, "Logged in as %s (org %s, roles admin and auditor); the bootstrap token is now spent.\nDevice %s, approved.\n%sProfile: %s\n",
					p.Principal, p.Org, p.Device, keyLine(p), dir)
				return nil
			}
			if blob != nil {
				if err := attestLogin(cmd, c, blob, p.Device, attest); err != nil {
					return err
				}
			}
			d, err := c.Enrol(ctx, principal, deviceName)
			if err != nil {
				return err
			}
			p.Principal, p.Org = d.Principal, d.Org
			if err := saveProfile(dir, p, key, blob, ref, c); err != nil {
				return err
			}
			if format == "json" {
				return writeJSON(out, loginResult{Server: p.Server, Principal: p.Principal, Org: p.Org, Device: d.ID, Status: d.Status,
					Profile: dir, Approve: "sekisho device approve -- " + d.ID, Abandoned: old.device(), KeyStorage: keyStore, TPM: p.TPM, Attested: d.Attested})
			}
			fmt.Fprintf(out, "Device %s enrolled for %s, pending approval.\n%sAsk an admin of its org to run:\n  sekisho device approve -- %s\nProfile: %s\n",
				d.ID, d.Principal, keyLine(p), d.ID, dir)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&server, "server", os.Getenv("SEKISHO_SERVER"), "server URL (default $SEKISHO_SERVER)")
	f.StringVar(&bootFile, "bootstrap-token-file", "", "bootstrap admin token file (DATA/bootstrap-admin-token): enrol the first admin")
	f.StringVar(&principal, "principal", "", "principal to enrol a device for (with the bootstrap token: the first admin's id, default admin)")
	f.StringVar(&profile, "profile", "", "profile directory (default: $SEKISHO_PROFILE or sekisho under the user config directory)")
	f.StringVar(&keyType, "key-type", "ed25519", "device key type: ed25519 or p256")
	f.StringVar(&deviceName, "device-name", "", "device name shown to admins (default: host name)")
	f.StringVar(&keyStore, "key-store", client.KeyStorageFile, "where the device key lives: file (PEM in the profile, for development), tpm (inside the TPM, not exportable) or pkcs11 (inside a PKCS#11 token, not exportable)")
	p11.flags(f)
	f.BoolVar(&attest, "attest", false, "with --key-store tpm: require the enrolment to be attested (the TPM's EK certificate and a certification of the key, verified by the server); without it, attestation is tried and login goes on unattested when the TPM or the server cannot")
	f.StringVar(&tpm, "tpm", "", "TPM of --key-store tpm as a TCTI string: /dev/tpmrm0, device:PATH, swtpm:host=H,port=P (default $SEKISHO_TPM, else /dev/tpmrm0)")
	sso.flags(f)
	f.BoolVar(&force, "force", false, "replace a profile that already holds a device key (the old device stays enrolled until revoked)")
	addFormatFlag(f, &format, "table", "table", "json")
	return cmd
}

// newDeviceKey makes the device key where --key-store says (a file key,
// in the TPM, or in a PKCS#11 token) and records where in p; blob and ref
// are the TPM key's and the token key's, written with the profile.
func newDeviceKey(cmd *cobra.Command, keyStore, keyType, tpm string, p11 *pkcs11Flags, p *client.Profile) (key *dpop.Key, blob *tpmkey.Blob, ref *pkcs11key.Ref, err error) {
	ctx := cmd.Context()
	switch keyStore {
	case client.KeyStorageFile:
		if key, err = dpop.GenerateKey(keyType); err != nil {
			return nil, nil, nil, err
		}
	case client.KeyStorageTPM:
		if cmd.Flags().Changed("key-type") && keyType != "p256" {
			return nil, nil, nil, usageErrorf("--key-store tpm makes a P-256 key (--key-type p256), not %s", keyType)
		}
		if tpm == "" {
			tpm = tpmkey.TCTIFromEnv()
		}
		if blob, err = tpmkey.Create(ctx, tpm); err != nil {
			return nil, nil, nil, fmt.Errorf("create the device key in the TPM: %w", err)
		}
		s, err := blob.Signer()
		if err != nil {
			return nil, nil, nil, err
		}
		if key, err = dpop.NewKey(s); err != nil {
			return nil, nil, nil, err
		}
		p.KeyStorage, p.TPM = client.KeyStorageTPM, tpm
	case client.KeyStoragePKCS11:
		if cmd.Flags().Changed("key-type") && keyType != "p256" {
			return nil, nil, nil, usageErrorf("--key-store pkcs11 makes a P-256 key (--key-type p256), not %s", keyType)
		}
		if ref, key, err = p11.create(); err != nil {
			return nil, nil, nil, err
		}
		p.KeyStorage = client.KeyStoragePKCS11
	default:
		return nil, nil, nil, usageErrorf("--key-store %q: want file, tpm or pkcs11", keyStore)
	}
	return key, blob, ref, nil
}

// loginResult is what login prints with --format json.
type loginResult struct {
	Server    string   `json:"server"`
	Principal string   `json:"principal"`
	Org       string   `json:"org"`
	Roles     []string `json:"roles,omitempty"`
	Device    string   `json:"device"`
	Status    string   `json:"status"` // approved, or pending until an admin approves it
	Profile   string   `json:"profile"`
	// Approve is the command an admin runs to approve a pending device.
	Approve string `json:"approve,omitempty"`
	// Abandoned is the device of the profile that --force replaced.
	Abandoned string `json:"abandoned_device,omitempty"`
	// KeyStorage is where the device key lives (file, tpm); TPM the TPM.
	KeyStorage string `json:"key_storage"`
	TPM        string `json:"tpm,omitempty"`
	// Attested says the server verified the TPM's attestation of the key.
	Attested bool `json:"attested"`
}

// keyLine says where a TPM or PKCS#11 profile's key lives ("" for a file key).
func keyLine(p *client.Profile) string {
	if p.KeyStorage == client.KeyStoragePKCS11 {
		return "The device key lives in a PKCS#11 token and cannot leave it; every proof is signed there.\n"
	}
	if p.KeyStorage != client.KeyStorageTPM {
		return ""
	}
	return fmt.Sprintf("The device key lives in the TPM %s and cannot leave it; every proof is signed there.\n", p.TPM)
}

// oldProfile is what a profile directory held before login.
type oldProfile struct{ client.Profile }

func (o *oldProfile) device() string {
	if o == nil {
		return ""
	}
	return o.Device
}

func (o *oldProfile) describe() string {
	s := "device " + orDefault(o.Device, "(unknown id)")
	if o.Principal != "" {
		s += " of " + o.Principal
		if o.Org != "" {
			s += " (org " + o.Org + ")"
		}
	}
	if o.Server != "" {
		s += " at " + o.Server
	}
	return s
}

// existingProfile returns what dir holds when it holds a device key (a
// file or a TPM blob), else nil.
func existingProfile(dir string) (*oldProfile, error) {
	if has, err := client.HasKey(dir); err != nil || !has {
		return nil, err
	}
	o := &oldProfile{}
	if b, err := os.ReadFile(filepath.Join(dir, client.ProfileFile)); err == nil {
		json.Unmarshal(b, &o.Profile) // a broken profile.json: the key alone is still a device
	}
	if o.Device == "" {
		if b, err := os.ReadFile(filepath.Join(dir, client.KeyFile)); err == nil {
			if k, err := dpop.ParsePEM(b); err == nil {
				o.Device = k.Thumbprint()
			}
		}
	}
	return o, nil
}

// profileDir resolves --profile, $SEKISHO_PROFILE, or the default.
func profileDir(flag string) (string, error) {
	if flag != "" {
		return flag, nil
	}
	if env := os.Getenv("SEKISHO_PROFILE"); env != "" {
		return env, nil
	}
	return client.DefaultProfileDir()
}

func saveProfile(dir string, p *client.Profile, key *dpop.Key, blob *tpmkey.Blob, ref *pkcs11key.Ref, c *client.Client) error {
	if ref != nil {
		if err := client.SavePKCS11Key(dir, ref); err != nil {
			return err
		}
	}
	if blob != nil {
		if err := client.SaveTPMKey(dir, blob); err != nil {
			return err
		}
	}
	if err := client.SaveProfile(dir, p, key); err != nil {
		return err
	}
	return client.SaveToken(dir, c)
}
