package sekisho

import "time"

// TokenResponse is the answer of POST /v1/token: an access token bound to
// the key that asked for it (a DPoP device key, or a TLS client
// certificate), with the identity it stands for. The server (package
// access) writes it and the clients read it.
type TokenResponse struct {
	AccessToken string    `json:"access_token"`
	TokenType   string    `json:"token_type"`
	ExpiresIn   int64     `json:"expires_in"`
	ExpiresAt   time.Time `json:"expires_at"`
	Principal   string    `json:"principal"`
	Org         string    `json:"org"`
	Device      string    `json:"device"`
}
