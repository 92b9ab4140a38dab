package incident

import (
	"context"

	"github.com/sekisho/sekisho"
)

// Directory is what incidents read of the access control plane: who a
// principal or a device is, and the grants (access.Directory implements
// it). The package never decodes access's stored objects.
type Directory interface {
	Principal(ctx context.Context, id string) (sekisho.PrincipalEntry, error)
	Device(ctx context.Context, id string) (sekisho.DeviceEntry, error)
	Grant(ctx context.Context, id string) (sekisho.GrantEntry, error)
	Grants(ctx context.Context) ([]sekisho.GrantEntry, error)
}
