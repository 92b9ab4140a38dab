package main

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/sekisho/sekisho/access"
	"github.com/sekisho/sekisho/client"
)

func newPurposesCmd() *cobra.Command {
	var profile, format string
	cmd := &cobra.Command{
		Use:   "purposes",
		Short: "List the purposes a data request may state, and which roles and grants allow each",
		Long: `List the known purposes (the values of the Sekisho-Purpose header) and what
allows each: the roles whose policies permit it on their own org's records
(as the stored Cedar policies decide now, with the actions), and the active
grants of your org (every org's for root admins and auditors) that list it.
A purpose that is not listed is refused with the problem type purpose-unknown.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			dir, _, c, err := loadProfile(profile)
			if err != nil {
				return err
			}
			var res struct {
				Purposes []access.PurposeInfo `json:"purposes"`
			}
			err = c.JSON(cmd.Context(), http.MethodGet, "/v1/purposes", "", nil, &res)
			client.SaveToken(dir, c)
			if err != nil {
				return err
			}
			if format == "json" {
				return writeJSON(cmd.OutOrStdout(), res)
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "PURPOSE\tROLES (own org)\tGRANTS")
			for _, p := range res.Purposes {
				var roles []string
				for _, r := range access.Roles {
					if acts, ok := p.Roles[r]; ok {
						if !slices.Equal(acts, access.Actions) {
							r += " (" + strings.Join(acts, ",") + ")"
						}
						roles = append(roles, r)
					}
				}
				var grants []string
				for _, g := range p.Grants {
					grants = append(grants, g.ID+" ("+g.GrantorOrg+" to "+g.GranteeOrg+")")
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\n", p.Purpose, orDefault(strings.Join(roles, "; "), "-"), orDefault(strings.Join(grants, ", "), "-"))
			}
			return tw.Flush()
		},
	}
	cmd.Flags().StringVar(&profile, "profile", "", "profile directory (default: $SEKISHO_PROFILE or sekisho under the user config directory)")
	addFormatFlag(cmd.Flags(), &format, "table", "table", "json")
	return cmd
}
