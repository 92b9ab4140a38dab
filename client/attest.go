package client

import (
	"context"
	"fmt"

	"github.com/sekisho/sekisho/client/tpmkey"
)

// AttestTPM makes the TPM key attestation of blob's key for this client's
// device (issue 16): the TPM's evidence (EK certificate, AK, the AK's
// certification of the key over the device's qualifying data), the
// server's credential-activation challenge for the AK, opened by the TPM.
// The evidence is then sent by Enrol (c.Attestation). It returns
// tpmkey.ErrNoEKCertificate (wrapped) when the TPM has no EK certificate.
func (c *Client) AttestTPM(ctx context.Context, blob *tpmkey.Blob, qualifying []byte) (*tpmkey.Evidence, error) {
	ev, err := blob.Attest(ctx, qualifying)
	if err != nil {
		return nil, err
	}
	var ch struct {
		Challenge       string `json:"challenge"`
		CredentialBlob  []byte `json:"credential_blob"`
		EncryptedSecret []byte `json:"encrypted_secret"`
	}
	if err := c.unauthenticated(ctx, "POST", "/v1/devices/attestation-challenge",
		map[string]any{"ek_cert": ev.EKCert, "ek_public": ev.EKPublic, "ak_public": ev.AKPublic}, "", &ch); err != nil {
		return nil, fmt.Errorf("attestation challenge: %w", err)
	}
	secret, err := blob.Activate(ctx, ch.CredentialBlob, ch.EncryptedSecret)
	if err != nil {
		return nil, err
	}
	ev.ActivationSecret, ev.Challenge = secret, ch.Challenge
	c.Attestation = ev
	return ev, nil
}
