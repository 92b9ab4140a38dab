package access

import (
	"encoding/json"
	"regexp"
	"slices"
	"time"

	"github.com/sekisho/sekisho"
	"github.com/sekisho/sekisho/access/dpop"
)

// Roles. Admin, member, support and service are roles within one org;
// auditor is instance-wide (reads the whole audit log), held by the first
// admin and granted only by a holder of it.
const (
	RoleAdmin   = sekisho.RoleAdmin
	RoleAuditor = sekisho.RoleAuditor
	RoleMember  = sekisho.RoleMember
	RoleSupport = sekisho.RoleSupport
	RoleService = sekisho.RoleService
)

// Roles lists the roles in the order they are shown.
var Roles = []string{RoleAdmin, RoleAuditor, RoleMember, RoleSupport, RoleService}

// Statuses.
const (
	StatusActive    = sekisho.StatusActive
	StatusPending   = sekisho.StatusPending
	StatusApproved  = sekisho.StatusApproved
	StatusRevoked   = sekisho.StatusRevoked
	StatusSuspended = sekisho.StatusSuspended
)

// DefaultPurposes are the purposes a data request may state. A role's or a
// grant's policy narrows them further.
var DefaultPurposes = []string{"support", "payroll", "fraud", "security", "ops", "import", "analytics", "legal", "incident", "marketing", "subject-access", "breach-notification"}

// Actions that grants and policies name (the vault's actions).
var Actions = []string{"create", "read", "update", "erase", "lookup", "batch-get", "import", "tokenize", "detokenize"}

var idRE = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,62}$`)

// ValidID reports whether s is a valid org or principal id: lower-case
// letters, digits, '-' and '_', starting with a letter, at most 63.
func ValidID(s string) bool { return idRE.MatchString(s) }

// Org is an organisation: the operator, an affiliate, a subcontractor.
type Org struct {
	ID   string `json:"id"`
	Name string `json:"name,omitempty"`
	// HomeRegion is where the org's own data subjects live; a grant that
	// reaches another region needs two admins.
	HomeRegion string `json:"home_region"`
	// TimeZone is the org's IANA time zone ("Asia/Tokyo"): the guard
	// learns its principals' working hours in it. Empty: the server's.
	TimeZone string `json:"time_zone,omitempty"`
	// Root marks the org that runs the instance (created at bootstrap); its
	// admins create the other orgs and edit policies.
	Root bool `json:"root,omitempty"`
	// DeviceRequirements are the devices this org's records may be read
	// from: across orgs (under grants) and for sensitive fields. Nil or
	// an empty level: the instance's default (Config.DeviceDefault).
	DeviceRequirements *DeviceRequirements `json:"device_requirements,omitempty"`
	Status             string              `json:"status"`
	CreatedAt          time.Time           `json:"created_at"`
	CreatedBy          string              `json:"created_by"`
}

// Principal is a person or a service of one org.
type Principal struct {
	ID        string     `json:"id"`
	Org       string     `json:"org"`
	Name      string     `json:"name,omitempty"`
	Kind      string     `json:"kind"` // person or service
	Roles     []string   `json:"roles"`
	Status    string     `json:"status"`
	CreatedAt time.Time  `json:"created_at"`
	CreatedBy string     `json:"created_by"`
	RevokedAt *time.Time `json:"revoked_at,omitempty"`
	RevokedBy string     `json:"revoked_by,omitempty"`
	// Identity is the person at the identity provider this principal
	// signs in as (sekisho login --oidc); nil for principals enrolled
	// otherwise. Their roles follow the sign-in mapping at every sign-in
	// and token refresh.
	Identity *IdentityLink `json:"identity,omitempty"`
}

// HasRole reports whether p holds role.
func (p *Principal) HasRole(role string) bool { return slices.Contains(p.Roles, role) }

// Device is a key pair of one principal; its id is the RFC 7638 thumbprint
// of its public key, which is also the cnf.jkt of its access tokens.
type Device struct {
	ID         string     `json:"id"`
	Principal  string     `json:"principal"`
	Org        string     `json:"org"`
	Name       string     `json:"name,omitempty"`
	Key        dpop.JWK   `json:"key"`
	Status     string     `json:"status"` // pending, approved, revoked
	EnrolledAt time.Time  `json:"enrolled_at"`
	ApprovedAt *time.Time `json:"approved_at,omitempty"`
	ApprovedBy string     `json:"approved_by,omitempty"`
	RevokedAt  *time.Time `json:"revoked_at,omitempty"`
	RevokedBy  string     `json:"revoked_by,omitempty"`
	// KeyStorage is where the enrolment said the key lives: file, tpm,
	// pkcs11 or webauthn (a claim, until Attested).
	KeyStorage string `json:"key_storage"`
	// Attested says evidence of KeyStorage (a TPM key attestation, a
	// WebAuthn attestation) was verified; false for a claim alone.
	Attested bool `json:"attested"`
	// ExpiresAt ends an approved device that is a sign-in session (the
	// browser key of a passkey sign-in): from then on it gets no token
	// and its tokens are refused (device-expired), as if revoked.
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
}

// Where a device key lives (Device.KeyStorage).
const (
	KeyStorageFile     = "file"
	KeyStorageTPM      = "tpm"
	KeyStoragePKCS11   = "pkcs11"
	KeyStorageWebAuthn = "webauthn"
)

// KeyStorages lists the values of Device.KeyStorage.
var KeyStorages = []string{KeyStorageFile, KeyStorageTPM, KeyStoragePKCS11, KeyStorageWebAuthn}

// checkKeyStorage checks an enrolment's key_storage claim; "" claims a file key.
func checkKeyStorage(claim string) (string, error) {
	if claim == "" {
		return KeyStorageFile, nil
	}
	if !slices.Contains(KeyStorages, claim) {
		return "", sekisho.FieldErrorf(sekisho.EInvalid, "key_storage", "key_storage %q: want one of file, tpm, pkcs11, webauthn", claim)
	}
	return claim, nil
}

// UnmarshalJSON reads a device; one stored before devices said where
// their key lives (nothing claimed) is a file key.
func (d *Device) UnmarshalJSON(b []byte) error {
	type plain Device
	if err := json.Unmarshal(b, (*plain)(d)); err != nil {
		return err
	}
	if d.KeyStorage == "" {
		d.KeyStorage = KeyStorageFile
	}
	return nil
}

// Approval is one admin's approval of a grant.
type Approval struct {
	Principal string    `json:"principal"`
	At        time.Time `json:"at"`
}

// Grant is the only path across orgs: the grantor org lets the grantee (an
// org, or one principal of it) act on some of its records.
type Grant struct {
	ID         string `json:"id"`
	GrantorOrg string `json:"grantor_org"`
	GranteeOrg string `json:"grantee_org"`
	// GranteePrincipal narrows the grant to one principal of GranteeOrg.
	GranteePrincipal string   `json:"grantee_principal,omitempty"`
	Collections      []string `json:"collections"`
	// Fields the grantee may see; empty means every field of the collections.
	Fields []string `json:"fields,omitempty"`
	// MaskedFields are returned in their masked form only ("*" for all).
	MaskedFields []string  `json:"masked_fields,omitempty"`
	Regions      []string  `json:"regions"`
	Purposes     []string  `json:"purposes"`
	Actions      []string  `json:"actions"`
	NotBefore    time.Time `json:"not_before"`
	Expires      time.Time `json:"expires"`
	// Budgets in records: per rolling hour and in total; 0 means none.
	BudgetPerHour int64  `json:"budget_per_hour,omitempty"`
	BudgetTotal   int64  `json:"budget_total,omitempty"`
	Status        string `json:"status"`
	// TwoPerson says why a second admin must approve ("" when one suffices).
	TwoPerson string     `json:"two_person,omitempty"`
	Approvals []Approval `json:"approvals"`
	CreatedBy string     `json:"created_by"`
	CreatedAt time.Time  `json:"created_at"`
	RevokedAt *time.Time `json:"revoked_at,omitempty"`
	RevokedBy string     `json:"revoked_by,omitempty"`
	// DeviceRequirement is the device the grantee must use: any,
	// hardware-bound or attested ("": the grantor org's cross-org
	// requirement alone, which applies to every grant anyway).
	DeviceRequirement string `json:"device_requirement,omitempty"`
	// Cedar is the policy the grant compiles to (read-only).
	Cedar string `json:"cedar,omitempty"`
}

// Policy is one Cedar policy, stored as data and versioned. Every change
// makes a new version; old versions stay readable.
type Policy struct {
	ID          string    `json:"id"`
	Description string    `json:"description,omitempty"`
	Cedar       string    `json:"cedar"`
	Version     int64     `json:"version"`
	UpdatedAt   time.Time `json:"updated_at"`
	UpdatedBy   string    `json:"updated_by"`
}

func decode[T any](o *sekisho.Object) (*T, error) {
	var v T
	if err := json.Unmarshal(o.Body, &v); err != nil {
		return nil, &sekisho.Error{Code: sekisho.EInternal, Message: "stored " + o.Kind + " does not decode", Err: err}
	}
	return &v, nil
}
