package keys

import (
	"maps"
	"slices"
)

// Key providers, as the keys: section of the configuration names them.
const (
	ProviderLocal  = "local"
	ProviderPKCS11 = "pkcs11"
)

// Home is where one provider keeps its key-encryption keys: the local
// keyring (sealed by the master key) or a PKCS#11 token (an HSM).
type Home struct {
	Provider string `json:"provider"`
	// Token is the PKCS#11 token's label.
	Token string `json:"token,omitempty"`
}

// HSM reports whether the keys are held in an HSM (a PKCS#11 token).
func (h Home) HSM() bool { return h.Provider == ProviderPKCS11 }

func (h Home) String() string {
	if h.Token != "" {
		return h.Provider + " token=" + h.Token
	}
	return h.Provider
}

// Custody says where the KEKs of each region live: a region's own provider
// (a Router's), else the default one. Providers are chosen per region; every
// org's KEKs of a region live with that region's provider.
type Custody struct {
	Default Home            `json:"default"`
	Regions map[string]Home `json:"regions,omitempty"`
}

// Of is the home of region's KEKs.
func (c Custody) Of(region string) Home {
	if h, ok := c.Regions[region]; ok {
		return h
	}
	return c.Default
}

// Homes lists the distinct homes, the default's first.
func (c Custody) Homes() []Home {
	out := []Home{c.Default}
	for _, r := range slices.Sorted(maps.Keys(c.Regions)) {
		if h := c.Regions[r]; !slices.Contains(out, h) {
			out = append(out, h)
		}
	}
	return out
}

// CustodyOf describes p: a Local keyring, a PKCS11 token, or a Router of
// them. Another provider is described by an empty Provider.
func CustodyOf(p Provider) Custody {
	switch p := p.(type) {
	case *Router:
		c := Custody{Default: CustodyOf(p.def).Default, Regions: map[string]Home{}}
		for r, rp := range p.byRegion {
			c.Regions[r] = CustodyOf(rp).Default
		}
		return c
	case *PKCS11:
		return Custody{Default: Home{Provider: ProviderPKCS11, Token: p.cfg.TokenLabel}}
	case *Local:
		return Custody{Default: Home{Provider: ProviderLocal}}
	}
	return Custody{}
}
