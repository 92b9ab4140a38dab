package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/sekisho/sekisho/gen"
)

func newGenerateCmd() *cobra.Command {
	var seed uint64
	cmd := &cobra.Command{
		Use:   "generate COLLECTION COUNT",
		Short: "Write generated records (users, partners, employees) as NDJSON, for imports and benchmarks",
		Example: `  sekisho generate users 100000 > users.ndjson
  sekisho import --data ./sekisho-data users users.ndjson`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			n, err := strconv.Atoi(args[1])
			if err != nil || n < 0 {
				return fmt.Errorf("COUNT %q must be a non-negative integer", args[1])
			}
			g := gen.New(seed)
			w := bufio.NewWriterSize(cmd.OutOrStdout(), 1<<16)
			enc := json.NewEncoder(w)
			for i := 0; i < n; i++ {
				rec, err := g.Record(args[0])
				if err != nil {
					return err
				}
				if err := enc.Encode(rec); err != nil {
					return err
				}
			}
			return w.Flush()
		},
	}
	cmd.Flags().Uint64Var(&seed, "seed", 1, "random seed (the same seed gives the same records)")
	return cmd
}
