package report

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/sekisho/sekisho"
)

// Controller is the business operator that files reports (APPI's 個人情報
// 取扱事業者, the GDPR's and PDPA's controller): set once, in the
// configuration file's controller section or as an org's profile, and used
// by every report, over the API and offline.
type Controller struct {
	// Name is the controller's name per language (en, ja, th, zh-TW, id);
	// a report takes its own language's name, else English, else any.
	Name map[string]string `json:"name,omitempty" yaml:"name"`
	// Address is the registered address.
	Address string `json:"address,omitempty" yaml:"address"`
	// Representative is the representative's name (APPI's form asks for it).
	Representative string `json:"representative,omitempty" yaml:"representative"`
	// Contact is the contact point: a DPO or privacy office, with a
	// telephone number or an email address.
	Contact string `json:"contact,omitempty" yaml:"contact"`
}

// Empty reports whether nothing is set.
func (c Controller) Empty() bool {
	return len(c.Name) == 0 && c.Address == "" && c.Representative == "" && c.Contact == ""
}

// NameIn returns the name in lang, else in English, else the first by
// language code, else "".
func (c Controller) NameIn(lang string) string {
	if n := c.Name[lang]; n != "" {
		return n
	}
	if n := c.Name[LangEN]; n != "" {
		return n
	}
	for _, k := range slices.Sorted(maps.Keys(c.Name)) {
		if c.Name[k] != "" {
			return c.Name[k]
		}
	}
	return ""
}

// Validate checks the lengths and the language codes.
func (c Controller) Validate() error {
	for k, v := range c.Name {
		if !slices.Contains([]string{"en", "ja", "th", "zh-TW", "id"}, k) {
			return sekisho.FieldErrorf(sekisho.EInvalid, "name", "controller name language %q: want en, ja, th, zh-TW or id", k)
		}
		if len(v) > 300 {
			return sekisho.FieldErrorf(sekisho.EInvalid, "name", "controller name (%s) is longer than 300 bytes", k)
		}
	}
	for f, v := range map[string]string{"address": c.Address, "representative": c.Representative, "contact": c.Contact} {
		if len(v) > 1000 {
			return sekisho.FieldErrorf(sekisho.EInvalid, f, "%s is longer than 1000 bytes", f)
		}
		if strings.ContainsAny(v, "\x00") {
			return sekisho.FieldErrorf(sekisho.EInvalid, f, "%s holds a NUL byte", f)
		}
	}
	return nil
}

// KindOrgProfile is the sekisho.Object kind of an org's profile.
const KindOrgProfile = "org-profile"

// OrgProfile is what an org says about itself as a controller.
type OrgProfile struct {
	Org        string     `json:"org"`
	Controller Controller `json:"controller"`
	UpdatedAt  time.Time  `json:"updated_at"`
	UpdatedBy  string     `json:"updated_by,omitempty"`
}

// GetProfile reads org's profile; found is false when it has none.
func GetProfile(ctx context.Context, st sekisho.ObjectStore, org string) (p *OrgProfile, found bool, err error) {
	o, err := st.GetObject(ctx, KindOrgProfile, org)
	if sekisho.Code(err) == sekisho.ENotFound {
		return &OrgProfile{Org: org}, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("org profile %s: %w", org, err)
	}
	var out OrgProfile
	if err := json.Unmarshal(o.Body, &out); err != nil {
		return nil, false, fmt.Errorf("org profile %s does not decode: %w", org, err)
	}
	return &out, true, nil
}

// PutProfile validates and stores p.
func PutProfile(ctx context.Context, st sekisho.ObjectStore, p *OrgProfile) error {
	if err := p.Controller.Validate(); err != nil {
		return err
	}
	body, err := json.Marshal(p)
	if err != nil {
		return fmt.Errorf("encode org profile: %w", err)
	}
	version := int64(1)
	if o, err := st.GetObject(ctx, KindOrgProfile, p.Org); err == nil {
		version = o.Version + 1
	}
	return st.PutObject(ctx, &sekisho.Object{Kind: KindOrgProfile, ID: p.Org, Org: p.Org, Version: version, Body: body, Updated: p.UpdatedAt})
}

// ControllerOf returns org's profile's controller when it has one, else
// fallback (the configuration file's).
func ControllerOf(ctx context.Context, st sekisho.ObjectStore, org string, fallback Controller) (Controller, error) {
	if org == "" {
		return fallback, nil
	}
	p, found, err := GetProfile(ctx, st, org)
	if err != nil {
		return Controller{}, err
	}
	if !found || p.Controller.Empty() {
		return fallback, nil
	}
	return p.Controller, nil
}
