package access

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base32"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/sekisho/sekisho"
	"github.com/sekisho/sekisho/access/dpop"
)

// MaxPendingDevices bounds the pending devices of one principal, so that
// unauthenticated enrolment cannot flood an admin's queue.
const MaxPendingDevices = 10

// PendingDeviceTTL is how long an enrolled device waits for approval: after
// it, the enrolment has expired, does not count towards MaxPendingDevices
// and cannot be approved (the key may enrol again). So anonymous enrolments
// block a principal's own for at most this long; enrolment should be
// rate-limited at the edge as well.
const PendingDeviceTTL = time.Hour

// expired reports whether d is a pending enrolment older than
// PendingDeviceTTL.
func (d *Device) expired(now time.Time) bool {
	return d.Status == StatusPending && !now.Before(d.EnrolledAt.Add(PendingDeviceTTL))
}

// Bootstrap is the request that spends the bootstrap token.
type Bootstrap struct {
	Principal string `json:"principal"`
	Name      string `json:"name,omitempty"`
	Device    string `json:"device_name,omitempty"`
	// KeyStorage is where the device key lives, as the client claims it
	// (file when empty).
	KeyStorage string   `json:"key_storage,omitempty"`
	Key        dpop.JWK `json:"-"` // from the DPoP proof
	// Attestation is evidence of where the key lives (a TPM key
	// attestation); verified before the token is spent, it makes the
	// device attested.
	Attestation *TPMEvidence `json:"attestation,omitempty"`
}

// BootstrapResult is what the bootstrap returns.
type BootstrapResult struct {
	Org       *Org       `json:"org"`
	Principal *Principal `json:"principal"`
	Device    *Device    `json:"device"`
}

// SpendBootstrap checks the bootstrap token and, once only, creates the root
// org, its first admin (roles admin and auditor) and that admin's device,
// approved. The spending is audited.
func (s *Service) SpendBootstrap(ctx context.Context, c sekisho.Caller, token string, b Bootstrap) (*BootstrapResult, error) {
	c.Principal, c.Org, c.Device = "bootstrap", s.rootOrg, "bootstrap"
	h := sha256.Sum256([]byte(token))
	if s.bootHash == ([32]byte{}) || subtle.ConstantTimeCompare(h[:], s.bootHash[:]) != 1 {
		return nil, s.event(ctx, c, "bootstrap.spend", "", sekisho.TypedErrorf(sekisho.EUnauthorized, "credential-invalid", "the bootstrap token is not valid"))
	}
	if b.Principal == "" {
		b.Principal = "admin"
	}
	if !ValidID(b.Principal) {
		return nil, sekisho.FieldErrorf(sekisho.EInvalid, "principal", "principal id %q: use lower-case letters, digits, '-' and '_'", b.Principal)
	}
	storage, err := checkKeyStorage(b.KeyStorage)
	if err != nil {
		return nil, err
	}
	attested := false
	if b.Attestation != nil {
		if b.KeyStorage != "" && b.KeyStorage != KeyStorageTPM {
			return nil, &sekisho.Error{Code: sekisho.EInvalid, Type: ProblemAttestationInvalid, Field: "key_storage",
				Message: "a TPM attestation attests key_storage tpm, not " + b.KeyStorage}
		}
		// Verified before the token is spent: refused evidence leaves it usable.
		if err := s.VerifyTPMEvidence(b.Attestation, b.Key); err != nil {
			return nil, s.event(ctx, c, "bootstrap.spend", "attestation refused", err)
		}
		storage, attested = KeyStorageTPM, true
	}
	now := s.now()
	// Spending first, with version 1, makes the bootstrap single-use even
	// when two requests race: the second gets a conflict.
	if err := s.put(ctx, sekisho.KindBootstrap, "first-admin", s.rootOrg, 1, map[string]any{"spent_at": now, "principal": b.Principal, "device": b.Key.Thumbprint()}); err != nil {
		if sekisho.Code(err) == sekisho.EConflict {
			err = sekisho.TypedErrorf(sekisho.EUnauthorized, "bootstrap-token-spent", "the bootstrap token was already used to enrol the first admin; log in with that admin's profile")
		}
		return nil, s.event(ctx, c, "bootstrap.spend", "", err)
	}
	org := &Org{ID: s.rootOrg, HomeRegion: s.rootRegio, Root: true, Status: StatusActive, CreatedAt: now, CreatedBy: "bootstrap"}
	if err := s.put(ctx, sekisho.KindOrg, org.ID, org.ID, 1, org); err != nil && sekisho.Code(err) != sekisho.EConflict {
		return nil, err
	}
	p := &Principal{ID: b.Principal, Org: org.ID, Name: b.Name, Kind: "person", Roles: []string{RoleAdmin, RoleAuditor},
		Status: StatusActive, CreatedAt: now, CreatedBy: "bootstrap"}
	if err := s.put(ctx, sekisho.KindPrincipal, p.ID, p.Org, 1, p); err != nil {
		return nil, err
	}
	d := &Device{ID: b.Key.Thumbprint(), Principal: p.ID, Org: p.Org, Name: b.Device, Key: b.Key, Status: StatusApproved,
		EnrolledAt: now, ApprovedAt: &now, ApprovedBy: "bootstrap", KeyStorage: storage, Attested: attested}
	if err := s.put(ctx, sekisho.KindDevice, d.ID, d.Org, 1, d); err != nil {
		return nil, err
	}
	if err := s.EnsurePolicies(ctx); err != nil {
		return nil, err
	}
	if err := s.event(ctx, c, "bootstrap.spend", "first admin "+p.ID+" device "+d.ID, nil); err != nil {
		return nil, err
	}
	return &BootstrapResult{Org: org, Principal: p, Device: d}, nil
}

// CreateOrg creates an org (root admins only).
func (s *Service) CreateOrg(ctx context.Context, c sekisho.Caller, o *Org) (*Org, error) {
	detail := "org " + o.ID
	if !s.isRootAdmin(c) {
		return nil, s.event(ctx, c, "org.create", detail, errAdmin("creating an org"))
	}
	if !ValidID(o.ID) {
		return nil, sekisho.FieldErrorf(sekisho.EInvalid, "id", "org id %q: use lower-case letters, digits, '-' and '_'", o.ID)
	}
	if !s.regions[o.HomeRegion] {
		return nil, &sekisho.Error{Code: sekisho.EInvalid, Type: "region-unknown", Field: "home_region",
			Message: fmt.Sprintf("home region %q is not one of this instance's regions (%s)", o.HomeRegion, strings.Join(s.cfg.Regions, ", "))}
	}
	if o.TimeZone != "" {
		if _, err := time.LoadLocation(o.TimeZone); err != nil || o.TimeZone == "Local" {
			return nil, sekisho.FieldErrorf(sekisho.EInvalid, "time_zone", "time zone %q: want an IANA name such as Asia/Tokyo or Asia/Bangkok", o.TimeZone)
		}
	}
	if r := o.DeviceRequirements; r != nil {
		if err := checkDeviceLevel("cross_org", r.CrossOrg); err != nil {
			return nil, err
		}
		if err := checkDeviceLevel("sensitive", r.Sensitive); err != nil {
			return nil, err
		}
	}
	o.Root, o.Status, o.CreatedAt, o.CreatedBy = false, StatusActive, s.now(), c.Principal
	if err := s.put(ctx, sekisho.KindOrg, o.ID, o.ID, 1, o); err != nil {
		return nil, s.event(ctx, c, "org.create", detail, err)
	}
	return o, s.event(ctx, c, "org.create", detail, nil)
}

// GetOrg returns an org the caller may see.
func (s *Service) GetOrg(ctx context.Context, c sekisho.Caller, id string) (*Org, error) {
	if id != c.Org && !s.seesAll(c) {
		return nil, sekisho.Errorf(sekisho.ENotFound, "org %q not found", id)
	}
	o, _, err := get[Org](ctx, s, sekisho.KindOrg, id)
	return o, err
}

// ListOrgs lists the orgs the caller may see: all for root admins and
// auditors, its own for everyone else.
func (s *Service) ListOrgs(ctx context.Context, c sekisho.Caller) ([]*Org, error) {
	if !s.seesAll(c) {
		o, _, err := get[Org](ctx, s, sekisho.KindOrg, c.Org)
		if err != nil {
			return nil, err
		}
		return []*Org{o}, nil
	}
	return list[Org](ctx, s, sekisho.KindOrg, "")
}

// RevokeOrgDevices revokes every device of an org (an admin of it, or a
// root admin): the emergency stop for a compromised affiliate.
func (s *Service) RevokeOrgDevices(ctx context.Context, c sekisho.Caller, org string) (int, error) {
	detail := "org " + org
	if err := s.requireAdminOf(c, org, "revoking an org's devices", true); err != nil {
		return 0, s.event(ctx, c, "org.revoke-devices", detail, err)
	}
	objs, err := s.store.ListObjects(ctx, sekisho.KindDevice, org)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, o := range objs {
		d, err := decode[Device](o)
		if err != nil {
			return n, err
		}
		if d.Status == StatusRevoked {
			continue
		}
		now := s.now()
		d.Status, d.RevokedAt, d.RevokedBy = StatusRevoked, &now, c.Principal
		if err := s.put(ctx, sekisho.KindDevice, d.ID, d.Org, o.Version+1, d); err != nil {
			return n, err
		}
		n++
	}
	return n, s.event(ctx, c, "org.revoke-devices", detail, nil)
}

// CreatePrincipal creates a principal: by an admin of its org, or by a root
// admin (the first admin of an org that has never had one, or a principal
// without the admin role). Only a holder of auditor grants auditor.
func (s *Service) CreatePrincipal(ctx context.Context, c sekisho.Caller, p *Principal) (*Principal, error) {
	detail := "principal " + p.ID + " of " + p.Org + " roles " + strings.Join(p.Roles, ",")
	if p.Org == "" {
		p.Org = c.Org
	}
	if err := s.requireAdminOf(c, p.Org, "creating a principal", true); err != nil {
		return nil, s.event(ctx, c, "principal.create", detail, err)
	}
	if !ValidID(p.ID) {
		return nil, sekisho.FieldErrorf(sekisho.EInvalid, "id", "principal id %q: use lower-case letters, digits, '-' and '_'", p.ID)
	}
	if len(p.Roles) == 0 {
		return nil, sekisho.FieldErrorf(sekisho.EInvalid, "roles", "give at least one role (%s)", strings.Join(Roles, ", "))
	}
	for _, r := range p.Roles {
		if !slices.Contains(Roles, r) {
			return nil, sekisho.FieldErrorf(sekisho.EInvalid, "roles", "unknown role %q (known: %s)", r, strings.Join(Roles, ", "))
		}
	}
	if slices.Contains(p.Roles, RoleAuditor) && !c.HasRole(RoleAuditor) {
		return nil, s.event(ctx, c, "principal.create", detail, sekisho.TypedErrorf(sekisho.EForbidden, "auditor-grant-forbidden",
			"only a holder of the auditor role may grant it"))
	}
	if _, _, err := get[Org](ctx, s, sekisho.KindOrg, p.Org); err != nil {
		return nil, sekisho.FieldErrorf(sekisho.EInvalid, "org", "org %q does not exist", p.Org)
	}
	if p.Org != c.Org && slices.Contains(p.Roles, RoleAdmin) {
		// A root admin acting on another org: only its first admin, while
		// the org has never had one (revoked admins count), so that root
		// cannot seat an admin of its own choosing in an org that has one.
		had, _, err := s.adminHistory(ctx, p.Org)
		if err != nil {
			return nil, err
		}
		if had {
			return nil, s.event(ctx, c, "principal.create", detail, sekisho.TypedErrorf(sekisho.EForbidden, "org-has-admin",
				"org %s has had an admin: only an admin of %s creates its admins", p.Org, p.Org))
		}
	}
	if p.Kind == "" {
		p.Kind = "person"
	}
	if p.Kind != "person" && p.Kind != "service" {
		return nil, sekisho.FieldErrorf(sekisho.EInvalid, "kind", "kind must be person or service")
	}
	sort.Strings(p.Roles)
	p.Status, p.CreatedAt, p.CreatedBy, p.RevokedAt, p.RevokedBy = StatusActive, s.now(), c.Principal, nil, ""
	if err := s.put(ctx, sekisho.KindPrincipal, p.ID, p.Org, 1, p); err != nil {
		return nil, s.event(ctx, c, "principal.create", detail, err)
	}
	return p, s.event(ctx, c, "principal.create", detail, nil)
}

// GetPrincipal returns a principal the caller may see.
func (s *Service) GetPrincipal(ctx context.Context, c sekisho.Caller, id string) (*Principal, error) {
	p, _, err := get[Principal](ctx, s, sekisho.KindPrincipal, id)
	if err != nil || (p.Org != c.Org && !s.seesAll(c)) {
		return nil, sekisho.Errorf(sekisho.ENotFound, "principal %q not found", id)
	}
	return p, nil
}

// ListPrincipals lists an org's principals; only root admins and auditors
// may list another org's. org "" means the caller's own (all for those).
func (s *Service) ListPrincipals(ctx context.Context, c sekisho.Caller, org string) ([]*Principal, error) {
	if org != "" && org != c.Org && !s.seesAll(c) {
		return nil, s.event(ctx, c, "principal.list", "org "+org, errScope(org))
	}
	if org == "" && !s.seesAll(c) {
		org = c.Org
	}
	return list[Principal](ctx, s, sekisho.KindPrincipal, org)
}

// RevokePrincipal revokes a principal: its devices are refused from the next
// request on.
func (s *Service) RevokePrincipal(ctx context.Context, c sekisho.Caller, id string) (*Principal, error) {
	detail := "principal " + id
	p, v, err := get[Principal](ctx, s, sekisho.KindPrincipal, id)
	if err != nil {
		return nil, err
	}
	if err := s.requireAdminOf(c, p.Org, "revoking a principal", true); err != nil {
		return nil, s.event(ctx, c, "principal.revoke", detail, err)
	}
	now := s.now()
	p.Status, p.RevokedAt, p.RevokedBy = StatusRevoked, &now, c.Principal
	if err := s.put(ctx, sekisho.KindPrincipal, p.ID, p.Org, v+1, p); err != nil {
		return nil, err
	}
	return p, s.event(ctx, c, "principal.revoke", detail, nil)
}

// EnrolDevice records a new device key for a principal, pending an admin's
// approval for PendingDeviceTTL. The caller has proven possession of the
// key (a DPoP proof) but is anonymous: enrolment should be rate-limited at
// the edge. keyStorage is where the client says the key lives (file when
// empty); the device is not attested (no evidence was verified).
func (s *Service) EnrolDevice(ctx context.Context, c sekisho.Caller, principal, name, keyStorage string, key dpop.JWK) (*Device, error) {
	return s.enrolDevice(ctx, c, principal, name, keyStorage, false, key)
}

// enrolDevice is EnrolDevice; attested says the caller verified evidence of
// keyStorage (EnrolAttestedDevice).
func (s *Service) enrolDevice(ctx context.Context, c sekisho.Caller, principal, name, keyStorage string, attested bool, key dpop.JWK) (*Device, error) {
	key, err := key.Canonical()
	if err != nil {
		return nil, sekisho.FieldErrorf(sekisho.EInvalid, "key", "%v", err)
	}
	storage, err := checkKeyStorage(keyStorage)
	if err != nil {
		return nil, err
	}
	if len(name) > 100 {
		return nil, sekisho.FieldErrorf(sekisho.EInvalid, "name", "device name is longer than 100 characters")
	}
	now := s.now()
	detail := "device " + key.Thumbprint() + " for " + principal
	// A device is its public key: one key is one device across every
	// principal and org, for ever. A key that is or was enrolled (approved,
	// revoked, quarantined, or pending) never enrols again, under anyone;
	// only an enrolment that expired unapproved is replaced. Devices are
	// never deleted, so a revoked key stays known. (This answer tells the
	// key's holder about its own key, whatever principal it names.)
	version := int64(1)
	if old, v, err := get[Device](ctx, s, sekisho.KindDevice, key.Thumbprint()); err == nil {
		if !old.expired(now) {
			return nil, s.event(ctx, c, "device.enrol", detail, errKeyKnown())
		}
		version = v + 1
	} else if sekisho.Code(err) != sekisho.ENotFound {
		return nil, err
	}
	// The caller is anonymous: whether the principal exists, is revoked or
	// has too many enrolments waiting is audited, never answered. Every
	// such enrolment answers like a stored one (pending), so that
	// enrolment does not tell who exists; only an admin of the org sees
	// what is really pending.
	stub := &Device{ID: key.Thumbprint(), Principal: principal, Name: name, Status: StatusPending, EnrolledAt: now, KeyStorage: storage, Attested: attested}
	hidden := func(err error) (*Device, error) {
		if aerr := s.event(ctx, c, "device.enrol", detail, err); sekisho.Code(aerr) == sekisho.EUnavailable {
			return nil, aerr
		}
		return stub, nil
	}
	p, _, err := get[Principal](ctx, s, sekisho.KindPrincipal, principal)
	if sekisho.Code(err) == sekisho.ENotFound {
		return hidden(sekisho.TypedErrorf(sekisho.ENotFound, "principal-unknown", "principal %q does not exist (not told to the caller)", principal))
	}
	if err != nil {
		return nil, err
	}
	c.Org = p.Org
	if p.Status != StatusActive {
		return hidden(sekisho.TypedErrorf(sekisho.EForbidden, "principal-revoked", "principal %s is revoked (not told to the caller)", principal))
	}
	devs, err := list[Device](ctx, s, sekisho.KindDevice, p.Org)
	if err != nil {
		return nil, err
	}
	pending := 0
	for _, d := range devs {
		if d.Principal == principal && d.Status == StatusPending && !d.expired(now) {
			pending++
		}
	}
	if pending >= MaxPendingDevices {
		return hidden(sekisho.TypedErrorf(sekisho.EConflict, "too-many-pending-devices",
			"principal %s has %d devices waiting for approval (each for at most %s); not stored, not told to the caller", principal, pending, PendingDeviceTTL))
	}
	d := &Device{ID: key.Thumbprint(), Principal: principal, Org: p.Org, Name: name, Key: key, Status: StatusPending, EnrolledAt: now, KeyStorage: storage, Attested: attested}
	if err := s.put(ctx, sekisho.KindDevice, d.ID, d.Org, version, d); err != nil {
		if sekisho.Code(err) == sekisho.EConflict {
			err = errKeyKnown() // enrolled concurrently
		}
		return nil, s.event(ctx, c, "device.enrol", detail, err)
	}
	return d, s.event(ctx, c, "device.enrol", detail, nil)
}

// errKeyKnown is the answer to enrolling a key that is already a device.
// It does not say whose, nor in which state.
func errKeyKnown() error {
	return sekisho.TypedErrorf(sekisho.EConflict, "device-key-known",
		"this public key is already a device (a key is one device, for one principal, for ever; a revoked or quarantined key never enrols again): make a new key")
}

// ApproveDevice approves a pending device: an admin of the principal's own
// org, or a root admin while that org has never had an admin with an
// approved device (bootstrapping a new org: its first admin and the others
// it starts with). Revoked admins and devices count: once an org has had
// an admin, only its own admins approve its devices.
func (s *Service) ApproveDevice(ctx context.Context, c sekisho.Caller, id string) (*Device, error) {
	d, v, err := get[Device](ctx, s, sekisho.KindDevice, id)
	if err != nil {
		return nil, err
	}
	detail := "device " + id + " of " + d.Principal
	if err := s.requireAdminOf(c, d.Org, "approving a device", false); err != nil {
		if !s.isRootAdmin(c) {
			return nil, s.event(ctx, c, "device.approve", detail, err)
		}
		_, seated, herr := s.adminHistory(ctx, d.Org)
		if herr != nil {
			return nil, herr
		}
		if seated {
			return nil, s.event(ctx, c, "device.approve", detail, sekisho.TypedErrorf(sekisho.EForbidden, "admin-required",
				"org %s has had its own admin: a device is approved by an admin of its own org", d.Org))
		}
	}
	if d.Status != StatusPending {
		return nil, sekisho.TypedErrorf(sekisho.EConflict, "device-not-pending", "device %s is %s, not pending", id, d.Status)
	}
	now := s.now()
	if d.expired(now) {
		return nil, s.event(ctx, c, "device.approve", detail, sekisho.TypedErrorf(sekisho.EConflict, "device-enrolment-expired",
			"device %s was enrolled at %s and not approved within %s; enrol it again", id, d.EnrolledAt.Format(time.RFC3339), PendingDeviceTTL))
	}
	d.Status, d.ApprovedAt, d.ApprovedBy = StatusApproved, &now, c.Principal
	if err := s.put(ctx, sekisho.KindDevice, d.ID, d.Org, v+1, d); err != nil {
		return nil, err
	}
	return d, s.event(ctx, c, "device.approve", detail, nil)
}

// adminHistory reports whether org has ever had an admin principal
// (revoked ones included; principals are never deleted and their roles
// never change) and whether any of them has ever had a device approved
// (revoked devices included).
func (s *Service) adminHistory(ctx context.Context, org string) (admin, seated bool, err error) {
	ps, err := list[Principal](ctx, s, sekisho.KindPrincipal, org)
	if err != nil {
		return false, false, err
	}
	admins := map[string]bool{}
	for _, p := range ps {
		if p.Org == org && p.HasRole(RoleAdmin) {
			admins[p.ID] = true
		}
	}
	if len(admins) == 0 {
		return false, false, nil
	}
	devs, err := list[Device](ctx, s, sekisho.KindDevice, org)
	if err != nil {
		return true, false, err
	}
	for _, d := range devs {
		if admins[d.Principal] && d.ApprovedAt != nil {
			return true, true, nil
		}
	}
	return true, false, nil
}

// RevokeDevice revokes a device (an admin of its org, a root admin, or its
// own principal).
func (s *Service) RevokeDevice(ctx context.Context, c sekisho.Caller, id string) (*Device, error) {
	d, v, err := get[Device](ctx, s, sekisho.KindDevice, id)
	if err != nil {
		return nil, err
	}
	detail := "device " + id + " of " + d.Principal
	if c.Principal != d.Principal {
		if err := s.requireAdminOf(c, d.Org, "revoking a device", true); err != nil {
			return nil, s.event(ctx, c, "device.revoke", detail, err)
		}
	}
	now := s.now()
	d.Status, d.RevokedAt, d.RevokedBy = StatusRevoked, &now, c.Principal
	if err := s.put(ctx, sekisho.KindDevice, d.ID, d.Org, v+1, d); err != nil {
		return nil, err
	}
	return d, s.event(ctx, c, "device.revoke", detail, nil)
}

// GetDevice returns a device the caller may see.
func (s *Service) GetDevice(ctx context.Context, c sekisho.Caller, id string) (*Device, error) {
	d, _, err := get[Device](ctx, s, sekisho.KindDevice, id)
	if err != nil || (d.Org != c.Org && !s.seesAll(c)) || (d.Principal != c.Principal && !c.HasRole(RoleAdmin) && !s.seesAll(c)) {
		return nil, sekisho.Errorf(sekisho.ENotFound, "device %q not found", id)
	}
	return d, nil
}

// ListDevices lists devices: an org's for its admins (any org's for root
// admins and auditors), one's own for everyone else.
func (s *Service) ListDevices(ctx context.Context, c sekisho.Caller, org, principal string) ([]*Device, error) {
	if org != "" && org != c.Org && !s.seesAll(c) {
		return nil, s.event(ctx, c, "device.list", "org "+org, errScope(org))
	}
	if org == "" && !s.seesAll(c) {
		org = c.Org
	}
	devs, err := list[Device](ctx, s, sekisho.KindDevice, org)
	if err != nil {
		return nil, err
	}
	own := !c.HasRole(RoleAdmin) && !s.seesAll(c)
	out := devs[:0]
	for _, d := range devs {
		if (principal == "" || d.Principal == principal) && (!own || d.Principal == c.Principal) {
			out = append(out, d)
		}
	}
	return out, nil
}

// newID returns a random id with a prefix.
func newID(prefix string) string {
	var b [10]byte
	rand.Read(b[:])
	return prefix + strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b[:]))
}

// timeOr returns t, or def when t is zero.
func timeOr(t, def time.Time) time.Time {
	if t.IsZero() {
		return def
	}
	return t
}
