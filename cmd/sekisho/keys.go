package main

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/sekisho/sekisho"
	"github.com/sekisho/sekisho/client"
	"github.com/sekisho/sekisho/vault"
)

func newKeysCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "keys", Short: "Manage the key-encryption keys: rotate, destroy"}
	cmd.AddCommand(newKeysRotateCmd(), newKeysDestroyCmd())
	return cmd
}

func newKeysRotateCmd() *cobra.Command {
	var data, store, masterKeyFile, org, region, profile, format string
	var kf keyFlags
	rotate := &cobra.Command{
		Use:   "rotate --org O --region R",
		Short: "Make a new KEK version for (org, region) and re-wrap that org's data keys in that region",
		Long: `Makes a new version of the key-encryption key of (org, region) and re-wraps the data key
of every live record of the org in the region under it. Field ciphertexts are not touched
(a record's data key does not change). When nothing uses the older versions any more they
are retired (destroyed). The rotation is audited: keys.rotate before it starts,
keys.rotate.progress, keys.rotate.finished.

Through a running server (the default; the profile of an admin of the root org): the
server re-wraps in the background while it serves, persists its progress (a restart
resumes it), and this command follows it with a progress bar (Ctrl-C stops following,
not the rotation).

Offline with --data: writes into a stopped server's data directory directly.`,
		Example: `  sekisho keys rotate --org operator --region jp
  sekisho keys rotate --data ./sekisho-data --org operator --region jp`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if org == "" || region == "" {
				return &exitError{code: exitUsage, err: errors.New("--org and --region are required")}
			}
			if data == "" {
				return rotateOnline(cmd, profile, org, region, format)
			}
			in, err := openInstance(cmd.Context(), instanceOptions{DataDir: data, Store: store, MasterKeyFile: masterKeyFile, Stderr: cmd.ErrOrStderr(),
				Keys: kf.keysConfig, RegionKeys: kf.regions})
			if err != nil {
				return err
			}
			defer in.Close()
			host, _ := os.Hostname()
			c := sekisho.Caller{Principal: "cli-keys", Org: org, Device: "local:" + host, Source: "local", Purpose: "security",
				RequestID: "keys-rotate-" + time.Now().UTC().Format("20060102T150405Z")}
			start := time.Now()
			last := time.Now()
			version, done, err := in.vault.RotateKEK(cmd.Context(), c, org, region, func(n int) {
				if time.Since(last) >= 2*time.Second {
					last = time.Now()
					fmt.Fprintf(cmd.ErrOrStderr(), "progress: %d data keys re-wrapped\n", n)
				}
			})
			if err != nil {
				return err
			}
			if format == "json" {
				return writeJSON(cmd.OutOrStdout(), map[string]any{"org": org, "region": region, "version": version,
					"rewrapped": done, "seconds": time.Since(start).Seconds()})
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "KEK of %s/%s is now version %d; %d data keys re-wrapped in %s\n",
				org, region, version, done, time.Since(start).Round(time.Millisecond))
			return err
		},
	}
	f := rotate.Flags()
	f.StringVar(&profile, "profile", "", "profile directory of an admin of the root org (default: $SEKISHO_PROFILE or sekisho under the user config directory)")
	f.StringVar(&data, "data", "", "offline: the data directory of a stopped server")
	f.StringVar(&store, "store", "", "offline: PostgreSQL URL, with --data")
	f.StringVar(&masterKeyFile, "master-key-file", "", "offline: file holding the master key, with --data")
	f.StringVar(&org, "org", "", "org whose key rotates")
	f.StringVar(&region, "region", "", "region whose key rotates")
	addFormatFlag(f, &format, "table", "table", "json")
	kf.flags(rotate)
	return rotate
}

// rotateOnline starts a rotation through the server and follows it.
func rotateOnline(cmd *cobra.Command, profile, org, region, format string) error {
	dir, _, c, err := loadProfile(profile)
	if err != nil {
		return err
	}
	defer client.SaveToken(dir, c)
	ctx := cmd.Context()
	var rot vault.Rotation
	if err := c.JSON(ctx, http.MethodPost, "/v1/keys/rotations", "", map[string]string{"org": org, "region": region}, &rot); err != nil {
		return err
	}
	fmt.Fprintf(cmd.ErrOrStderr(), "rotation %s: KEK of %s/%s, new version %d\n", rot.ID, org, region, rot.Version)
	start := time.Now()
	var shown string
	for rot.State == vault.RotationRunning {
		// Redrawn when it moves (on a pipe, one line per change).
		if now := fmt.Sprint(rot.Pass, rot.Checked, rot.Total, rot.Rewrapped); now != shown {
			shown = now
			progressBar(cmd.ErrOrStderr(), &rot)
		}
		select {
		case <-ctx.Done():
			fmt.Fprintf(cmd.ErrOrStderr(), "\nstopped following; the rotation goes on: GET /v1/keys/rotations/%s\n", rot.ID)
			return ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
		if err := c.JSON(ctx, http.MethodGet, "/v1/keys/rotations/"+rot.ID, "", nil, &rot); err != nil {
			return err
		}
	}
	progressBar(cmd.ErrOrStderr(), &rot)
	fmt.Fprintln(cmd.ErrOrStderr())
	if rot.State != vault.RotationFinished {
		return fmt.Errorf("rotation %s %s: %s", rot.ID, rot.State, rot.Error)
	}
	if format == "json" {
		return writeJSON(cmd.OutOrStdout(), rot)
	}
	_, err = fmt.Fprintf(cmd.OutOrStdout(), "KEK of %s/%s is now version %d; %d data keys re-wrapped in %s; versions %v retired\n",
		org, region, rot.Version, rot.Rewrapped, time.Since(start).Round(time.Millisecond), rot.Retired)
	return err
}

// progressBar draws the state of a rotation on one line.
func progressBar(w io.Writer, r *vault.Rotation) {
	const width = 30
	frac := 1.0
	if r.State == vault.RotationRunning {
		frac = 0
		if r.Total > 0 {
			frac = min(float64(r.Checked)/float64(r.Total), 1)
		}
	}
	n := int(frac * width)
	fmt.Fprintf(w, "\r[%s%s] %3.0f%%  pass %d  %d/%d checked  %d re-wrapped  %s",
		strings.Repeat("#", n), strings.Repeat(".", width-n), frac*100, r.Pass, r.Checked, r.Total, r.Rewrapped, r.State)
}

func newKeysDestroyCmd() *cobra.Command {
	var profile, org, region, approve, format string
	cmd := &cobra.Command{
		Use:   "destroy --org O --region R | --approve ID",
		Short: "Crypto-shred an org's region: destroy its KEK (two admins)",
		Long: `Destroys every version of the key-encryption key of (org, region): every record of that
org in that region becomes unreadable at once and for good (it answers erased, 410),
other regions are unaffected. This is how an operator ends a relationship with an
affiliate or subcontractor whose data it held.

It takes two admins of the root org: one requests it (--org, --region) and gets an id;
a second admin, who held the admin role for at least a day before the request, approves
it (--approve ID), and only then is the key destroyed. Both steps are audited, and the
approval reports how many records were erased.`,
		Example: `  sekisho keys destroy --org subcontractor --region jp
  sekisho keys destroy --approve kd-0123456789abcdef --profile ./second-admin`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if (approve == "") == (org == "" && region == "") || (approve == "" && (org == "" || region == "")) {
				return &exitError{code: exitUsage, err: errors.New("give --org and --region to request a destruction, or --approve ID to approve one")}
			}
			dir, _, c, err := loadProfile(profile)
			if err != nil {
				return err
			}
			defer client.SaveToken(dir, c)
			var d vault.Destruction
			if approve == "" {
				if err := c.JSON(cmd.Context(), http.MethodPost, "/v1/keys/destructions", "", map[string]string{"org": org, "region": region}, &d); err != nil {
					return err
				}
				if format == "json" {
					return writeJSON(cmd.OutOrStdout(), d)
				}
				_, err := fmt.Fprintf(cmd.OutOrStdout(), "destruction %s of the KEK of %s/%s requested; nothing is destroyed until a second admin runs:\n  sekisho keys destroy --approve %s\n",
					d.ID, d.Org, d.Region, d.ID)
				return err
			}
			if err := c.JSON(cmd.Context(), http.MethodPost, "/v1/keys/destructions/"+approve+"/approve", "", nil, &d); err != nil {
				return err
			}
			if format == "json" {
				return writeJSON(cmd.OutOrStdout(), d)
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "KEK of %s/%s destroyed (versions up to %d): %d records erased\n", d.Org, d.Region, d.Versions, d.Records)
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&profile, "profile", "", "profile directory of an admin of the root org")
	f.StringVar(&org, "org", "", "org whose key is destroyed")
	f.StringVar(&region, "region", "", "region whose key is destroyed")
	f.StringVar(&approve, "approve", "", "approve (and carry out) the destruction with this id")
	addFormatFlag(f, &format, "table", "table", "json")
	return cmd
}
