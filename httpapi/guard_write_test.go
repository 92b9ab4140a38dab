package httpapi_test

import (
	"context"
	"testing"

	"github.com/sekisho/sekisho/guard"
)

// Writes reach the guard too: an update or an erase of a decoy quarantines
// the principal within that request, whatever the authoriser said.
func TestHoneytokenWriteQuarantines(t *testing.T) {
	for _, tc := range []struct {
		name, method string
		body         any
	}{
		{"update", "PATCH", map[string]any{"fields": map[string]any{"country": "JP"}}},
		{"erase", "DELETE", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newGuardWorld(t, 20)
			ctx := context.Background()
			var made struct{ Honeytokens []guard.Honeytoken }
			must(t, w.admin.JSON(ctx, "POST", "/v1/collections/users/honeytokens", "", map[string]any{"region": "jp", "count": 1}, &made))
			_, err := w.read(w.agent, w.ids[0])
			must(t, err)
			err = w.agent.JSON(ctx, tc.method, "/v1/collections/users/records/"+made.Honeytokens[0].ID, "support", tc.body, nil)
			refused(t, err, guard.ProblemQuarantined)
			_, err = w.read(w.agent, w.ids[0])
			refused(t, err, guard.ProblemQuarantined)
		})
	}
}
