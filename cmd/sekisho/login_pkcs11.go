package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/sekisho/sekisho/access"
	"github.com/sekisho/sekisho/access/dpop"
	"github.com/sekisho/sekisho/client"
	"github.com/sekisho/sekisho/client/pkcs11key"
	"github.com/sekisho/sekisho/client/tpmkey"
)

// pkcs11Flags are login's flags of --key-store pkcs11.
type pkcs11Flags struct{ module, token, pinFile string }

func (p *pkcs11Flags) flags(f *pflag.FlagSet) {
	f.StringVar(&p.module, "pkcs11-module", "", "PKCS#11 library of --key-store pkcs11 (default $SEKISHO_PKCS11_MODULE; /usr/lib/softhsm/libsofthsm2.so, a smart card's or YubiKey's module)")
	f.StringVar(&p.token, "pkcs11-token", "", "label of the token of --key-store pkcs11 (default $SEKISHO_PKCS11_TOKEN)")
	f.StringVar(&p.pinFile, "pkcs11-pin-file", "", "file holding the token's user PIN, mode 0600 (default $SEKISHO_PKCS11_PIN_FILE; or the PIN in $SEKISHO_PKCS11_PIN); the profile records the path, never the PIN")
}

func (p *pkcs11Flags) given(cmd *cobra.Command) bool {
	return cmd.Flags().Changed("pkcs11-module") || cmd.Flags().Changed("pkcs11-token") || cmd.Flags().Changed("pkcs11-pin-file")
}

// create makes the device key in the token and returns its reference and
// a DPoP key that signs there.
func (p *pkcs11Flags) create() (*pkcs11key.Ref, *dpop.Key, error) {
	module, token, pinFile := orEnv(p.module, "SEKISHO_PKCS11_MODULE"), orEnv(p.token, "SEKISHO_PKCS11_TOKEN"), orEnv(p.pinFile, "SEKISHO_PKCS11_PIN_FILE")
	if module == "" || token == "" {
		return nil, nil, usageErrorf("--key-store pkcs11 needs --pkcs11-module and --pkcs11-token (or $SEKISHO_PKCS11_MODULE, $SEKISHO_PKCS11_TOKEN)")
	}
	if pinFile == "" && os.Getenv("SEKISHO_PKCS11_PIN") == "" {
		return nil, nil, usageErrorf("--key-store pkcs11 needs the token's PIN: --pkcs11-pin-file FILE or $SEKISHO_PKCS11_PIN")
	}
	ref, err := pkcs11key.Create(module, token, pinFile)
	if err != nil {
		return nil, nil, fmt.Errorf("create the device key in the PKCS#11 token: %w", err)
	}
	s, err := ref.Signer()
	if err != nil {
		return nil, nil, err
	}
	key, err := dpop.NewKey(s)
	if err != nil {
		return nil, nil, err
	}
	return ref, key, nil
}

func orEnv(v, env string) string {
	if v != "" {
		return v
	}
	return os.Getenv(env)
}

// attestLogin attests a TPM key before enrolment (c.Attestation): required
// with --attest, else tried, and login goes on unattested (saying why)
// when the TPM has no EK certificate or the server does not take the
// attestation challenge.
func attestLogin(cmd *cobra.Command, c *client.Client, blob *tpmkey.Blob, device string, require bool) error {
	_, err := c.AttestTPM(cmd.Context(), blob, access.AttestationQualifyingData(device))
	if err == nil {
		return nil
	}
	if require {
		return fmt.Errorf("--attest: %w", err)
	}
	c.Attestation = nil
	fmt.Fprintf(cmd.ErrOrStderr(), "sekisho: the device is enrolled unattested: %v\n", err)
	return nil
}
