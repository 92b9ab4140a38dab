package main

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/spf13/cobra"

	"github.com/sekisho/sekisho/client"
)

func newWhoamiCmd() *cobra.Command {
	var profile, format string
	cmd := &cobra.Command{
		Use:   "whoami",
		Short: "Show who the profile's credential is: principal, org, roles, device and server",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			dir, p, c, err := loadProfile(profile)
			if err != nil {
				return err
			}
			var who struct {
				Principal string   `json:"principal"`
				Org       string   `json:"org"`
				Device    string   `json:"device"`
				Roles     []string `json:"roles"`
				Server    string   `json:"server"`
				Profile   string   `json:"profile"`
			}
			err = c.JSON(cmd.Context(), http.MethodGet, "/v1/whoami", "", nil, &who)
			client.SaveToken(dir, c)
			if err != nil {
				return err
			}
			who.Server, who.Profile = p.Server, dir
			if format == "json" {
				return writeJSON(cmd.OutOrStdout(), who)
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "principal  %s\norg        %s\nroles      %s\ndevice     %s\nserver     %s\nprofile    %s\n",
				who.Principal, who.Org, strings.Join(who.Roles, ","), who.Device, who.Server, who.Profile)
			return err
		},
	}
	cmd.Flags().StringVar(&profile, "profile", "", "profile directory (default: $SEKISHO_PROFILE or sekisho under the user config directory)")
	addFormatFlag(cmd.Flags(), &format, "table", "table", "json")
	return cmd
}
