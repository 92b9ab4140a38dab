package access

import (
	"context"
	"time"

	"github.com/sekisho/sekisho"
	"github.com/sekisho/sekisho/access/dpop"
)

// The device side of passkey sign-in (issue 16 point 5; the WebAuthn
// ceremonies are package passkey's): a browser's device key enrolled with a
// new passkey, and the session key of a passkey sign-in.

// EnrolWebAuthnDevice is EnrolDevice for the DPoP key of a browser that has
// just registered a passkey: key_storage webauthn, attested when the
// passkey's attestation verified against the trusted roots. It is pending
// like every anonymous enrolment, and answers alike whether the principal
// exists or not.
func (s *Service) EnrolWebAuthnDevice(ctx context.Context, c sekisho.Caller, principal, name string, attested bool, key dpop.JWK) (*Device, error) {
	return s.enrolDevice(ctx, c, principal, name, KeyStorageWebAuthn, attested, key)
}

// PersonOrg returns the org of an active person principal; ENotFound for
// one that does not exist, is revoked or is a service (the caller, anonymous,
// must not be told which).
func (s *Service) PersonOrg(ctx context.Context, principal string) (string, error) {
	p, _, err := get[Principal](ctx, s, sekisho.KindPrincipal, principal)
	if err != nil {
		return "", err
	}
	if p.Status != StatusActive || p.Kind == "service" {
		return "", sekisho.Errorf(sekisho.ENotFound, "principal %q not found", principal)
	}
	return p.Org, nil
}

// ProblemDeviceExpired: the device is a sign-in session (a passkey
// sign-in's browser key) that ended.
const ProblemDeviceExpired = "device-expired"

// DeviceEverApproved reports whether an admin approved device id as a
// device of principal at some time (it may be revoked since): a passkey
// registered with a device is approved with it. The device must still be
// principal's: the key of an enrolment that expired unapproved may enrol
// again under another principal, and that principal's approval approves
// nothing of the first one's passkey.
func (s *Service) DeviceEverApproved(ctx context.Context, id, principal string) (bool, error) {
	d, _, err := get[Device](ctx, s, sekisho.KindDevice, id)
	if sekisho.Code(err) == sekisho.ENotFound {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return d.ApprovedAt != nil && d.Principal == principal, nil
}

// RevokeSignInDevices revokes the session devices that the passkey
// passkeyID signed in (approved by "passkey:ID") in org, when the passkey
// is revoked: its sessions end with it. Each is audited as device.revoke.
func (s *Service) RevokeSignInDevices(ctx context.Context, c sekisho.Caller, org, passkeyID string) (int, error) {
	devs, err := list[Device](ctx, s, sekisho.KindDevice, org)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, d := range devs {
		if d.ApprovedBy != "passkey:"+passkeyID || d.Status != StatusApproved {
			continue
		}
		cur, v, err := get[Device](ctx, s, sekisho.KindDevice, d.ID)
		if err != nil {
			return n, err
		}
		now := s.now()
		cur.Status, cur.RevokedAt, cur.RevokedBy = StatusRevoked, &now, c.Principal
		if err := s.put(ctx, sekisho.KindDevice, cur.ID, cur.Org, v+1, cur); err != nil {
			return n, err
		}
		if err := s.event(ctx, c, "device.revoke", "device "+cur.ID+" of "+cur.Principal+": its passkey "+passkeyID+" was revoked", nil); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

// EnrolSignInDevice records the DPoP key of a browser session that signed
// in with an approved passkey: approved at once (the passkey assertion is
// the person's proof, the passkey's first approval the admin's), key_storage
// webauthn, attested as the passkey was. The principal must be an active
// person and the key new. The device is a session: it expires at expires
// (no token after it, device-expired). Audited as device.enrol.
func (s *Service) EnrolSignInDevice(ctx context.Context, c sekisho.Caller, principal, name string, attested bool, key dpop.JWK, passkey string, expires time.Time) (*Device, error) {
	key, err := key.Canonical()
	if err != nil {
		return nil, sekisho.FieldErrorf(sekisho.EInvalid, "key", "%v", err)
	}
	if len(name) > 100 {
		return nil, sekisho.FieldErrorf(sekisho.EInvalid, "name", "device name is longer than 100 characters")
	}
	detail := "device " + key.Thumbprint() + " for " + principal + " signed in with passkey " + passkey
	org, err := s.PersonOrg(ctx, principal)
	if err != nil {
		if sekisho.Code(err) == sekisho.ENotFound {
			err = sekisho.TypedErrorf(sekisho.EUnauthorized, "principal-revoked", "the passkey's principal %s is not an active person", principal)
		}
		return nil, s.event(ctx, c, "device.enrol", detail, err)
	}
	c.Principal, c.Org = principal, org
	version := int64(1)
	now := s.now()
	if old, v, err := get[Device](ctx, s, sekisho.KindDevice, key.Thumbprint()); err == nil {
		if !old.expired(now) {
			return nil, s.event(ctx, c, "device.enrol", detail, errKeyKnown())
		}
		version = v + 1
	} else if sekisho.Code(err) != sekisho.ENotFound {
		return nil, err
	}
	d := &Device{ID: key.Thumbprint(), Principal: principal, Org: org, Name: name, Key: key, Status: StatusApproved, EnrolledAt: now,
		ApprovedAt: &now, ApprovedBy: "passkey:" + passkey, KeyStorage: KeyStorageWebAuthn, Attested: attested, ExpiresAt: &expires}
	if err := s.put(ctx, sekisho.KindDevice, d.ID, d.Org, version, d); err != nil {
		if sekisho.Code(err) == sekisho.EConflict {
			err = errKeyKnown()
		}
		return nil, s.event(ctx, c, "device.enrol", detail, err)
	}
	return d, s.event(ctx, c, "device.enrol", detail, nil)
}

// SeesAll reports whether c sees every org's control-plane objects (a root
// admin or an auditor).
func (s *Service) SeesAll(c sekisho.Caller) bool { return s.seesAll(c) }

// IsRootAdmin reports whether c is an admin of the org that runs the
// instance.
func (s *Service) IsRootAdmin(c sekisho.Caller) bool { return s.isRootAdmin(c) }
