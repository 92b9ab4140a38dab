package keys

import (
	"context"
	"errors"
	"fmt"
)

// Router is a Provider whose KEKs live in a provider per region (Japan's in
// Japan's HSM), and in a default provider for the other regions. Blind-index
// roots are per org, not per region: they stay with the default provider.
type Router struct {
	def      Provider
	byRegion map[string]Provider
}

// NewRouter returns a provider that sends the keys of each region of
// byRegion to its provider and the rest to def.
func NewRouter(def Provider, byRegion map[string]Provider) *Router {
	return &Router{def: def, byRegion: byRegion}
}

func (r *Router) of(region string) Provider {
	if p := r.byRegion[region]; p != nil {
		return p
	}
	return r.def
}

// WrapDEK implements Provider.
func (r *Router) WrapDEK(ctx context.Context, a DEKAD, dek []byte) ([]byte, int, error) {
	return r.of(a.Region).WrapDEK(ctx, a, dek)
}

// UnwrapDEK implements Provider.
func (r *Router) UnwrapDEK(ctx context.Context, a DEKAD, wrapped []byte) ([]byte, error) {
	return r.of(a.Region).UnwrapDEK(ctx, a, wrapped)
}

// KEKVersions implements Provider.
func (r *Router) KEKVersions(ctx context.Context, org, region string) ([]int, error) {
	return r.of(region).KEKVersions(ctx, org, region)
}

// RotateKEK implements Provider.
func (r *Router) RotateKEK(ctx context.Context, org, region string) (int, error) {
	return r.of(region).RotateKEK(ctx, org, region)
}

// RetireKEK implements Provider.
func (r *Router) RetireKEK(ctx context.Context, org, region string, version int) error {
	return r.of(region).RetireKEK(ctx, org, region, version)
}

// DestroyKEKs implements Provider.
func (r *Router) DestroyKEKs(ctx context.Context, org, region string) (int, error) {
	return r.of(region).DestroyKEKs(ctx, org, region)
}

// IndexRoot implements Provider.
func (r *Router) IndexRoot(ctx context.Context, org string) ([]byte, error) {
	return r.def.IndexRoot(ctx, org)
}

// Ping implements Provider: every provider must answer.
func (r *Router) Ping(ctx context.Context) error {
	errs := []error{r.def.Ping(ctx)}
	for region, p := range r.byRegion {
		if err := p.Ping(ctx); err != nil {
			errs = append(errs, fmt.Errorf("region %s: %w", region, err))
		}
	}
	return errors.Join(errs...)
}
