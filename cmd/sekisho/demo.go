package main

import (
	"context"
	"io"
	"log/slog"

	"github.com/spf13/cobra"

	"github.com/sekisho/sekisho"
	"github.com/sekisho/sekisho/access"
	"github.com/sekisho/sekisho/demo"
	"github.com/sekisho/sekisho/importer"
)

func newDemoCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Replay known attacks against a fresh vault",
	}
	var o demo.Options
	lb := &cobra.Command{
		Use:   "line-breach",
		Short: "Replay the 2023 attack chain (subcontractor PC -> affiliate -> operator) against a fresh vault",
		Long: `Builds a fresh vault with the three organisations of the 2023 case (the operator, its
affiliate, a subcontractor), their principals and devices, the grant a shared personnel
system implies, about 520,000 generated records in the real case's proportions and
honeytokens among them. Then it replays the chain on a clock set to September 2023 and
prints what sekisho refused, what it detected and when, the quarantine, the incident scope
and the APPI preliminary report, all computed from the audit log. The same chain runs
against a "shared trust" configuration (the affiliate granted everything, no budgets, no
guard) and the two scopes are printed side by side.

With --data DIR the zero-trust vault is left in DIR and the incident id is printed, so that
'sekisho audit verify --data DIR' and 'sekisho incident scope --data DIR --incident ID'
can be run on it afterwards.`,
		Example: `  sekisho demo line-breach
  sekisho demo line-breach --data ./breach-demo --records 100000`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o.Out = cmd.OutOrStdout()
			_, err := runDemo(cmd.Context(), o)
			return err
		},
	}
	lb.Flags().StringVar(&o.Data, "data", "", "leave the zero-trust vault in this directory (default: a temporary one, removed)")
	lb.Flags().IntVar(&o.Records, "records", 520000, "records to generate (users, partners, employees in the case's proportions)")
	lb.Flags().Uint64Var(&o.Seed, "seed", 2023, "seed of the generated records")
	cmd.AddCommand(lb)
	return cmd
}

// runDemo runs the demo with serve's wiring.
func runDemo(ctx context.Context, o demo.Options) (*demo.Result, error) {
	o.Open, o.LockFile, o.ServeAddr = openDemoNode, lockFile, defaultAddr
	return demo.Run(ctx, o)
}

// openDemoNode opens a data directory and its request path as serve does
// (without the guard for the demo's shared-trust vault).
func openDemoNode(ctx context.Context, o demo.NodeOptions) (*demo.Node, error) {
	in, err := openInstance(ctx, instanceOptions{DataDir: o.Dir, RootOrg: o.Org, MasterKeyFile: o.MasterKeyFile, Stderr: io.Discard,
		Logger: slog.New(slog.DiscardHandler), Now: o.Now})
	if err != nil {
		return nil, err
	}
	token, _, err := bootstrapToken(o.Dir)
	if err != nil {
		in.Close()
		return nil, err
	}
	n, err := newNode(ctx, in, nodeConfig{Token: token, Org: o.Org, Region: o.Region, Now: o.Now, NoGuard: !o.Guard, Location: o.Location,
		// The demo's devices are file keys.
		DeviceDefault: access.DeviceAny})
	if err != nil {
		in.Close()
		return nil, err
	}
	v := in.vault
	return &demo.Node{Handler: n.srv, Vault: v, Store: in.store, Log: in.log, Logs: in.logs, BootstrapToken: token,
		Load: func(c sekisho.Caller, collection string) demo.Sink {
			return demoSink{importer.NewVaultSink(v, c, collection)}
		},
		Close: func() { n.Close(); in.Close() }}, nil
}

// demoSink is the import command's pipeline (importer.VaultSink) as the
// demo loads its generated records.
type demoSink struct{ s *importer.VaultSink }

func (d demoSink) Write(ctx context.Context, recs []*sekisho.RecordInput, line int) ([]error, error) {
	items := make([]importer.Item, len(recs))
	for i, r := range recs {
		items[i] = importer.Item{Line: line + i, Input: r}
	}
	return d.s.Write(ctx, items)
}

func (d demoSink) Flush(ctx context.Context) error { return d.s.Flush(ctx) }
