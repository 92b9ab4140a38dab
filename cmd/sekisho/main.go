// Command sekisho is the zero-trust vault for personal data: the server, the
// import tool, the audit verifier and the admin client, in one binary.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/sekisho/sekisho"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// exitError carries an exit status through cobra.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }

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
	code := 1
	var ee *exitError
	if errors.As(err, &ee) {
		code = ee.code
		err = ee.err
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "sekisho:", describe(err))
	}
	pprof.StopCPUProfile()
	os.Exit(code)
}

// describe returns what a person should read of err: the domain message when
// it is one of ours.
func describe(err error) string {
	var e *sekisho.Error
	if errors.As(err, &e) {
		if e.Field != "" {
			return e.Message + " (" + e.Field + ")"
		}
		return e.Message
	}
	return err.Error()
}

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "sekisho",
		Short:         "sekisho is a zero-trust vault for personal data",
		Long:          "sekisho stands between every person or service and the personal data: organisations isolated,\nfields sealed under per-record keys, every decision in a tamper-evident audit log.",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(newServeCmd(), newImportCmd(), newVersionCmd(), newMigrateCmd(), newGenerateCmd(), newAuditCmd(), newDemoCmd())
	root.AddCommand(newLoginCmd(), newAPICmd(), newOrgCmd(), newPrincipalCmd(), newDeviceCmd(), newGrantCmd(), newPolicyCmd())
	root.AddCommand(newGuardCmd(), newQuarantineCmd(), newHoneytokenCmd())
	root.AddCommand(newIncidentCmd(), newReportCmd(), newKeysCmd())
	return root
}

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := fmt.Fprintln(cmd.OutOrStdout(), "sekisho", version)
			return err
		},
	}
}
