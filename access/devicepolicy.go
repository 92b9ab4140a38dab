package access

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/cedar-policy/cedar-go"

	"github.com/sekisho/sekisho"
)

// Device requirements: what device a request must come from. Each level
// includes the ones before it.
const (
	// DeviceAny accepts any approved device, a file key too.
	DeviceAny = "any"
	// DeviceHardwareBound wants a key that cannot leave its device: a
	// device record whose key_storage is tpm, pkcs11 or webauthn (as its
	// enrolment said and an admin approved).
	DeviceHardwareBound = "hardware-bound"
	// DeviceAttested wants a hardware-bound key whose enrolment carried
	// evidence of where it lives that the server verified (attested: true).
	DeviceAttested = "attested"
)

// DeviceLevels lists the device requirements, weakest first.
var DeviceLevels = []string{DeviceAny, DeviceHardwareBound, DeviceAttested}

// ProblemDeviceNotHardwareBound is the problem type of a request refused
// because its device does not meet a requirement (a grant's, an org's
// default, or a Cedar policy's on context.device_key_storage /
// context.device_attested).
const ProblemDeviceNotHardwareBound = "device-not-hardware-bound"

// DeviceRequirements are an org's requirements on the devices its records
// are read from. An empty level is the instance's default
// (Config.DeviceDefault, itself hardware-bound unless set).
type DeviceRequirements struct {
	// CrossOrg applies to every request of another org's principal (under
	// a grant) on this org's records.
	CrossOrg string `json:"cross_org,omitempty"`
	// Sensitive applies to every read of a sensitive field of this org's
	// records (its own principals' too).
	Sensitive string `json:"sensitive,omitempty"`
}

// deviceLevel is the rank of a requirement ("" ranks as any).
func deviceLevel(req string) int {
	if i := slices.Index(DeviceLevels, req); i > 0 {
		return i
	}
	return 0
}

// checkDeviceLevel checks a requirement named in field; "" is allowed (the
// default).
func checkDeviceLevel(field, v string) error {
	if v == "" || slices.Contains(DeviceLevels, v) {
		return nil
	}
	return sekisho.FieldErrorf(sekisho.EInvalid, field, "%s %q: want one of any, hardware-bound, attested", field, v)
}

// deviceFacts is what a request's device is: where its key lives and
// whether that was attested.
type deviceFacts struct {
	storage  string
	attested bool
}

// hardware is the most a device can be; a denial that this would turn into
// an allow was a denial of the device.
var hardware = deviceFacts{storage: KeyStorageTPM, attested: true}

// meets reports whether the device satisfies requirement req.
func (f deviceFacts) meets(req string) bool {
	switch deviceLevel(req) {
	case 0:
		return true
	case 1:
		return f.storage != "" && f.storage != KeyStorageFile
	default:
		return f.storage != "" && f.storage != KeyStorageFile && f.attested
	}
}

func (f deviceFacts) String() string {
	if f.attested {
		return f.storage + " (attested)"
	}
	return f.storage + " (not attested)"
}

// deviceOf returns the facts of a request's device (cached like
// authentication's state). A device that is not a stored device record
// (the server's own work) counts as a file key.
func (s *Service) deviceOf(ctx context.Context, id string) deviceFacts {
	if id == "" {
		return deviceFacts{storage: KeyStorageFile}
	}
	d, err := cachedGet[Device](ctx, s, sekisho.KindDevice, id)
	if err != nil {
		return deviceFacts{storage: KeyStorageFile}
	}
	return deviceFacts{storage: d.KeyStorage, attested: d.Attested}
}

// orgRequirements returns the effective requirements of org (its own, or
// the instance's default for a level it leaves empty).
func (s *Service) orgRequirements(ctx context.Context, org string) DeviceRequirements {
	def := s.cfg.DeviceDefault
	if def == "" {
		def = DeviceHardwareBound
	}
	out := DeviceRequirements{CrossOrg: def, Sensitive: def}
	o, err := cachedGet[Org](ctx, s, sekisho.KindOrg, org)
	if err != nil || o.DeviceRequirements == nil {
		return out
	}
	if o.DeviceRequirements.CrossOrg != "" {
		out.CrossOrg = o.DeviceRequirements.CrossOrg
	}
	if o.DeviceRequirements.Sensitive != "" {
		out.Sensitive = o.DeviceRequirements.Sensitive
	}
	return out
}

// readActions are the actions that return field values.
var readActions = []string{sekisho.ActionRead, sekisho.ActionLookup, sekisho.ActionBatchGet, "detokenize"}

// checkDevice applies the owner org's device requirements to a request
// Cedar allowed: across orgs the cross-org one, and for a read of a
// sensitive field the sensitive one. The zero Decision means it passes.
func (s *Service) checkDevice(ctx context.Context, req sekisho.AccessRequest, owner string, dev deviceFacts) (sekisho.Decision, bool) {
	reqs := s.orgRequirements(ctx, owner)
	if owner != req.Caller.Org && !dev.meets(reqs.CrossOrg) {
		return deny("device-requirements:"+owner, ProblemDeviceNotHardwareBound,
			"org %s lets other orgs read its records only from a %s device; device %s of %s is %s (sign in with sekisho login --key-store tpm or pkcs11, and have it approved)",
			owner, reqs.CrossOrg, req.Caller.Device, req.Caller.Principal, dev), false
	}
	if req.Schema == nil || dev.meets(reqs.Sensitive) || !slices.Contains(readActions, string(req.Action)) {
		return sekisho.Decision{}, true
	}
	for _, f := range req.Fields {
		if fd, ok := req.Schema.Field(f); ok && fd.Classification == sekisho.ClassSensitive {
			return deny("device-requirements:"+owner, ProblemDeviceNotHardwareBound,
				"field %s of %s is sensitive: org %s lets it be read only from a %s device; device %s of %s is %s",
				f, req.Collection, owner, reqs.Sensitive, req.Caller.Device, req.Caller.Principal, dev), false
		}
	}
	return sekisho.Decision{}, true
}

// SetDeviceRequirements sets an org's device requirements (an admin of the
// org, or a root admin). An empty level goes back to the instance default.
func (s *Service) SetDeviceRequirements(ctx context.Context, c sekisho.Caller, org string, r DeviceRequirements) (*Org, error) {
	detail := fmt.Sprintf("org %s device requirements cross_org=%s sensitive=%s", org, orDefault(r.CrossOrg), orDefault(r.Sensitive))
	if err := s.requireAdminOf(c, org, "setting an org's device requirements", true); err != nil {
		return nil, s.event(ctx, c, "org.device-requirements", detail, err)
	}
	if err := checkDeviceLevel("cross_org", r.CrossOrg); err != nil {
		return nil, err
	}
	if err := checkDeviceLevel("sensitive", r.Sensitive); err != nil {
		return nil, err
	}
	o, v, err := get[Org](ctx, s, sekisho.KindOrg, org)
	if err != nil {
		return nil, err
	}
	o.DeviceRequirements = &r
	if r == (DeviceRequirements{}) {
		o.DeviceRequirements = nil
	}
	if err := s.put(ctx, sekisho.KindOrg, o.ID, o.ID, v+1, o); err != nil {
		return nil, s.event(ctx, c, "org.device-requirements", detail, err)
	}
	return o, s.event(ctx, c, "org.device-requirements", detail, nil)
}

func orDefault(l string) string {
	if l == "" {
		return "default"
	}
	return l
}

// deniedForDevice explains a Cedar denial that the device alone caused: the
// same request from an attested hardware-bound device would be allowed (a
// grant's device_requirement, or a policy on context.device_key_storage or
// context.device_attested). The policy that permits such a device, or the
// one that forbids this one, is named.
func (s *Service) deniedForDevice(ps *cedar.PolicySet, req sekisho.AccessRequest, owner string, dev deviceFacts, sn *snapshot,
	diag cedar.Diagnostic, now time.Time) (sekisho.Decision, bool) {
	if dev.meets(DeviceAttested) {
		return sekisho.Decision{}, false
	}
	ents, alt := cedarRequest(req, owner, req.Caller.Purpose, hardware, now)
	d, altDiag := cedar.Authorize(ps, ents, alt)
	if d != cedar.Allow {
		return sekisho.Decision{}, false
	}
	var names []string
	for _, r := range diag.Reasons {
		names = append(names, sn.names[r.PolicyID])
	}
	if len(names) == 0 {
		for _, r := range altDiag.Reasons {
			names = append(names, sn.names[r.PolicyID])
		}
	}
	sort.Strings(names)
	name := strings.Join(names, ",")
	return deny(name, ProblemDeviceNotHardwareBound,
		"%s does not permit %s on %s from device %s of %s, which is %s; it would from an attested hardware-bound device (sekisho login --key-store tpm or pkcs11)",
		name, req.Action, req.Collection, req.Caller.Device, req.Caller.Principal, dev), true
}
