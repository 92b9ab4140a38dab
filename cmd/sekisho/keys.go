package main

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/sekisho/sekisho/vault"
)

func newKeysCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "keys", Short: "Manage the key-encryption keys"}
	var data, store, masterKeyFile, org, region, format string
	rotate := &cobra.Command{
		Use:   "rotate",
		Short: "Make a new KEK version for (org, region) and re-wrap that org's data keys in that region",
		Long: `Makes a new version of the key-encryption key of (org, region) in the keyring and re-wraps
the data key of every live record of the org in the region under it, with progress. Field
ciphertexts are not touched (a record's data key does not change). Older KEK versions stay
in the keyring, so records not yet re-wrapped still open. The rotation is audited.

It writes into a data directory directly, and is refused while a server holds it.`,
		Example: "  sekisho keys rotate --data ./sekisho-data --org operator --region jp",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if data == "" || org == "" || region == "" {
				return errors.New("--data, --org and --region are required")
			}
			in, err := openInstance(cmd.Context(), instanceOptions{DataDir: data, Store: store, MasterKeyFile: masterKeyFile, Stderr: cmd.ErrOrStderr()})
			if err != nil {
				return err
			}
			defer in.Close()
			host, _ := os.Hostname()
			c := vault.Caller{Principal: "cli-keys", Org: org, Device: "local:" + host, Source: "local", Purpose: "security",
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
	f.StringVar(&data, "data", "", "data directory")
	f.StringVar(&store, "store", "", "PostgreSQL URL (the keyring stays in the data directory)")
	f.StringVar(&masterKeyFile, "master-key-file", "", "file holding the master key")
	f.StringVar(&org, "org", "", "org whose key rotates")
	f.StringVar(&region, "region", "", "region whose key rotates")
	addFormatFlag(f, &format, "table", "table", "json")
	cmd.AddCommand(rotate)
	return cmd
}
