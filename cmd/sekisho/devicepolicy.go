package main

import (
	"crypto/x509"
	"fmt"
	"os"

	"github.com/spf13/cobra"
)

// newOrgDeviceRequirementsCmd is `sekisho org device-requirements ID`:
// which devices may read the org's records across orgs and its sensitive
// fields (issue 16).
func newOrgDeviceRequirementsCmd(a *adminCall) *cobra.Command {
	var cross, sensitive string
	cmd := &cobra.Command{Use: "device-requirements ID [--cross-org L] [--sensitive L]",
		Short: "Set the devices an org's records may be read from (any, hardware-bound, attested; empty: the server's default)",
		Long: "Set the devices an org's records may be read from: --cross-org for other orgs' principals\n" +
			"(under grants), --sensitive for reads of sensitive fields (its own principals' too). Levels:\n" +
			"any (file keys too), hardware-bound (key_storage tpm, pkcs11 or webauthn), attested (hardware-bound\n" +
			"and attested at enrolment). A level left out goes back to the server's default\n" +
			"(serve --device-requirement-default, hardware-bound unless set). Refusals are device-not-hardware-bound.",
		Example: "  sekisho org device-requirements operator --cross-org attested --sensitive hardware-bound",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.do(cmd, "PUT", "/v1/orgs/"+args[0]+"/device-requirements", map[string]any{"cross_org": cross, "sensitive": sensitive}, "")
		}}
	cmd.Flags().StringVar(&cross, "cross-org", "", "requirement for other orgs' principals: any, hardware-bound, attested")
	cmd.Flags().StringVar(&sensitive, "sensitive", "", "requirement for reads of sensitive fields: any, hardware-bound, attested")
	return cmd
}

// loadTPMRoots reads serve --tpm-ek-roots: a PEM file of the CAs that issue
// TPM endorsement key certificates (nil when none is given).
func loadTPMRoots(file string) (*x509.CertPool, error) {
	if file == "" {
		return nil, nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("--tpm-ek-roots: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("--tpm-ek-roots %s: no PEM certificate in it", file)
	}
	return pool, nil
}
