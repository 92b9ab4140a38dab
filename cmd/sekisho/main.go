// Command sekisho is the zero-trust vault for personal data: the server, the
// import tool, the audit verifier and the admin client, in one binary.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"
	_ "time/tzdata" // org time zones resolve on machines without a zoneinfo database

	"github.com/spf13/cobra"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// SEKISHO_CPUPROFILE=FILE writes a CPU profile of the whole run (for
	// the benchmarks' profiling; see bench/README.md).
	if path := os.Getenv("SEKISHO_CPUPROFILE"); path != "" {
		if f, err := os.Create(path); err == nil {
			pprof.StartCPUProfile(f)
			defer func() { pprof.StopCPUProfile(); f.Close() }()
		}
	}
	root := newRootCmd()
	err := root.ExecuteContext(ctx)
	if err == nil {
		return
	}
	code, msg := exitStatus(err)
	if msg != "" {
		fmt.Fprintln(os.Stderr, "sekisho:", msg)
	}
	pprof.StopCPUProfile()
	os.Exit(code)
}

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "sekisho",
		Short:         "sekisho is a zero-trust vault for personal data",
		Long:          "sekisho stands between every person or service and the personal data: organisations isolated,\nfields sealed under per-record keys, every decision in a tamper-evident audit log.\n\n" + exitCodesHelp,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(newServeCmd(), newImportCmd(), newVersionCmd(), newMigrateCmd(), newGenerateCmd(), newAuditCmd(), newDemoCmd())
	root.AddCommand(newLoginCmd(), newAPICmd(), newOrgCmd(), newPrincipalCmd(), newDeviceCmd(), newGrantCmd(), newPolicyCmd())
	root.AddCommand(newGuardCmd(), newQuarantineCmd(), newHoneytokenCmd())
	root.AddCommand(newIncidentCmd(), newReportCmd(), newKeysCmd())
	root.AddCommand(newRetentionCmd(), newHoldCmd())
	root.AddCommand(newWhoamiCmd(), newPurposesCmd())
	root.AddCommand(newBackupCmd(), newRestoreCmd())
	root.AddCommand(newSubjectCmd())
	// Add commands above this line: finishTree makes every level strict.
	finishTree(root)
	return root
}

func newVersionCmd() *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if format == "json" {
				return writeJSON(cmd.OutOrStdout(), map[string]string{"version": version})
			}
			_, err := fmt.Fprintln(cmd.OutOrStdout(), "sekisho", version)
			return err
		},
	}
	addFormatFlag(cmd.Flags(), &format, "table", "table", "json")
	return cmd
}
