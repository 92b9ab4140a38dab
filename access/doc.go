// Package access is sekisho's zero-trust access layer: organisations,
// principals and their roles, devices, grants, purposes and policies, the
// authenticator of device-bound credentials and the authoriser the vault
// asks on every record.
//
// # Model
//
// Every principal belongs to one org and holds roles (admin, member,
// support, service; auditor is instance-wide, held by the first admin and
// granted only by a holder of it). A device is a key pair generated on the
// client (Ed25519 or ECDSA P-256); its id is the RFC 7638 thumbprint of its
// public key. It is enrolled pending and works only once an admin of the
// principal's own org approves it.
//
// Enrolment is anonymous (the caller proves only that it holds the key), so
// anyone who knows a principal's id can enrol keys for it. A principal has
// at most MaxPendingDevices pending devices, and a pending device expires
// after PendingDeviceTTL (one hour): it then no longer counts, cannot be
// approved, and its key may enrol again. A flood of enrolments thus blocks
// a principal's own for at most an hour at a time; enrolment (POST
// /v1/devices) should be rate-limited at the edge, per source, as well.
//
// A root admin creates orgs and bootstraps them: while an org has never had
// an admin principal, root may create its first admin; while none of the
// org's admins has ever had a device approved, root may create its other
// principals and approve their devices. Revoked admins and devices count:
// once an org has had an admin, only its own admins create its admins and
// approve its devices, so that root cannot revoke an org's admin and seat
// one of its own choosing (root may still create non-admin principals,
// whose devices the org's admins approve, and revoke anything). An org
// that loses all its admins is recovered out of band, not by root.
//
// Revoking a device, a principal, or all of
// an org's devices takes effect on the next request: the state of devices,
// principals, orgs, grants and policies is cached for at most MaxCacheTTL
// (one second), and a node drops its own cached copy when it writes.
//
// All of it is stored as sekisho.Object documents (kinds org, principal,
// device, grant, policy, policy-version, bootstrap), so every store that
// passes the conformance suite holds it.
//
// # Credentials: DPoP
//
// People's CLIs and services use DPoP (RFC 9449). POST /v1/token with a
// proof signed by an approved device key returns an access token (an HS256
// JWT under a key derived from the keyring, five minutes, bound to the key
// by cnf.jkt). Every request then carries "Authorization: DPoP <token>" and
// a fresh proof over its method and URL with the token's hash (ath). A
// token replayed with another key, a proof replayed (its jti is remembered
// for the proof window), a proof out of its time window or for another
// method or URL is refused, each with its own problem type. Refreshing is
// the same call with a new proof, so it needs the device key.
//
// The cost is one signature verification per request (see
// BenchmarkAuthenticate; the numbers are in bench/README.md), an
// HMAC and two small JSON decodes. mTLS with certificate-bound tokens
// (RFC 8705), which verifies the key once per connection, is the way to
// amortise it for high-rate services; it is not built yet.
//
// What can be cached without weakening a check is: the parsed header of a
// device's proofs (key, algorithm, thumbprint; dpop.KeyCache, keyed by the
// header's exact encoding and filled only once a signature verified), and
// an access token whose MAC checked out (its claims and ath, keyed by the
// exact token, expiry checked on every use); both are bounded and emptied
// when full. Every proof's signature, htm, htu, iat, ath and jti are still
// checked per request, and the device, principal and org within
// MaxCacheTTL. A snapshot rebuild reuses the Cedar policies compiled from
// unchanged text. BenchmarkAuthenticate and BenchmarkAuthenticateAuthorize
// measure it (bench/README.md, "Package benchmarks", has the numbers). Most
// of what is left is the signature itself: Ed25519 verification decompresses
// the public key point on every call, which the standard library offers no
// way to keep; it is not worth verifying outside it.
//
// # Authorisation: Cedar
//
// Policies are Cedar (github.com/cedar-policy/cedar-go), stored as data and
// versioned. Requests on the caller's own org's records are decided by the
// stored policies (the role policies in DefaultPolicies to start with);
// requests on another org's records are decided only by the policies that
// active grants compile to (and the stored forbids), so no role policy can
// open another org: grants are the only path across orgs. The Cedar request
// is principal Principal::"p" (parents Org::"o" and Role::"r"), action
// Action::"read" and so on, resource Collection::"c", and a context with
// owner, region, purpose, collection, fields, device and now (Unix
// seconds). A policy's @masked("f1,f2" or "*") annotation limits it to the
// masked form of those fields. Default deny; a denial names the policy or
// grant that came closest and a specific problem type (no-grant,
// grant-expired, grant-purpose-not-listed, grant-field-not-listed,
// grant-region-not-listed, purpose-not-permitted, role-not-permitted, …).
//
// # Grants and the two-person rule
//
// A grant names grantor and grantee (an org, or one principal of it),
// collections, fields, masked fields, regions, purposes, actions,
// not-before and expiry, and a volume budget. A grant that reaches a region
// other than the grantee's home region, or an unmasked sensitive field, is
// created pending and becomes active only when a second, distinct admin of
// the grantor approves it; both approvals are kept on the grant and in the
// audit log.
//
// The second approver must not be the grant's creator and must have held
// the admin role, with a device approved, for at least MinApproverTenure
// (24 hours) before the grant was created: the later of the principal's
// creation (roles are fixed when a principal is created) and its first
// device approval, by the service's clock. So an admin cannot create an
// admin, approve its device and approve its own grant with it; a sock
// puppet has to be planted a day ahead, in the audit log (principal.create,
// device.approve) for that day, which is what the guard and the auditors
// are for. A new org's admins therefore approve two-person grants from
// their second day.
//
// # Bootstrap
//
// The bootstrap token that the first serve writes authorises exactly one
// thing, once: enrolling the first admin (roles admin and auditor) of the
// root org and that admin's device, approved. Spending it is audited.
package access
