package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/sekisho/sekisho/access/dpop"
	"github.com/sekisho/sekisho/client"
)

func newLoginCmd() *cobra.Command {
	var server, bootFile, principal, profile, keyType, deviceName, format string
	var force bool
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
it abandons (it stays enrolled until an admin revokes it).`,
		Example: `  sekisho login --server http://127.0.0.1:8700 --bootstrap-token-file ./sekisho-data/bootstrap-admin-token
  sekisho login --server http://127.0.0.1:8700 --principal bob --profile ~/.config/sekisho-bob`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			if server == "" {
				return usageErrorf("--server URL is required")
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
			key, err := dpop.GenerateKey(keyType)
			if err != nil {
				return err
			}
			if deviceName == "" {
				deviceName, _ = os.Hostname()
			}
			c := client.New(server, key)
			out := cmd.OutOrStdout()
			p := &client.Profile{Server: strings.TrimRight(server, "/"), Device: key.Thumbprint()}
			if bootFile != "" {
				b, err := os.ReadFile(bootFile)
				if err != nil {
					return fmt.Errorf("read bootstrap token: %w", err)
				}
				if principal == "" {
					principal = "admin"
				}
				res, err := c.Bootstrap(ctx, strings.TrimSpace(string(b)), principal, deviceName)
				if err != nil {
					return err
				}
				p.Principal, p.Org = res.Principal.ID, res.Principal.Org
				if _, err := c.Refresh(ctx); err != nil {
					return err
				}
				if err := saveProfile(dir, p, key, c); err != nil {
					return err
				}
				if format == "json" {
					return writeJSON(out, loginResult{Server: p.Server, Principal: p.Principal, Org: p.Org, Roles: []string{"admin", "auditor"},
						Device: p.Device, Status: res.Device.Status, Profile: dir, Abandoned: old.device()})
				}
				fmt.Fprintf(out, "Logged in as %s (org %s, roles admin and auditor); the bootstrap token is now spent.\nDevice %s, approved.\nProfile: %s\n",
					p.Principal, p.Org, p.Device, dir)
				return nil
			}
			d, err := c.Enrol(ctx, principal, deviceName)
			if err != nil {
				return err
			}
			p.Principal, p.Org = d.Principal, d.Org
			if err := saveProfile(dir, p, key, c); err != nil {
				return err
			}
			if format == "json" {
				return writeJSON(out, loginResult{Server: p.Server, Principal: p.Principal, Org: p.Org, Device: d.ID, Status: d.Status,
					Profile: dir, Approve: "sekisho device approve -- " + d.ID, Abandoned: old.device()})
			}
			fmt.Fprintf(out, "Device %s enrolled for %s, pending approval.\nAsk an admin of its org to run:\n  sekisho device approve -- %s\nProfile: %s\n",
				d.ID, d.Principal, d.ID, dir)
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
	f.BoolVar(&force, "force", false, "replace a profile that already holds a device key (the old device stays enrolled until revoked)")
	addFormatFlag(f, &format, "table", "table", "json")
	return cmd
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

// existingProfile returns what dir holds when it holds a device key, else nil.
func existingProfile(dir string) (*oldProfile, error) {
	if _, err := os.Stat(filepath.Join(dir, client.KeyFile)); errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	} else if err != nil {
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

func saveProfile(dir string, p *client.Profile, key *dpop.Key, c *client.Client) error {
	if err := client.SaveProfile(dir, p, key); err != nil {
		return err
	}
	return client.SaveToken(dir, c)
}
