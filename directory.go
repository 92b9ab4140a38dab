package sekisho

import (
	"slices"
	"time"
)

// The directory: what the access control plane (package access, which owns
// and stores orgs, principals, devices and grants) shows the other packages
// of them. The guard, incidents, reports and the HTTP API read these views
// through small interfaces they declare (access.Directory implements them);
// none of them decodes access's stored objects.

// Statuses of directory entries.
const (
	StatusActive    = "active"
	StatusPending   = "pending"
	StatusApproved  = "approved"
	StatusRevoked   = "revoked"
	StatusSuspended = "suspended"
)

// Roles of principals. Admin, member, support and service are roles within
// one org; auditor is instance-wide.
const (
	RoleAdmin   = "admin"
	RoleAuditor = "auditor"
	RoleMember  = "member"
	RoleSupport = "support"
	RoleService = "service"
)

// OrgEntry is an org as the directory shows it.
type OrgEntry struct {
	ID         string
	HomeRegion string
	// TimeZone is the org's IANA time zone; "" is the server's.
	TimeZone string
	Root     bool
	Status   string
}

// PrincipalEntry is a principal (a person or a service of one org).
type PrincipalEntry struct {
	ID        string
	Org       string
	Kind      string // person or service
	Roles     []string
	Status    string
	CreatedAt time.Time
	RevokedAt *time.Time
}

// HasRole reports whether p holds role.
func (p PrincipalEntry) HasRole(role string) bool { return slices.Contains(p.Roles, role) }

// DeviceEntry is a device key of one principal.
type DeviceEntry struct {
	ID         string
	Principal  string
	Org        string
	Status     string // pending, approved, revoked
	KeyStorage string
	Attested   bool
	EnrolledAt time.Time
	ApprovedAt *time.Time
	RevokedAt  *time.Time
}

// GrantEntry is a grant: the grantor org lets the grantee (an org, or one
// principal of it) act on some of its records.
type GrantEntry struct {
	ID               string
	GrantorOrg       string
	GranteeOrg       string
	GranteePrincipal string // "" for the whole grantee org
	Collections      []string
	Regions          []string
	Purposes         []string
	Actions          []string
	NotBefore        time.Time
	Expires          time.Time
	// Budgets in records: per rolling hour and in total; 0 means none.
	BudgetPerHour int64
	BudgetTotal   int64
	Status        string
	CreatedAt     time.Time
	RevokedAt     *time.Time
}
