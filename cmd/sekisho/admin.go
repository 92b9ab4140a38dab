package main

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/sekisho/sekisho/client"
)

// adminCall runs one control-plane request with the profile's credential
// and prints the answer: JSON, or a table of rows for lists.
type adminCall struct {
	profile string
	format  string
}

func (a *adminCall) flags(cmd *cobra.Command) {
	cmd.PersistentFlags().StringVar(&a.profile, "profile", "", "profile directory (default: $SEKISHO_PROFILE or sekisho under the user config directory)")
	addFormatFlag(cmd.PersistentFlags(), &a.format, "table", "table", "json")
}

// do sends method path with body; listKey names the array of a list answer
// and cols its columns for the table format.
func (a *adminCall) do(cmd *cobra.Command, method, path string, body any, listKey string, cols ...string) error {
	dir, _, c, err := loadProfile(a.profile)
	if err != nil {
		return err
	}
	var out json.RawMessage
	err = c.JSON(cmd.Context(), method, path, "", body, &out)
	client.SaveToken(dir, c)
	if err != nil {
		return err
	}
	w := cmd.OutOrStdout()
	if a.format == "json" || len(cols) == 0 {
		var v any
		if err := json.Unmarshal(out, &v); err != nil {
			return fmt.Errorf("%s %s: the answer is not JSON: %w", method, path, err)
		}
		return writeJSON(w, v)
	}
	var rows []map[string]any
	if listKey != "" {
		var m map[string][]map[string]any
		if err := json.Unmarshal(out, &m); err != nil {
			return err
		}
		rows = m[listKey]
	} else {
		var m map[string]any
		if err := json.Unmarshal(out, &m); err != nil {
			return err
		}
		rows = []map[string]any{m}
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, strings.ToUpper(strings.Join(cols, "\t")))
	for _, r := range rows {
		vals := make([]string, len(cols))
		for i, c := range cols {
			switch v := r[c].(type) {
			case nil:
				vals[i] = "-"
			case []any:
				s := make([]string, len(v))
				for j, x := range v {
					s[j] = fmt.Sprint(x)
				}
				vals[i] = strings.Join(s, ",")
			default:
				vals[i] = fmt.Sprint(v)
			}
		}
		fmt.Fprintln(tw, strings.Join(vals, "\t"))
	}
	return tw.Flush()
}

var (
	orgCols       = []string{"id", "home_region", "time_zone", "status", "root"}
	principalCols = []string{"id", "org", "kind", "roles", "status"}
	deviceCols    = []string{"id", "principal", "org", "name", "status", "key_storage", "attested"}
	grantCols     = []string{"id", "grantor_org", "grantee_org", "grantee_principal", "collections", "fields", "regions", "purposes", "expires", "status"}
	policyCols    = []string{"id", "version", "updated_by", "description"}
)

func newOrgCmd() *cobra.Command {
	a := &adminCall{}
	cmd := &cobra.Command{Use: "org", Short: "Manage organisations (create, list, get, revoke-devices)"}
	a.flags(cmd)
	var region, name, zone string
	create := &cobra.Command{Use: "create ID --home-region R", Short: "Create an org (root admins)", Args: cobra.ExactArgs(1),
		Example: "  sekisho org create affiliate --home-region jp\n  sekisho org create thai-partner --home-region th --time-zone Asia/Bangkok",
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.do(cmd, "POST", "/v1/orgs", map[string]any{"id": args[0], "home_region": region, "name": name, "time_zone": zone}, "", orgCols...)
		}}
	create.Flags().StringVar(&region, "home-region", "", "home region of the org's data subjects (jp, th, tw, id, …)")
	create.Flags().StringVar(&zone, "time-zone", "", "IANA time zone of the org's working hours, for the guard's off-hours rule (default: the server's local zone)")
	create.Flags().StringVar(&name, "name", "", "display name")
	cmd.AddCommand(create,
		&cobra.Command{Use: "list", Short: "List orgs", Args: cobra.NoArgs, RunE: func(cmd *cobra.Command, _ []string) error {
			return a.do(cmd, "GET", "/v1/orgs", nil, "orgs", orgCols...)
		}},
		&cobra.Command{Use: "get ID", Short: "Show an org", Args: cobra.ExactArgs(1), RunE: func(cmd *cobra.Command, args []string) error {
			return a.do(cmd, "GET", "/v1/orgs/"+args[0], nil, "")
		}},
		&cobra.Command{Use: "revoke-devices ID", Short: "Revoke every device of an org (takes effect within one second)", Args: cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				return a.do(cmd, "POST", "/v1/orgs/"+args[0]+"/revoke-devices", nil, "")
			}},
		newOrgDeviceRequirementsCmd(a))
	return cmd
}

func newPrincipalCmd() *cobra.Command {
	a := &adminCall{}
	cmd := &cobra.Command{Use: "principal", Short: "Manage principals (create, list, get, revoke)"}
	a.flags(cmd)
	var org, kind, name string
	var roles []string
	create := &cobra.Command{Use: "create ID --role R", Short: "Create a principal (admin of its org, or root admin)", Args: cobra.ExactArgs(1),
		Example: "  sekisho principal create bob --org affiliate --role member\n  sekisho principal create importer --kind service --role service",
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.do(cmd, "POST", "/v1/principals", map[string]any{"id": args[0], "org": org, "roles": roles, "kind": kind, "name": name}, "", principalCols...)
		}}
	create.Flags().StringVar(&org, "org", "", "org (default: yours)")
	create.Flags().StringSliceVar(&roles, "role", nil, "role: admin, member, support, service, auditor (repeatable)")
	create.Flags().StringVar(&kind, "kind", "person", "person or service")
	create.Flags().StringVar(&name, "name", "", "display name")
	var listOrg string
	list := &cobra.Command{Use: "list", Short: "List principals of your org (or --org, for root admins and auditors)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.do(cmd, "GET", "/v1/principals?org="+listOrg, nil, "principals", principalCols...)
		}}
	list.Flags().StringVar(&listOrg, "org", "", "org")
	cmd.AddCommand(create, list,
		&cobra.Command{Use: "get ID", Short: "Show a principal", Args: cobra.ExactArgs(1), RunE: func(cmd *cobra.Command, args []string) error {
			return a.do(cmd, "GET", "/v1/principals/"+args[0], nil, "")
		}},
		&cobra.Command{Use: "revoke ID", Short: "Revoke a principal (takes effect within one second)", Args: cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				return a.do(cmd, "POST", "/v1/principals/"+args[0]+"/revoke", nil, "", principalCols...)
			}})
	return cmd
}

func newDeviceCmd() *cobra.Command {
	a := &adminCall{}
	cmd := &cobra.Command{Use: "device", Short: "Manage devices (enrol, approve, revoke, list)"}
	a.flags(cmd)
	var listOrg, listPrincipal string
	list := &cobra.Command{Use: "list", Short: "List devices", Args: cobra.NoArgs, RunE: func(cmd *cobra.Command, _ []string) error {
		return a.do(cmd, "GET", "/v1/devices?org="+listOrg+"&principal="+listPrincipal, nil, "devices", deviceCols...)
	}}
	list.Flags().StringVar(&listOrg, "org", "", "org")
	list.Flags().StringVar(&listPrincipal, "principal", "", "principal")
	enrol := &cobra.Command{Use: "enrol", Short: "Enrol a new device key for a principal: same as sekisho login --principal P",
		RunE: func(cmd *cobra.Command, _ []string) error {
			return fmt.Errorf("a device key is generated on the device itself: run there  sekisho login --server URL --principal P")
		}}
	cmd.AddCommand(list, enrol,
		&cobra.Command{Use: "approve ID", Short: "Approve a pending device (admin of its principal's org)", Args: cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				return a.do(cmd, "POST", "/v1/devices/"+args[0]+"/approve", nil, "", deviceCols...)
			}},
		&cobra.Command{Use: "revoke ID", Short: "Revoke a device (takes effect within one second)", Args: cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				return a.do(cmd, "POST", "/v1/devices/"+args[0]+"/revoke", nil, "", deviceCols...)
			}})
	return cmd
}

func newGrantCmd() *cobra.Command {
	a := &adminCall{}
	cmd := &cobra.Command{Use: "grant", Short: "Manage grants, the only path across orgs (create, approve, revoke, list)"}
	a.flags(cmd)
	var g struct {
		grantee, principal                                  string
		collections, fields, masked, regions, purposes, act []string
		expires                                             time.Duration
		perHour, total                                      int64
		device                                              string
	}
	create := &cobra.Command{Use: "create --to ORG ...", Short: "Create a grant of your org's records",
		Long:    "Create a grant. One that reaches a region other than the grantee's home region, or an\nunmasked sensitive field, is pending until a second admin runs sekisho grant approve ID.",
		Example: `  sekisho grant create --to affiliate --collection users --field phone,email --region jp --purpose support --expires 720h`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			body := map[string]any{"grantee_org": g.grantee, "grantee_principal": g.principal, "collections": g.collections,
				"fields": g.fields, "masked_fields": g.masked, "regions": g.regions, "purposes": g.purposes, "actions": g.act,
				"expires": time.Now().Add(g.expires).UTC().Format(time.RFC3339), "budget_per_hour": g.perHour, "budget_total": g.total,
				"device_requirement": g.device}
			return a.do(cmd, "POST", "/v1/grants", body, "", append(grantCols, "two_person")...)
		}}
	f := create.Flags()
	f.StringVar(&g.grantee, "to", "", "grantee org")
	f.StringVar(&g.principal, "principal", "", "only this principal of the grantee org")
	f.StringSliceVar(&g.collections, "collection", nil, "collections")
	f.StringSliceVar(&g.fields, "field", nil, "fields (default: all)")
	f.StringSliceVar(&g.masked, "masked", nil, "fields returned masked only (* for all)")
	f.StringSliceVar(&g.regions, "region", nil, "regions")
	f.StringSliceVar(&g.purposes, "purpose", nil, "purposes")
	f.StringSliceVar(&g.act, "action", nil, "actions (default: read, lookup, batch-get)")
	f.DurationVar(&g.expires, "expires", 30*24*time.Hour, "lifetime")
	f.Int64Var(&g.perHour, "budget-per-hour", 0, "records per hour (0: none)")
	f.Int64Var(&g.total, "budget-total", 0, "records in total (0: none)")
	f.StringVar(&g.device, "device-requirement", "", "the grantee's device: any, hardware-bound or attested (default: the org's cross-org requirement)")
	var listOrg string
	list := &cobra.Command{Use: "list", Short: "List the grants your org gives or holds", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.do(cmd, "GET", "/v1/grants?org="+listOrg, nil, "grants", grantCols...)
		}}
	list.Flags().StringVar(&listOrg, "org", "", "org (root admins and auditors)")
	cmd.AddCommand(create, list,
		&cobra.Command{Use: "approve ID", Short: "Approve a pending grant (a second, distinct admin)", Args: cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				return a.do(cmd, "POST", "/v1/grants/"+args[0]+"/approve", nil, "", grantCols...)
			}},
		&cobra.Command{Use: "revoke ID", Short: "Revoke a grant", Args: cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				return a.do(cmd, "POST", "/v1/grants/"+args[0]+"/revoke", nil, "", grantCols...)
			}},
		&cobra.Command{Use: "get ID", Short: "Show a grant, with its approvals and Cedar policy", Args: cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				return a.do(cmd, "GET", "/v1/grants/"+args[0], nil, "")
			}})
	return cmd
}

func newPolicyCmd() *cobra.Command {
	a := &adminCall{}
	cmd := &cobra.Command{Use: "policy", Short: "List, show and change the Cedar policies"}
	a.flags(cmd)
	var file, desc string
	put := &cobra.Command{Use: "put ID --file F.cedar", Short: "Create or change a policy (root admins); makes a new version", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			b, err := os.ReadFile(file)
			if err != nil {
				return err
			}
			return a.do(cmd, "PUT", "/v1/policies/"+args[0], map[string]any{"cedar": string(b), "description": desc}, "", policyCols...)
		}}
	put.Flags().StringVar(&file, "file", "", "Cedar policy file (one policy)")
	put.Flags().StringVar(&desc, "description", "", "description")
	cmd.AddCommand(put,
		&cobra.Command{Use: "list", Short: "List policies", Args: cobra.NoArgs, RunE: func(cmd *cobra.Command, _ []string) error {
			return a.do(cmd, "GET", "/v1/policies", nil, "policies", policyCols...)
		}},
		&cobra.Command{Use: "get ID", Short: "Show a policy", Args: cobra.ExactArgs(1), RunE: func(cmd *cobra.Command, args []string) error {
			return a.do(cmd, "GET", "/v1/policies/"+args[0], nil, "")
		}})
	return cmd
}
