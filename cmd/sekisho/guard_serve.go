package main

import (
	"errors"
	"os"
	"strings"

	"github.com/sekisho/sekisho/guard"
)

// alertWebhooks builds the guard's webhooks from serve's flags; every
// webhook signs with the one secret.
func alertWebhooks(urls []string, secretFile string) ([]guard.Webhook, error) {
	if len(urls) == 0 {
		return nil, nil
	}
	secret := os.Getenv("SEKISHO_ALERT_WEBHOOK_SECRET")
	if secretFile != "" {
		b, err := os.ReadFile(secretFile)
		if err != nil {
			return nil, err
		}
		secret = strings.TrimSpace(string(b))
	}
	if len(secret) < 16 {
		return nil, errors.New("alert webhooks need a secret of at least 16 characters (--alert-webhook-secret-file or $SEKISHO_ALERT_WEBHOOK_SECRET)")
	}
	out := make([]guard.Webhook, len(urls))
	for i, u := range urls {
		out[i] = guard.Webhook{URL: u, Secret: secret}
	}
	return out, nil
}
