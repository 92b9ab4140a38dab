package httpapi_test

import (
	"context"
	"errors"
	"net/http"
	"testing"

	"github.com/sekisho/sekisho/client"
)

// TestEnrolKeyStorage (issue 16 point 2): over HTTP, an enrolment's
// key_storage claim is kept on the device (attested false: no evidence),
// an admin sees it, nothing claimed is file, and an unknown claim is
// refused on the field key_storage with nothing stored.
func TestEnrolKeyStorage(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	must(t, w.affAdmin.JSON(ctx, "POST", "/v1/principals", "", map[string]any{"id": "erin", "roles": []string{"member"}}, nil))
	for _, tc := range []struct{ claim, want string }{{"tpm", "tpm"}, {"", "file"}} {
		c := w.client(w.srv)
		c.KeyStorage = tc.claim
		d, err := c.Enrol(ctx, "erin", "laptop")
		must(t, err)
		var got client.Device
		must(t, w.affAdmin.JSON(ctx, "POST", "/v1/devices/"+d.ID+"/approve", "", nil, &got))
		if got.KeyStorage != tc.want || got.Attested || d.KeyStorage != tc.want {
			t.Fatalf("claim %q: enrolled %q, approved %q attested %v", tc.claim, d.KeyStorage, got.KeyStorage, got.Attested)
		}
	}
	c := w.client(w.srv)
	c.KeyStorage = "floppy"
	_, err := c.Enrol(ctx, "erin", "laptop")
	var p *client.Problem
	if !errors.As(err, &p) || p.Status != http.StatusBadRequest || p.Field != "key_storage" {
		t.Fatalf("claim floppy: %v", err)
	}
	refused(t, w.affAdmin.JSON(ctx, "GET", "/v1/devices/"+c.Key.Thumbprint(), "", nil, nil), "not-found")
}
