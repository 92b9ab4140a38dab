package main

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
)

var (
	ruleCols       = []string{"id", "enabled", "action", "version", "updated_by", "params"}
	quarantineCols = []string{"id", "status", "org", "rule", "since", "lifted_by", "lifts_needed", "reason"}
	honeytokenCols = []string{"id", "collection", "region", "created_at", "created_by"}
)

func newGuardCmd() *cobra.Command {
	a := &adminCall{}
	cmd := &cobra.Command{Use: "guard", Short: "Manage the exfiltration guard's rules"}
	a.flags(cmd)
	rules := &cobra.Command{Use: "rules", Short: "List or change anomaly rules (list, set)"}
	var action, enabled string
	var params []string
	set := &cobra.Command{Use: "set RULE [--action A] [--enabled true|false] [--param name=value ...]",
		Short: "Change a rule (admins of the root org); a new version, audited",
		Example: `  sekisho guard rules set new-device --action step-up
  sekisho guard rules set enumeration --param run=4 --param max_gap=8
  sekisho guard rules set off-hours --param baseline_start=7 --param baseline_end=22`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			body := map[string]any{}
			if action != "" {
				body["action"] = action
			}
			if enabled != "" {
				b, err := strconv.ParseBool(enabled)
				if err != nil {
					return fmt.Errorf("--enabled %q: want true or false", enabled)
				}
				body["enabled"] = b
			}
			if len(params) > 0 {
				p := map[string]float64{}
				for _, kv := range params {
					k, v, ok := strings.Cut(kv, "=")
					f, err := strconv.ParseFloat(v, 64)
					if !ok || err != nil {
						return fmt.Errorf("--param %q: want name=number", kv)
					}
					p[k] = f
				}
				body["params"] = p
			}
			return a.do(cmd, "PUT", "/v1/guard/rules/"+args[0], body, "", ruleCols...)
		}}
	set.Flags().StringVar(&action, "action", "", "log, alert, step-up or quarantine")
	set.Flags().StringVar(&enabled, "enabled", "", "true or false")
	set.Flags().StringArrayVar(&params, "param", nil, "threshold name=value (repeatable)")
	rules.AddCommand(&cobra.Command{Use: "list", Short: "List the rules", Args: cobra.NoArgs, RunE: func(cmd *cobra.Command, _ []string) error {
		return a.do(cmd, "GET", "/v1/guard/rules", nil, "rules", ruleCols...)
	}}, set)
	cmd.AddCommand(rules)
	return cmd
}

func newQuarantineCmd() *cobra.Command {
	a := &adminCall{}
	cmd := &cobra.Command{Use: "quarantine", Short: "List or lift quarantines of principals and devices"}
	a.flags(cmd)
	cmd.AddCommand(
		&cobra.Command{Use: "list", Short: "List quarantines (your org's; root admins and auditors: all)", Args: cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				return a.do(cmd, "GET", "/v1/quarantines", nil, "quarantines", quarantineCols...)
			}},
		liftCmd(a),
	)
	return cmd
}

// liftCmd is `sekisho quarantine lift ID --reason TEXT`.
func liftCmd(a *adminCall) *cobra.Command {
	var reason string
	lift := &cobra.Command{Use: "lift ID --reason TEXT", Short: "Lift a quarantine with a reason (an admin of the principal's own org, and of the org whose data it was earned on; audited)", Args: cobra.ExactArgs(1),
		Long: `Lift a quarantine. An admin of the quarantined principal's own org lifts it, saying why (--reason, kept
with the lift and in its audit event), and the lift is audited.
A quarantine earned on another org's data (data_orgs: a grantee's principal that touched a grantor's
decoy, or went over a budget reading its records) needs a lift by an admin of that org as well: after the
first lift it stays active and lifts_needed names the orgs still to lift it.`,
		Example: "  sekisho quarantine lift principal:bob --reason \"reviewed with bob: a test of the decoys, ticket SEC-12\"\n  sekisho quarantine lift device:Jt6… --reason \"laptop re-imaged\"",
		RunE: func(cmd *cobra.Command, args []string) error {
			if strings.TrimSpace(reason) == "" {
				return fmt.Errorf("a lift needs --reason (why it is safe to lift; recorded in the audit log)")
			}
			return a.do(cmd, "POST", "/v1/quarantines/"+args[0]+"/lift", map[string]string{"reason": reason}, "", quarantineCols...)
		}}
	lift.Flags().StringVar(&reason, "reason", "", "why it is safe to lift (required; recorded with the lift and in the audit log)")
	return lift
}

func newHoneytokenCmd() *cobra.Command {
	a := &adminCall{}
	cmd := &cobra.Command{Use: "honeytoken", Short: "Create or list decoy records (admins)"}
	a.flags(cmd)
	var region string
	var count int
	create := &cobra.Command{Use: "create COLLECTION --region R --count N", Short: "Create decoy records that quarantine whoever touches them",
		Example: "  sekisho honeytoken create users --region jp --count 5", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.do(cmd, "POST", "/v1/collections/"+args[0]+"/honeytokens", map[string]any{"region": region, "count": count}, "honeytokens", honeytokenCols...)
		}}
	create.Flags().StringVar(&region, "region", "jp", "residency region of the decoys")
	create.Flags().IntVar(&count, "count", 1, "how many (at most 100)")
	cmd.AddCommand(create, &cobra.Command{Use: "list COLLECTION", Short: "List a collection's decoys", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.do(cmd, "GET", "/v1/collections/"+args[0]+"/honeytokens", nil, "honeytokens", honeytokenCols...)
		}})
	return cmd
}
